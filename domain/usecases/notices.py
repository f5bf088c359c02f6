"""The notice pass: claim the due notices and settle each into outbox rows (or a skip),
exactly once. Each notice family's settling lives with its feature: the window's notices
(T-24h, T-1h, T-0, T+15m, overrun, monitoring end) here, the review chase in reviews.py,
the emergency post-approval chase in emergency.py, the approval chase in chase.py. No
family calls back into the pass."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from domain import journal, timeline
from domain.approval_chase import is_approval_notice
from domain.emergency import is_post_notice
from domain.errors import ChangeNotFound
from domain.intents import DM_USER, Intent, IntentKind
from domain.messages import Message, StakeholderNotice, TimelineNotice
from domain.model import Change
from domain.policy import Policy
from domain.ports import DueNotice, NoticeSettlement
from domain.quiet_hours import cannot_wait, deliver_at
from domain.template_fields import stakeholders_of
from domain.timeline import MONITORING_END, OVERRUN, SHORT_NOTICE
from domain.usecases.base import UseCase, late_audit, skipped
from domain.usecases.chase import settle_approval_chase
from domain.usecases.emergency import settle_post_chase
from domain.usecases.reviews import REVIEW_NOTICES, settle_review_chase

# Settling a notice is a database write, no Slack call: if its claimer has not finished in
# 15 s it died, and another replica takes the notice over.
NOTICE_LEASE = timedelta(seconds=15)
NOTICE_AUDIENCE: dict[str, list[str]] = {
    SHORT_NOTICE: ["thread", "implementer"],
    OVERRUN: ["changes", "implementer"],
    MONITORING_END: ["thread", "implementer"],
}


class NoticeFamily(Protocol):
    """Settles one due notice of its family: sent (with its audit and posts) or skipped."""

    def __call__(
        self, change: Change, notice: DueNotice, *, now: datetime, policy: Policy
    ) -> NoticeSettlement: ...


class Notices(UseCase):
    async def seconds_to_next_notice(self) -> float | None:
        """How long until the earliest pending notice comes due (None: none pending)."""
        due = await self._repo.next_notice_due()
        return None if due is None else (due - self._clock.now()).total_seconds()

    async def process_due_notices(self, *, limit: int = 100) -> int:
        """Claim due notices and turn each into outbox rows (or a skip), exactly once: one
        read of their CRs, one transaction for the lot."""
        now = self._clock.now()
        due = await self._repo.claim_due_notices(now=now, limit=limit, lease=NOTICE_LEASE)
        changes = await self._repo.get_changes(sorted({notice.change_id for notice in due}))
        settlements: list[NoticeSettlement] = []
        for notice in due:
            change = changes.get(notice.change_id)
            if change is None:
                raise ChangeNotFound(notice.change_id)
            settle = family_of(notice.key)
            settled = settle(change, notice, now=now, policy=self.policy)
            settlements.append(await self._quiet_hours(settled, change, now=now))
        await self._repo.settle_notices(settlements, now=now)
        journal.notices_settled(due, settlements)
        if due:
            self._notifier.wake()
        return len(due)

    async def _quiet_hours(
        self, settled: NoticeSettlement, change: Change, *, now: datetime
    ) -> NoticeSettlement:
        """Hold each DM of a settled notice until its recipient's quiet hours end, unless the
        change cannot wait; the posts to channels go at once."""
        quiet = self.policy.quiet_hours
        if quiet is None or not settled.intents:
            return settled
        urgent = self._cannot_wait(change, now=now, within=quiet.unless_within)
        intents: list[Intent] = []
        for intent in settled.intents:
            if intent.kind is IntentKind.MESSAGE and intent.channel and DM_USER.match(intent.channel):
                zone = await self._zone_of(intent.channel)
                held = deliver_at(now, zone=zone, quiet=quiet, urgent=urgent)
                intent = replace(intent, not_before=held) if held else intent
            intents.append(intent)
        return replace(settled, intents=intents)

    async def quiet_holds(self, *, change_id: str, users: Sequence[str]) -> dict[str, datetime]:
        """For a chase fanned out to `users` now: who of them is in quiet hours, and until
        when (the others, absent, are told at once; all are when the change cannot wait)."""
        quiet = self.policy.quiet_hours
        if quiet is None or not users:
            return {}
        change = await self._require(change_id)
        now = self._clock.now()
        if self._cannot_wait(change, now=now, within=quiet.unless_within):
            return {}
        holds: dict[str, datetime] = {}
        for user in users:
            held = deliver_at(now, zone=await self._zone_of(user), quiet=quiet, urgent=False)
            if held is not None:
                holds[user] = held
        return holds

    @staticmethod
    def _cannot_wait(change: Change, *, now: datetime, within: timedelta) -> bool:
        draft = change.draft
        return cannot_wait(
            category=draft.category,
            status=change.status,
            starts_at=draft.starts_at,
            ends_at=draft.ends_at,
            now=now,
            within=within,
        )

    async def _zone_of(self, user: str) -> ZoneInfo:
        """The user's Slack time zone; the policy's when Slack does not know it."""
        name = await self._directory.time_zone(user)
        try:
            return ZoneInfo(name) if name else self.policy.zone
        except (ZoneInfoNotFoundError, ValueError):
            return self.policy.zone


def family_of(key: str) -> NoticeFamily:
    """Which family settles a notice, by its key."""
    if key in REVIEW_NOTICES:
        return settle_review_chase
    if is_post_notice(key):
        return settle_post_chase
    if is_approval_notice(key):
        return settle_approval_chase
    return settle_timeline_notice


def settle_timeline_notice(
    change: Change, notice: DueNotice, *, now: datetime, policy: Policy
) -> NoticeSettlement:
    """A notice of the change's window: sent (late if need be) while it still has a point."""
    outcome = timeline.verdict(
        key=notice.key,
        due_at=notice.due_at,
        expires_at=notice.expires_at,
        status=change.status,
        now=now,
        late_after=policy.timeline.late_after,
    )
    if isinstance(outcome, timeline.Skip):
        return skipped(change, notice, now=now, reason=outcome.reason)
    audit = late_audit(notice, now=now, late=outcome.late)
    intents = timeline_notice_intents(policy, change, notice, late=outcome.late)
    return NoticeSettlement(
        notice.id, change.id, sent=True, late=outcome.late, note=None, audit=audit, intents=intents
    )


