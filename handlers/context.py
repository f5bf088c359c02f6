"""What listeners are given: the use cases and the Slack door, nothing else.

A protocol, so handlers/ need not import bot/: the composition root's context
(bot/context.py) satisfies it.
"""

from __future__ import annotations

from typing import Any, Protocol

from domain.clock import Clock
from domain.policy import Policy
from domain.service import ChangeService


class SlackDoor(Protocol):
    """The part of the Slack gateway a listener uses."""

    async def open_view(self, *, trigger_id: str, view: dict[str, Any]) -> bool: ...

    async def ephemeral(self, *, channel: str, user: str, text: str) -> None: ...

    async def message(
        self, *, channel: str, text: str, thread_ts: str | None = None, dedupe_key: str | None = None
    ) -> None: ...


class AppContext(Protocol):
    @property
    def service(self) -> ChangeService: ...

    @property
    def gateway(self) -> SlackDoor: ...

    @property
    def policy(self) -> Policy: ...

    @property
    def clock(self) -> Clock: ...
