"""What the emulator's pieces share: Slack's identifiers, the recorded call, the error
answer, and the readers of request parameters that accept every body encoding."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

JSONDict = dict[str, Any]
Handler = Callable[[JSONDict], JSONDict]

BOT_USER_ID = "UBOT"
BOT_ID = "BBOT"
TEAM_ID = "T0001"
TEAM_NAME = "Emulated"
APP_ID = "A0001"
WORKSPACE_URL = "https://emulated.slack.com/"

USER_ID_RE = re.compile(r"^[UW][A-Z0-9]+$")


@dataclass(frozen=True)
class Call:
    """One recorded API request; ``at`` is ``time.monotonic()`` when it was handled."""

    method: str
    params: JSONDict
    at: float


class SlackError(Exception):
    """Handler error answered as ``{"ok": false, "error": code}`` with HTTP 200, like Slack."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


def dm_channel(user_id: str) -> str:
    """DM channel id for a user: deterministic so tests can predict it."""
    return f"D_{user_id}"


def ts_key(ts: Any) -> Decimal:
    """Exact ordering key for Slack ``ts`` strings (floats lose the microseconds)."""
    try:
        return Decimal(str(ts))
    except (InvalidOperation, ValueError):
        raise SlackError("invalid_ts_latest") from None


def str_param(params: Mapping[str, Any], key: str) -> str | None:
    """A text parameter; Slack treats an empty one as absent."""
    value = params.get(key)
    if value is None or value == "":
        return None
    return str(value)


def int_param(params: Mapping[str, Any], key: str, default: int) -> int:
    """A number parameter, sent as text by form bodies."""
    value = params.get(key)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except (TypeError, ValueError):
        raise SlackError("invalid_arguments") from None


def bool_param(params: Mapping[str, Any], key: str) -> bool:
    """Form/query booleans arrive as "1"/"true" strings, JSON ones as real booleans."""
    value = params.get(key)
    if isinstance(value, str):
        return value.strip().lower() in {"1", "true", "yes"}
    return bool(value)


def public(message: JSONDict, *, include_metadata: bool = True) -> JSONDict:
    """API view of a stored message: Slack omits absent fields rather than sending null."""
    out = {k: v for k, v in message.items() if v is not None and k != "channel"}
    if not include_metadata:
        out.pop("metadata", None)
    return out
