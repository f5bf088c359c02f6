"""Lists that know their true size: a reply showing 20 of 1,996 changes must say so, and
say where the rest is, instead of passing the cap off as the total."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import overload

from domain.model import Change

PAGE_SIZE = 20  # `/change list` pages


@dataclass(frozen=True)
class Counted(Sequence[Change]):
    """The first changes of a list and how many it has in all; `exact=False` when only a
    lower bound is known (the list was filtered after a capped read)."""

    items: tuple[Change, ...]
    total: int
    exact: bool = True

    @classmethod
    def of(cls, items: Sequence[Change], *, total: int | None = None, complete: bool = True) -> Counted:
        """`total` when counted; else `len(items)`, only a lower bound unless `complete`."""
        if total is not None:
            return cls(tuple(items), max(total, len(items)))
        return cls(tuple(items), len(items), exact=complete)

    def shown(self, limit: int) -> Counted:
        """The same total, only the first `limit` kept (what a renderer shows)."""
        return Counted(self.items[:limit], self.total, self.exact)

    @property
    def more(self) -> int:
        """How many are not in `items`."""
        return max(self.total - len(self.items), 0)

    def __len__(self) -> int:
        return len(self.items)

    def __iter__(self) -> Iterator[Change]:
        return iter(self.items)

    @overload
    def __getitem__(self, index: int) -> Change: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[Change]: ...

    def __getitem__(self, index: int | slice) -> Change | Sequence[Change]:
        return self.items[index]


@dataclass(frozen=True)
class Page:
    """One page of `/change list`: its changes, its number (from 1) and the true total."""

    items: tuple[Change, ...]
    number: int
    total: int
    size: int = PAGE_SIZE

    @property
    def first(self) -> int:
        """The 1-based position of the first change shown."""
        return (self.number - 1) * self.size + 1

    @property
    def last(self) -> int:
        return self.first + len(self.items) - 1

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.size))

    @property
    def past_end(self) -> bool:
        return not self.items and self.number > 1

    @property
    def has_next(self) -> bool:
        return self.number < self.pages


def page_offset(number: int, size: int = PAGE_SIZE) -> int:
    return (number - 1) * size