def timeline_notice_intents(policy: Policy, change: Change, notice: DueNotice, *, late: bool) -> list[Intent]:
    """A window notice to its audience: the thread, the channel, the implementer, stakeholders."""
    spec = timeline.spec_for(policy.timeline, notice.key)
    audience = NOTICE_AUDIENCE.get(notice.key) or (spec.audience if spec else ["thread"])
    payload = TimelineNotice(key=notice.key, late=late, due_at=notice.due_at)
    changes = policy.channels.changes
    targets: list[tuple[str, str, Message]] = []
    for who in audience:
        if who == "thread":
            targets.append(("thread", changes, replace(payload, thread=True)))
        elif who == "changes":
            targets.append(("changes", changes, payload))
        elif who == "implementer":
            targets.append(("implementer", change.implementer, replace(payload, actions=True)))
        elif who == "stakeholders":
            # Stakeholders read it in document 001's template, not the team's shorthand.
            told = StakeholderNotice(key=notice.key, late=late, due_at=notice.due_at)
            for channel in stakeholders_of(policy.timeline.stakeholders, change.draft):
                targets.append((f"stakeholders:{channel}", channel, told))
    return [
        Intent(
            IntentKind.MESSAGE,
            change.id,
            channel,
            message,
            dedupe_key=f"notice:{notice.id}:{name}",
        )
        for name, channel, message in targets
    ]
