"""What every feature's use cases share: the injected ports, clock and policy, filing a
new CR, the one conditional write, the scheduled posts' time slot and once-per-period
claim, reading a CR, audited refusals, step eligibility, planning, and settling or
escalating a due notice. It imports no feature module, so every feature can import it."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from domain import first_start, journal
from domain.authz import deciders_excluded
from domain.calendar import scheduled_moment
from domain.clock import Clock
from domain.delegation import delegators_of
from domain.errors import ChangeNotFound
from domain.intents import Intent, IntentKind
from domain.listing import Counted
from domain.messages import ApprovalChase, PostChase, ReviewChase
from domain.model import SYSTEM_ACTOR, AuditAction, AuditEntry, Change, NewChange, StepSnapshot
from domain.policy import Policy
from domain.ports import (
    ChangeQuery,
    ChangeRepository,
    ChangeUpdate,
    Directory,
    DueNotice,
    NoticeSettlement,
    Notifier,
)
from domain.refusal_limit import RefusalLimiter
from domain.timeline import PlannedNotice, plan_notices

CALENDAR_LIMIT = 100  # the changes a calendar section or agenda item shows; it says the true total
DIGEST_GRACE = timedelta(hours=6)  # a scheduled post missed by longer (the bot was down) is skipped


def post_slot(now: datetime, *, at: str, zone: ZoneInfo) -> tuple[date, bool]:
    """The local day at `now`, and whether `now` is within DIGEST_GRACE after that day's
    `at` (HH:MM): the scheduled posts go out then, or are skipped for that day."""
    today = now.astimezone(zone).date()
    moment = scheduled_moment(today, int(at[:2]), int(at[3:]), zone)
    return today, moment <= now < moment + DIGEST_GRACE


@dataclass(frozen=True, kw_only=True)
class Deps:
    """What the use cases are given, once for all features (one refusal limiter, so a
    flood of refused clicks is counted the same whichever feature refuses them)."""

    repository: ChangeRepository
    directory: Directory
    notifier: Notifier
    clock: Clock
    policy: Policy
    change_events: bool = False  # PagerDuty Change Events configured
    refusals: RefusalLimiter = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "refusals", RefusalLimiter(clock=self.clock))


class UseCase:
    """The base of each feature's use cases: the ports under the names the use cases use."""

    def __init__(self, deps: Deps) -> None:
        self._repo = deps.repository
        self._directory = deps.directory
        self._notifier = deps.notifier
        self._clock = deps.clock
        self.policy = deps.policy
        self._change_events = deps.change_events
        self._refusals = deps.refusals

    async def _file(
        self,
        new: NewChange,
        *,
        team_id: str | None,
        audit: Sequence[AuditEntry],
        intents: Callable[[str], Sequence[Intent]],
        notices: Sequence[PlannedNotice],
    ) -> Change:
        """Store a new CR in one write: its trail opened by the SUBMITTED entry (then
        `audit`), the intents made for the id it gets, and its planned notices."""
        submitted = AuditEntry(
            new.requester,
            AuditAction.SUBMITTED,
            new.created_at,
            {
                "category": new.draft.category.value,
                "risk": new.risk.value,
                "team_id": team_id,
                "steps": [{"role": s.role, "count": s.count} for s in new.steps],
                **({"source": asdict(new.draft.source)} if new.draft.source else {}),
            },
        )
        change = await self._repo.create_change(
            new, audit=[submitted, *audit], intents=intents, notices=notices
        )
        journal.filed(change)
        self._notifier.wake()
        return change

    async def _commit(
        self, change: Change, update: ChangeUpdate, audit: list[AuditEntry], intents: list[Intent]
    ) -> bool:
        """The conditional write every use case ends with: False if the CR moved meanwhile."""
        stored = await self._repo.update_change(
            change_id=change.id, expected_version=change.version, update=update, audit=audit, intents=intents
        )
        if stored:
            journal.committed(change, update.status, audit)
            self._notifier.wake()
        return stored

    async def _due(self, job: str, period: str, *, due: bool, now: datetime, catch_up: bool) -> bool:
        """Whether the scheduled post `job` of `period` goes out now: when `due`, but not on the
        start-up catch-up of a new database, which posts none (domain/first_start.py)."""
        if catch_up and await first_start.baseline(self._repo, job=job, due=period if due else None, now=now):
            return False
        return due

    async def _post_once(
        self, job: str, *, period: str, now: datetime, entry: AuditEntry, intent: Intent, name: str = ""
    ) -> bool:
        """Queue a scheduled post once per period across restarts and replicas: True for the
        caller that did. `name` is what the journal calls it (default: `job`)."""
        claimed = await self._repo.claim_job_run(
            job=job, period=period, now=now, audit=[entry], intents=[intent]
        )
        journal.job_run(name or job, period, claimed=claimed)
        if claimed:
            self._notifier.wake()
        return claimed

    async def _require(self, change_id: str, *, history: bool = False) -> Change:
        change = await self._repo.get_change(change_id.strip().upper(), history=history)
        if change is None:
            raise ChangeNotFound(change_id)
        return change

    async def _audit_refusal(self, change_id: str, entry: AuditEntry) -> None:
        """A refused click is audited at most once a minute per user, CR and action, so a
        bystander cannot flood a trail; the repeats are counted in the next entry."""
        what = ":".join(str(entry.details.get(k, "")) for k in ("phase", "decision", "action"))
        repeats = self._refusals.admit(user=entry.actor, change_id=change_id, action=what)
        if repeats is None:
            return
        details = {**entry.details, "repeats_not_written": repeats} if repeats else entry.details
        await self._repo.append_audit(change_id, replace(entry, details=details))

    async def _eligible_steps(
        self, change: Change, user: str, steps: Sequence[StepSnapshot] | None = None
    ) -> set[int]:
        """The steps `user` may sign: as a member, or as the delegate of a member who is
        away (unless that member requested the change, carries it out or decided on it)."""
        people = {user} | await self._acting_for(change, user)
        eligible = set()
        for index, step in enumerate(change.steps if steps is None else steps):
            if people & set(step.members) or people & await self._directory.expand(step.members):
                eligible.add(index)
        return eligible

    async def _acting_for(self, change: Change, user: str) -> set[str]:
        """Whose approvals `user` holds for `change` right now (delegation)."""
        now = self._clock.now()
        held = delegators_of(user, await self._repo.delegations(now=now), now=now)
        if not held:
            return held
        decided = {entry.user for entry in (*change.approvals, *change.post_approvals)}
        return held - decided - deciders_excluded(change, self.policy)

    async def _in_roles(self, user: str, roles: Sequence[str]) -> bool:
        allowed: set[str] = set()
        for role in roles:
            allowed |= await self._directory.expand(self.policy.roles.get(role, []))
        return user in allowed

    def _plan(
        self, starts_at: datetime, ends_at: datetime, *, approved_at: datetime, pre_approved: bool = False
    ) -> list[PlannedNotice]:
        return plan(self.policy, starts_at, ends_at, approved_at=approved_at, pre_approved=pre_approved)

    async def _counted(self, query: ChangeQuery) -> Counted:
        """The first `query.limit` CRs and their true total (a COUNT only when the cap is hit)."""
        items = await self._repo.list_changes(query)
        if len(items) < query.limit:
            return Counted.of(items)
        return Counted.of(items, total=await self._repo.count_changes(query))


