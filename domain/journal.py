"""One INFO line per meaningful event, for whoever runs the bot: ids, kinds and states
only, never user free text (titles, reasons, notes) or secrets."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

from domain.calendar_policy import Freeze
from domain.enums import Status
from domain.model import AuditEntry, Change

if TYPE_CHECKING:
    from domain.ports import DueNotice, NoticeSettlement

log = logging.getLogger("changebot.events")


def filed(change: Change) -> None:
    log.info(
        "%s filed by %s: %s, %s risk, %s",
        change.id,
        change.requester,
        change.draft.category.value,
        change.risk.value,
        change.status.value,
    )


def committed(change: Change, status: Status | None, audit: Sequence[AuditEntry]) -> None:
    """A stored update: what happened (its audit actions), by whom, and any change of state."""
    actions = ", ".join(entry.action.value for entry in audit) or "updated"
    actor = audit[0].actor if audit else "changebot"
    if status is not None and status is not change.status:
        log.info("%s %s by %s: %s -> %s", change.id, actions, actor, change.status.value, status.value)
    else:
        log.info("%s %s by %s", change.id, actions, actor)


def notices_settled(due: Sequence[DueNotice], settlements: Sequence[NoticeSettlement]) -> None:
    for notice, settled in zip(due, settlements, strict=True):
        if settled.sent:
            log.info("%s notice %s sent%s", notice.change_id, notice.key, " late" if settled.late else "")
        else:
            log.info("%s notice %s skipped: %s", notice.change_id, notice.key, settled.note)


def job_run(job: str, period: str, *, claimed: bool) -> None:
    """A cron period's post queued (this replica won the claim)."""
    if claimed:
        log.info("%s %s queued", job, period)


def job_baseline(job: str, period: str) -> None:
    """The first start on a new database, within a post's catch-up window: not posted."""
    log.info("%s: a new database, nothing missed (%s recorded as done, not posted)", job, period)


def freeze(freeze: Freeze, *, by: str, started: bool) -> None:
    """A change freeze declared or lifted (its reason is user text: left out)."""
    log.info("freeze %s %s by %s", freeze.id, "started" if started else "ended", by)


def review_written(change_id: str, *, by: str, on_time: bool) -> None:
    log.info("%s review written by %s%s", change_id, by, "" if on_time else " (overdue)")


def on_call(change_id: str, users: Sequence[str], *, source: str) -> None:
    """Who got an emergency, from where (PagerDuty or the fallback); the reason is left out."""
    log.info("%s on call: %s (%s)", change_id, ", ".join(users) or "nobody", source)
