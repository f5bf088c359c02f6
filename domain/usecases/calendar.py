"""What is on and when: change freezes, the calendar, the App Home, the ICS feed and the
daily digest."""

from __future__ import annotations

from datetime import date, datetime, timedelta

from domain import journal
from domain.calendar import CalendarRange, days_range, scheduled_moment
from domain.calendar_policy import BlackoutHit, Freeze, blackout_periods
from domain.enums import Category, Status
from domain.intents import DM_USER, Intent, IntentKind
from domain.limits import MAX_REASON
from domain.listing import Counted
from domain.messages import CalendarDigest, FreezeChanged, FreezeCovers
from domain.model import SYSTEM_ACTOR, AuditAction, AuditEntry, Change, PostState
from domain.ports import ChangeQuery, ListScope
from domain.read_models import CalendarView, FeedData, HomeView
from domain.role_labels import role_label
from domain.usecases.approvals import Approvals
from domain.usecases.base import CALENDAR_LIMIT, Deps, UseCase, post_slot
from domain.usecases.queries import scope_query

FEED_LIMIT = 5000  # changes in the ICS feed; past it the feed says how many it left out
FREEZE_OWNERS_LIMIT = 500  # approved changes whose owners a new freeze tells
CARD_FREEZE_STATUSES = (Status.APPROVED, Status.PENDING_APPROVAL, Status.CHANGES_REQUESTED)


