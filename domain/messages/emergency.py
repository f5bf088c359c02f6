"""Messages of emergency changes: who is on call, and the post-approval after the fact."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from domain.enums import Decision
from domain.messages.base import ChangeMessage, Escalating, Moment, NoticeKey, UserId
from domain.model import PostState


@dataclass(frozen=True, kw_only=True)
class OnCallFound(ChangeMessage):
    """Who is on call for the emergency; `source` "fallback" (with `reason`) when
    PagerDuty could not say."""

    template: Literal["on_call"] = "on_call"
    users: tuple[UserId, ...]
    source: str
    reason: str | None = None


@dataclass(frozen=True, kw_only=True)
class PostChase(Escalating):
    """The post-approval's reminder or deadline notice (`key`, due at `due_at`)."""

    template: Literal["post_chase"] = "post_chase"
    key: NoticeKey
    late: bool = False
    due_at: Moment


@dataclass(frozen=True, kw_only=True)
class PostDecided(ChangeMessage):
    """An approver decided the post-approval; the emergency's post-approval is now `state`."""

    template: Literal["post_decided"] = "post_decided"
    by: UserId
    decision: Decision
    state: PostState
    reason: str = ""


@dataclass(frozen=True, kw_only=True)
class ReviewRequired(ChangeMessage):
    """The post-approval was refused: its people are asked for a post-incident review."""

    template: Literal["review_requested"] = "review_requested"
