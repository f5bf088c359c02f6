"""What is on and when: change freezes, the calendar, the App Home, the ICS feed and the
daily digest."""

from __future__ import annotations

from datetime import datetime, timedelta

from domain import journal
from domain.calendar import CalendarRange, days_range
from domain.calendar_policy import BlackoutHit, Freeze, blackout_periods
from domain.enums import Status
from domain.intents import Intent, IntentKind
from domain.limits import MAX_REASON
from domain.listing import Counted
from domain.messages import CalendarDigest, FreezeChanged
from domain.model import SYSTEM_ACTOR, AuditAction, AuditEntry, Change, PostState
from domain.ports import ChangeQuery, ListScope
from domain.read_models import CalendarView, FeedData, HomeView
from domain.usecases.approvals import Approvals
from domain.usecases.base import CALENDAR_LIMIT, Deps, UseCase, post_slot
from domain.usecases.queries import scope_query

FEED_LIMIT = 5000  # changes in the ICS feed; past it the feed says how many it left out


class Calendar(UseCase):
    def __init__(self, deps: Deps, *, approvals: Approvals) -> None:
        super().__init__(deps)
        self._approvals = approvals  # the App Home lists what waits for the user's decision

    async def start_freeze(self, *, user: str, reason: str) -> tuple[Freeze | None, str | None]:
        """An ad-hoc freeze for the roles the policy allows; (freeze, refusal)."""
        refusal = await self._freeze_refusal(user)
        if refusal:
            return None, refusal
        now = self._clock.now()
        reason = reason.strip()[:MAX_REASON]
        payload = FreezeChanged(started=True, by=user, reason=reason)
        freeze = await self._repo.start_freeze(
            reason=reason,
            user=user,
            now=now,
            audit=[AuditEntry(user, AuditAction.FREEZE_STARTED, now, {"reason": reason})],
            intents=[Intent(IntentKind.MESSAGE, None, self.policy.channels.changes, payload)],
        )
        return self._announced(
            freeze, user, refusal="a change freeze is already on: `/change freeze end` lifts it"
        )

    async def end_freeze(self, *, user: str) -> tuple[Freeze | None, str | None]:
        refusal = await self._freeze_refusal(user)
        if refusal:
            return None, refusal
        now = self._clock.now()
        payload = FreezeChanged(started=False, by=user, reason="")
        freeze = await self._repo.end_freeze(
            user=user,
            now=now,
            audit=[AuditEntry(user, AuditAction.FREEZE_ENDED, now, {})],
            intents=[Intent(IntentKind.MESSAGE, None, self.policy.channels.changes, payload)],
        )
        return self._announced(freeze, user, refusal="there is no change freeze on")

    def _announced(
        self, freeze: Freeze | None, user: str, *, refusal: str
    ) -> tuple[Freeze | None, str | None]:
        """(freeze, None) once a freeze started or ended, its message queued; (None, `refusal`)
        when the repository found nothing to change."""
        if freeze is None:
            return None, refusal
        journal.freeze(freeze, by=user)
        self._notifier.wake()
        return freeze, None

    async def _freeze_refusal(self, user: str) -> str | None:
        if await self._in_roles(user, self.policy.freeze_roles):
            return None
        roles = ", ".join(self.policy.freeze_roles) or "nobody"
        return f"only these roles can declare or lift a change freeze: {roles}"

    async def active_freezes(self, *, start: datetime, end: datetime) -> list[Freeze]:
        return await self._repo.freezes(start=start, end=end)

    async def calendar(self, *, span: CalendarRange) -> CalendarView:
        now = self._clock.now()
        active = (Status.PENDING_APPROVAL, Status.CHANGES_REQUESTED, Status.APPROVED, Status.IN_PROGRESS)
        ended = (Status.COMPLETED, Status.FAILED, Status.ROLLED_BACK, Status.CLOSED)  # kept on their day
        scheduled = await self._counted(
            ChangeQuery(
                statuses=(*active, *ended),
                starts_from=span.start,
                starts_before=span.end,
                limit=CALENDAR_LIMIT,
            )
        )
        # The other sections are `/change list` scopes, so "the rest" is one command away.
        awaiting, in_progress, overdue, post_overdue = [
            await self._counted(scope_query(scope, user="", now=now, limit=CALENDAR_LIMIT))
            for scope in (ListScope.PENDING, ListScope.IN_PROGRESS, ListScope.OVERDUE, ListScope.POST_OVERDUE)
        ]
        return CalendarView(
            span,
            now,
            scheduled,
            awaiting,
            in_progress,
            overdue,
            post_overdue,
            freezes=await self._repo.freezes(start=span.start, end=span.end),
            blackouts=self._blackouts_between(span.start, span.end),
        )

    def _blackouts_between(self, start: datetime, end: datetime) -> list[BlackoutHit]:
        hits = [
            BlackoutHit(blackout.name, s, e)
            for blackout in self.policy.blackouts
            for s, e in blackout_periods(blackout, zone=self.policy.zone, start=start, end=end)
        ]
        return sorted(hits, key=lambda hit: hit.start)

    async def open_home(self, *, user: str) -> None:
        """The user opened the App Home: remember them (so it follows their changes) and publish it."""
        await self._repo.home_opened(
            user=user, now=self._clock.now(), intents=[Intent(IntentKind.HOME, None, user)]
        )
        self._notifier.wake()

    async def users_touched(self, *, change_id: str) -> list[str]:
        """Whose App Home shows this change: requester, implementer, its approvers."""
        change = await self._require(change_id)
        users = {change.requester, change.implementer}
        for step in (*change.steps, *change.post_steps):
            users |= await self._directory.expand(step.members)
        return sorted(users)

    async def calendar_feed(self) -> FeedData:
        """What the ICS feed carries: the last month and the next six."""
        now = self._clock.now()
        start, end = now - timedelta(days=31), now + timedelta(days=183)
        changes = await self._counted(ChangeQuery(starts_from=start, starts_before=end, limit=FEED_LIMIT))
        return FeedData(
            now,
            end,
            changes,
            self._blackouts_between(now - timedelta(days=1), end),
            await self._repo.freezes(start=start, end=end),
        )

    async def home(self, *, user: str) -> HomeView:
        """The App Home: my changes, what waits for me, the week ahead, blackouts."""
        now = self._clock.now()
        mine = await self._counted(scope_query(ListScope.MINE, user=user, now=now, limit=15))
        pending = await self._repo.list_changes(
            scope_query(ListScope.PENDING, user=user, now=now, limit=CALENDAR_LIMIT)
        )
        post_open = await self._repo.list_changes(
            ChangeQuery(post_states=(PostState.PENDING, PostState.OVERDUE), limit=CALENDAR_LIMIT)
        )
        awaiting: list[Change] = []
        for change in pending:
            if await self._approvals.check_decision(change_id=change.id, user=user) is None:
                awaiting.append(change)
        for change in post_open:
            if (
                change not in awaiting
                and await self._approvals.check_post_decision(change_id=change.id, user=user) is None
            ):
                awaiting.append(change)
        upcoming = await self._counted(
            ChangeQuery(
                statuses=(Status.PENDING_APPROVAL, Status.APPROVED, Status.IN_PROGRESS),
                starts_from=now,
                starts_before=now + timedelta(days=7),
                limit=30,
            )
        )
        horizon = now + timedelta(days=14)
        # Only the first CALENDAR_LIMIT open CRs are checked: past that, "at least" so many.
        checked_all = len(pending) < CALENDAR_LIMIT and len(post_open) < CALENDAR_LIMIT
        return HomeView(
            user,
            now,
            mine,
            Counted.of(awaiting, complete=checked_all).shown(20),
            upcoming,
            self._blackouts_between(now, horizon),
            await self._repo.freezes(start=now, end=horizon),
        )

    async def run_digest(self, *, catch_up: bool = False) -> bool:
        """Post today's digest once: the cron job and the start-up catch-up both call this.
        The catch-up on a new database posts none (see domain/first_start.py)."""
        digest = self.policy.digest
        if not digest.enabled:
            return False
        now = self._clock.now()
        zone = self.policy.zone
        today, due = post_slot(now, at=digest.at, zone=zone)
        if not await self._due("digest", today.isoformat(), due=due, now=now, catch_up=catch_up):
            return False
        span = days_range(today, 1 + digest.days_ahead, zone, f"Change calendar for {today:%a %d %b}")
        payload = CalendarDigest(
            start=span.start,
            end=span.end,
            title=span.title,
        )
        return await self._post_once(
            "digest",
            period=today.isoformat(),
            now=now,
            entry=AuditEntry(SYSTEM_ACTOR, AuditAction.DIGEST_POSTED, now, {"day": today.isoformat()}),
            intent=Intent(
                IntentKind.MESSAGE,
                None,
                self.policy.channels.changes,
                payload,
                dedupe_key=f"digest:{today.isoformat()}",
            ),
        )
