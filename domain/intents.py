"""Slack writes the domain asks for. They are stored with the state change that
caused them (a transactional outbox), so a crash can neither lose nor invent one."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from domain.messages import Message

# A message to a channel like this is a person's DM (a pipeline principal has none).
DM_USER = re.compile(r"^[UW][A-Z0-9]{2,}$")


class IntentKind(StrEnum):
    POST_CARD = "post_card"  # the CR card in a channel; the copy is remembered for updates
    DM_APPROVERS = "dm_approvers"  # fan out: one DM_CARD per approver of an open step
    DM_CARD = "dm_card"  # the CR card in one approver's DM
    REFRESH_CARDS = "refresh_cards"  # re-render every remembered copy of the card
    MESSAGE = "message"  # a plain message to a channel or a user's DM
    EPHEMERAL = "ephemeral"  # visible to one user only
    ON_CALL = "on_call"  # ask PagerDuty who is on call, then hand them the emergency
    DM_POST_APPROVERS = "dm_post_approvers"  # fan out: post-approval reminder to each open approver
    DM_ROLE = "dm_role"  # fan out: one message to every member of a role (escalation)
    PD_CHANGE_EVENT = "pd_change_event"  # a PagerDuty Change Event (start, completion, …)
    HOME = "home"  # publish one user's App Home
    REPORT = "report"  # the metrics report, with its chart uploaded


@dataclass(frozen=True)
class Intent:
    kind: IntentKind
    change_id: str | None = None
    channel: str | None = None  # channel or user id: also the pacing key
    message: Message | None = None  # what to say, for the kinds that say something
    # Enqueueing twice with the same key stores one row: a retried handler never doubles a post.
    dedupe_key: str | None = None
    # Not sent before this moment (a DM held over someone's quiet hours); None: at once.
    not_before: datetime | None = None
