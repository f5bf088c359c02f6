"""The messages the use cases cause, one typed value each, grouped by feature.

A message is stored in its outbox row's JSON `payload` with its type under the key
"template" and its fields under their own names: the shape the rows always had, so rows
stored by an earlier version still parse, and this one's rows read the same to it.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field, TypeAdapter

from domain.messages.approvals import Decided
from domain.messages.base import ChangeMessage, Escalating
from domain.messages.calendar import CalendarDigest, FreezeChanged, FreezeCovers
from domain.messages.chase import ApprovalChase, DelegationNews
from domain.messages.editing import ChangesRequested, Edited
from domain.messages.emergency import OnCallFound, PostChase, PostDecided, ReviewRequired
from domain.messages.intake import Filed
from domain.messages.notices import StakeholderNotice, TimelineNotice
from domain.messages.progress import ChangeEvent, ProgressUpdate, Rescheduled
from domain.messages.replies import Ephemeral, Text
from domain.messages.reports import CabAgendaPost, ReportPost
from domain.messages.reviews import IncidentLinked, ReviewChase, ReviewDone, ReviewRequest

# What is posted to Slack about one CR, rendered from the CR when sent.
ChangeNews = (
    Filed
    | Decided
    | ProgressUpdate
    | Rescheduled
    | ReviewRequest
    | ReviewChase
    | ReviewDone
    | IncidentLinked
    | OnCallFound
    | PostChase
    | PostDecided
    | ReviewRequired
    | TimelineNotice
    | Edited
    | ChangesRequested
    | StakeholderNotice
    | FreezeCovers
    | ApprovalChase
)
# What is posted to a channel, rendered from a read model loaded when sent.
BoardNews = CalendarDigest | FreezeChanged | CabAgendaPost | ReportPost | DelegationNews
# Text a handler composed already.
Reply = Text | Ephemeral
SlackMessage = ChangeNews | BoardNews | Reply
Message = SlackMessage | ChangeEvent

_ADAPTER: TypeAdapter[Message] = TypeAdapter(Annotated[Message, Field(discriminator="template")])


def message_payload(message: Message | None) -> dict[str, Any]:
    """The JSON an outbox row stores for `message` (`{}`: none)."""
    if message is None:
        return {}
    payload: dict[str, Any] = _ADAPTER.dump_python(message, mode="json", by_alias=True)
    return payload


def parse_message(payload: dict[str, Any], *, template: str | None = None) -> Message | None:
    """The message an outbox row stored; `template` names the type of a row that stored
    none (rows from before plain texts, replies and change events were tagged).
    Raises `ValueError` (pydantic's `ValidationError`) for a payload of no known shape."""
    tag = payload.get("template") or template
    if tag is None:
        return None
    return _ADAPTER.validate_python({**payload, "template": tag})


__all__ = [
    "ApprovalChase",
    "BoardNews",
    "CabAgendaPost",
    "CalendarDigest",
    "ChangeEvent",
    "ChangeMessage",
    "ChangeNews",
    "ChangesRequested",
    "Decided",
    "DelegationNews",
    "Edited",
    "Ephemeral",
    "Escalating",
    "Filed",
    "FreezeChanged",
    "FreezeCovers",
    "IncidentLinked",
    "Message",
    "OnCallFound",
    "PostChase",
    "PostDecided",
    "ProgressUpdate",
    "Reply",
    "ReportPost",
    "Rescheduled",
    "ReviewChase",
    "ReviewDone",
    "ReviewRequest",
    "ReviewRequired",
    "SlackMessage",
    "StakeholderNotice",
    "Text",
    "TimelineNotice",
    "message_payload",
    "parse_message",
]
