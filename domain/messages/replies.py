"""Replies handlers composed already (their text is mrkdwn built by modals/), delivered
through the outbox like every other message."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from domain.messages.base import UserId


@dataclass(frozen=True, kw_only=True)
class Text:
    """A plain message, in the thread of `thread_ts` if given."""

    template: Literal["text"] = "text"
    text: str
    thread_ts: str | None = None


@dataclass(frozen=True, kw_only=True)
class Ephemeral:
    """A reply only `user` sees, in the row's channel."""

    template: Literal["ephemeral"] = "ephemeral"
    user: UserId
    text: str