class Calendar(UseCase):
    def __init__(self, deps: Deps, *, approvals: Approvals) -> None:
        super().__init__(deps)
        self._approvals = approvals  # the App Home lists what waits for the user's decision

    async def start_freeze(
        self, *, user: str, reason: str, until: date | None = None
    ) -> tuple[Freeze | None, str | None]:
        """An ad-hoc freeze for the roles the policy allows, until lifted or until the start
        of the day `until` in the policy's zone; (freeze, refusal). The owners of the
        approved changes inside it are told by DM, once, with it."""
        refusal = await self._freeze_refusal(user)
        if refusal:
            return None, refusal
        now = self._clock.now()
        ends_at, refusal = self._freeze_end(until, now=now)
        if refusal:
            return None, refusal
        reason = reason.strip()[:MAX_REASON]
        payload = FreezeChanged(started=True, by=user, reason=reason, until=ends_at)
        told = FreezeCovers(by=user, reason=reason, until=ends_at)
        covered = await self._covered(now=now, until=ends_at)
        refreshes = await self._card_refreshes(now=now, until=ends_at)
        owners = [
            Intent(IntentKind.MESSAGE, change.id, owner, told)
            for change in covered
            for owner in sorted({change.requester, change.implementer})
            if DM_USER.match(owner)
        ]
        details = {"reason": reason, "until": ends_at.isoformat() if ends_at else None}
        freeze = await self._repo.start_freeze(
            reason=reason,
            user=user,
            now=now,
            until=ends_at,
            audit=[
                AuditEntry(
                    user, AuditAction.FREEZE_STARTED, now, {**details, "covers": [c.id for c in covered]}
                )
            ],
            intents=[
                Intent(IntentKind.MESSAGE, None, self.policy.channels.changes, payload),
                *owners,
                *refreshes,
            ],
        )
        return self._announced(
            freeze, user, refusal="a change freeze is already on: `/change freeze end` lifts it"
        )

    def _freeze_end(self, until: date | None, *, now: datetime) -> tuple[datetime | None, str | None]:
        """When a freeze declared "until `until`" ends: 00:00 that day in the policy's zone;
        (None, refusal) for a day already begun or past, or beyond how far ahead changes go."""
        if until is None:
            return None, None
        if until <= now.date() - timedelta(days=1):
            return None, f"a freeze until {until} would end in the past"
        if until > (now + self.policy.limits.max_ahead).date() + timedelta(days=1):
            return None, f"a freeze until {until} would end too far ahead"
        ends_at = scheduled_moment(until, 0, 0, self.policy.zone)
        if ends_at <= now:
            return None, f"a freeze until {until} would end in the past"
        if ends_at > now + self.policy.limits.max_ahead:
            return None, f"a freeze until {until} would end too far ahead"
        return ends_at, None

    async def _covered(self, *, now: datetime, until: datetime | None) -> list[Change]:
        """The approved changes (emergencies aside) whose window a freeze from `now` touches."""
        query = ChangeQuery(
            statuses=(Status.APPROVED,), ends_after=now, starts_before=until, limit=FREEZE_OWNERS_LIMIT
        )
        return [c for c in await self._repo.list_changes(query) if c.draft.category is not Category.EMERGENCY]

    async def end_due_freezes(self) -> int:
        """End the freezes whose declared end has come, each announced once (the scheduler's
        tick; replicas share the work, the repository hands each freeze to one)."""
        now = self._clock.now()

        def closing(freeze: Freeze) -> tuple[list[AuditEntry], list[Intent]]:
            payload = FreezeChanged(started=False, by=SYSTEM_ACTOR, reason=freeze.reason, as_planned=True)
            audit = AuditEntry(SYSTEM_ACTOR, AuditAction.FREEZE_ENDED, now, {"as_planned": True})
            return [audit], [Intent(IntentKind.MESSAGE, None, self.policy.channels.changes, payload)]

        ended = await self._repo.close_due_freezes(now=now, closing=closing)
        for freeze in ended:
            journal.freeze(freeze, by=SYSTEM_ACTOR, started=False)
            # its line leaves the cards of the changes it overlapped
            refreshes = await self._card_refreshes(now=freeze.started_at, until=freeze.ended_at)
            await self._repo.add_intents(refreshes, now=now)
        if ended:
            self._notifier.wake()
        return len(ended)

    async def end_freeze(self, *, user: str) -> tuple[Freeze | None, str | None]:
        refusal = await self._freeze_refusal(user)
        if refusal:
            return None, refusal
        now = self._clock.now()
        payload = FreezeChanged(started=False, by=user, reason="")
        on = await self._repo.freezes(start=now, end=now + timedelta(microseconds=1))
        refreshes = await self._card_refreshes(now=now, until=on[0].ended_at) if on else []
        freeze = await self._repo.end_freeze(
            user=user,
            now=now,
            audit=[AuditEntry(user, AuditAction.FREEZE_ENDED, now, {})],
            intents=[Intent(IntentKind.MESSAGE, None, self.policy.channels.changes, payload), *refreshes],
        )
        return self._announced(freeze, user, refusal="there is no change freeze on", started=False)

    def _announced(
        self, freeze: Freeze | None, user: str, *, refusal: str, started: bool = True
    ) -> tuple[Freeze | None, str | None]:
        """(freeze, None) once a freeze started or ended, its message queued; (None, `refusal`)
        when the repository found nothing to change."""
        if freeze is None:
            return None, refusal
        journal.freeze(freeze, by=user, started=started)
        self._notifier.wake()
        return freeze, None

    async def _freeze_refusal(self, user: str) -> str | None:
        if await self._in_roles(user, self.policy.freeze_roles):
            return None
        roles = (
            ", ".join(role_label(r, self.policy.role_labels) for r in self.policy.freeze_roles) or "nobody"
        )
        return f"only these roles can declare or lift a change freeze: {roles}"

    async def active_freezes(self, *, start: datetime, end: datetime) -> list[Freeze]:
        return await self._repo.freezes(start=start, end=end)

    async def card_freezes(self, *, change: Change) -> list[Freeze]:
        """The freezes in force or declared ahead that the change's window overlaps, named
        on its card while it waits for or holds approval (emergencies are never frozen)."""
        now = self._clock.now()
        draft = change.draft
        if change.status not in CARD_FREEZE_STATUSES or draft.category is Category.EMERGENCY:
            return []
        if draft.ends_at <= now:
            return []
        return await self._repo.freezes(start=max(now, draft.starts_at), end=draft.ends_at)

    async def _card_refreshes(self, *, now: datetime, until: datetime | None = None) -> list[Intent]:
        """Refresh the cards a freeze from `now` to `until` is named on, or leaves."""
        query = ChangeQuery(
            statuses=CARD_FREEZE_STATUSES,
            ends_after=now,
            starts_before=until,
            limit=FREEZE_OWNERS_LIMIT,
            with_approvals=False,
        )
        changes = await self._repo.list_changes(query)
        return [
            Intent(IntentKind.REFRESH_CARDS, change.id)
            for change in changes
            if change.draft.category is not Category.EMERGENCY
        ]

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
