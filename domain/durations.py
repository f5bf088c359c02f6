"""Offsets like `-24h`, `+15m`, `90s`, `1d`, `0` as written in the policy."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated

from pydantic import BeforeValidator

_PART = re.compile(r"(\d+)([dhms])")
_WHOLE = re.compile(r"^[+-]?(\d+[dhms])+$")
_UNITS = {"d": 86400, "h": 3600, "m": 60, "s": 1}


def parse_duration(text: str | int) -> timedelta:
    if isinstance(text, int):
        if text != 0:
            raise ValueError(f"'{text}' needs a unit: s, m, h or d (like 15m or -24h)")
        return timedelta(0)
    raw = str(text).strip().replace(" ", "")
    if raw in {"0", "+0", "-0"}:
        return timedelta(0)
    if not _WHOLE.match(raw):
        raise ValueError(f"'{text}' is not a duration like 15m, -1h, +30m or 1d")
    sign = -1 if raw.startswith("-") else 1
    seconds = sum(int(n) * _UNITS[u] for n, u in _PART.findall(raw))
    return timedelta(seconds=sign * seconds)


# A policy field holding one of these offsets (a timedelta given as is is kept).
Duration = Annotated[
    timedelta, BeforeValidator(lambda v: v if isinstance(v, timedelta) else parse_duration(v))
]


def format_offset(delta: timedelta) -> str:
    """T-24h, T-1h, T-0, T+15m: how people say it."""
    seconds = int(delta.total_seconds())
    if seconds == 0:
        return "T-0"
    sign = "+" if seconds > 0 else "-"
    seconds = abs(seconds)
    # Hours up to two days (people say T-24h and T-48h, not T-1d); whole days beyond.
    if seconds % 86400 == 0 and seconds > 2 * 86400:
        return f"T{sign}{seconds // 86400}d"
    for unit, size in (("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"T{sign}{seconds // size}{unit}"
    return f"T{sign}{seconds}s"
