"""Messages of post-implementation reviews and of incidents linked to a change."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from domain.messages.base import ChangeMessage, Escalating, NoticeKey, UserId


@dataclass(frozen=True, kw_only=True)
class ReviewRequest(ChangeMessage):
    """To the implementer: write the review, by its due date."""

    template: Literal["review_request"] = "review_request"


@dataclass(frozen=True, kw_only=True)
class ReviewChase(Escalating):
    """The review's reminder or deadline notice (`key`); past the deadline, escalated."""

    template: Literal["review_chase"] = "review_chase"
    key: NoticeKey


@dataclass(frozen=True, kw_only=True)
class ReviewDone(ChangeMessage):
    template: Literal["review_done"] = "review_done"
    by: UserId


@dataclass(frozen=True, kw_only=True)
class IncidentLinked(ChangeMessage):
    """`by` linked the CR to `incident` (an id or a link, as typed): a change failure."""

    template: Literal["incident_linked"] = "incident_linked"
    by: UserId
    incident: str