def plan(
    policy: Policy,
    starts_at: datetime,
    ends_at: datetime,
    *,
    approved_at: datetime,
    pre_approved: bool = False,
) -> list[PlannedNotice]:
    """An approved window's notices (intake, approvals and emergencies all plan them);
    `pre_approved`: a standard change that needed no sign-off (no short-notice message)."""
    return plan_notices(
        policy.timeline,
        starts_at=starts_at,
        ends_at=ends_at,
        approved_at=approved_at,
        pre_approved=pre_approved,
    )


# --- settling a due notice (each notice family's function builds on these) ------------
def is_late(notice: DueNotice, *, now: datetime, policy: Policy) -> bool:
    """Sent past the policy's lateness allowance (the bot was down, or busy)."""
    return now - notice.due_at > policy.timeline.late_after


def skipped(change: Change, notice: DueNotice, *, now: datetime, reason: str) -> NoticeSettlement:
    """A notice that lost its point: audited as skipped, nothing sent."""
    audit = [
        AuditEntry(
            SYSTEM_ACTOR,
            AuditAction.NOTICE_SKIPPED,
            now,
            {"notice": notice.key, "due_at": notice.due_at.isoformat(), "reason": reason},
        )
    ]
    return NoticeSettlement(
        notice.id, change.id, sent=False, late=False, note=reason, audit=audit, intents=[]
    )


def late_audit(notice: DueNotice, *, now: datetime, late: bool) -> list[AuditEntry]:
    """Every notice sent is in the trail; one sent after its time (the bot was down) says so."""
    details = {"notice": notice.key, "due_at": notice.due_at.isoformat()}
    action = AuditAction.NOTICE_SENT_LATE if late else AuditAction.NOTICE_SENT
    return [AuditEntry(SYSTEM_ACTOR, action, now, details)]


def escalation(
    change: Change, notice: DueNotice, payload: PostChase | ReviewChase | ApprovalChase, *, role: str
) -> Intent:
    """A chase at its deadline, sent to every member of the policy's escalation `role` too."""
    return Intent(
        IntentKind.DM_ROLE,
        change.id,
        None,
        replace(payload, role=role),
        dedupe_key=f"notice:{notice.id}:escalate",
    )
