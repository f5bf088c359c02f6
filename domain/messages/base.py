"""What every message shares. Messages are plain frozen values the use cases emit; they
are stored as JSON in the outbox row (under the same keys the rows always had) and
rendered by modals/ when they are sent, from the CR as it is then."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated

from pydantic import Field, PlainSerializer

# Stored as `datetime.isoformat()`, as the rows always were.
Moment = Annotated[datetime, PlainSerializer(lambda moment: moment.isoformat(), return_type=str)]
UserId = Annotated[str, Field(min_length=1)]  # a Slack user id
RoleName = Annotated[str, Field(min_length=1)]  # a role of the policy
NoticeKey = Annotated[str, Field(min_length=1)]  # a timeline notice: a policy id or one of domain/timeline.py


@dataclass(frozen=True, kw_only=True)
class ChangeMessage:
    """A message about one CR: rendered from the CR as it is when sent. `thread` puts it
    in the thread of the CR's card in the channel it goes to."""

    thread: bool = False


@dataclass(frozen=True, kw_only=True)
class Escalating(ChangeMessage):
    """A chase that can go to every member of a role (a DM_ROLE fan-out) as well."""

    role: RoleName | None = None
