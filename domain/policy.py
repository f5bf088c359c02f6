"""The change policy: who approves what, how risk is scored, which changes are pre-approved.

Loaded once at start-up from YAML; every error names the key and the line so a
broken policy is fixed in one go instead of by trial and error.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from domain.approval_policy import ApprovalDeadline, ExtraStep, approval_problems
from domain.bounds import CEILING_AHEAD, CEILING_DURATION, DEFAULT_MAX_AHEAD, DEFAULT_MAX_DURATION
from domain.calendar_policy import Blackout, Windows
from domain.durations import Duration
from domain.enums import Category, Impact, Likelihood, Risk
from domain.gate_policy import GatePolicy, Integrations, integration_problems
from domain.lead_time import default_lead_time
from domain.metrics import Targets
from domain.quiet_hours import QuietHours
from domain.risk import DEFAULT_RISK_MATRIX
from domain.role_labels import RoleLabel, role_label_problems, role_labels_field
from domain.template_fields import RequiredField, default_required_fields

SLACK_ID = re.compile(r"^[UWS][A-Z0-9]{2,}$")
CHANNEL_ID = re.compile(r"^[CGD][A-Z0-9]{2,}$")
SLUG = re.compile(r"^[a-z0-9][a-z0-9_.-]*$")
HH_MM = r"^([01]\d|2[0-3]):[0-5]\d$"  # a time of day, like 09:00


def _known_zone(value: str, *, hint: str = "") -> str:
    """`value` when it names an IANA time zone; else the error the policy file shows."""
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone '{value}'{hint}") from None
    return value


def _slack_member(value: str) -> str:
    # Checked per member (not in Policy._members) so the error's path and line are the member's.
    if not SLACK_ID.match(value):
        raise ValueError(f"'{value}' is not a Slack user id (U…/W…) or user-group id (S…)")
    return value


SlackMember = Annotated[str, AfterValidator(_slack_member)]


def _slug(value: str) -> str:
    # An id the policy file and the timeline refer to, so it stays plain and stable.
    if not SLUG.match(value):
        raise ValueError(f"'{value}' must be lower-case letters, digits, '-', '_' or '.'")
    return value


Slug = Annotated[str, AfterValidator(_slug)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Channels(_Strict):
    changes: str
    incidents: str | None = None

    @field_validator("changes", "incidents")
    @classmethod
    def _channel_id(cls, value: str | None) -> str | None:
        if value is not None and not CHANNEL_ID.match(value):
            raise ValueError(f"'{value}' is not a Slack channel id (like C0123ABCD)")
        return value


class ApprovalStepSpec(_Strict):
    """One required approval step: `count` distinct members of `role` must approve."""

    role: str
    count: int = Field(default=1, ge=1, le=20)


class Approvals(_Strict):
    by_risk: dict[Risk, list[ApprovalStepSpec]]
    by_category: dict[Category, list[ApprovalStepSpec]] = Field(default_factory=dict)
    # Separation of duties: who carries a change out does not approve it, unless allowed here.
    implementer_may_approve: bool = False
    deadline: ApprovalDeadline = Field(default_factory=ApprovalDeadline)  # reminders, escalation
    extra_steps: list[ExtraStep] = Field(default_factory=list, max_length=20)  # review steps by rule

    @field_validator("by_risk")
    @classmethod
    def _every_risk(cls, value: dict[Risk, list[ApprovalStepSpec]]) -> dict[Risk, list[ApprovalStepSpec]]:
        missing = [risk.value for risk in Risk if risk not in value]
        if missing:
            raise ValueError(f"missing risk levels: {', '.join(missing)}")
        return value


class CatalogEntry(_Strict):
    """A pre-approved standard change: following its procedure needs no approval."""

    id: Slug
    title: str = Field(min_length=1, max_length=75)
    description: str = ""
    services: list[str] = Field(default_factory=list)


RESERVED_NOTICE_IDS = frozenset({"short_notice", "overrun", "monitoring_end"})
Audience = Literal["thread", "implementer", "stakeholders", "changes"]


def _thread_only() -> list[Audience]:
    return ["thread"]


class NoticeSpec(_Strict):
    """One timeline message, `at` relative to the window start (T-24h is `-24h`)."""

    id: Slug
    at: Duration
    audience: list[Audience] = Field(default_factory=_thread_only, min_length=1)
    text: str = Field(min_length=1, max_length=500)
    buttons: Literal["none", "implementation"] = "none"
    check_readiness: bool = False


def _default_notices() -> list[NoticeSpec]:
    """Seed process 002's full timeline: T-24h, T-1h, T-15m, T-0, T+15m, T+30m."""
    return [
        NoticeSpec(
            id="t_minus_24h",
            at=timedelta(hours=-24),
            audience=["thread", "stakeholders"],
            text="Heads-up: this change starts in 24 hours.",
        ),
        NoticeSpec(
            id="t_minus_1h",
            at=timedelta(hours=-1),
            audience=["thread", "implementer"],
            text="Final reminder: this change starts in one hour. Check CI, staging and approvals.",
            check_readiness=True,
        ),
        NoticeSpec(
            id="t_minus_15m",
            at=timedelta(minutes=-15),
            audience=["implementer"],
            text="Prepare: take a backup, open the dashboards, join #incidents.",
        ),
        NoticeSpec(
            id="t_0",
            at=timedelta(0),
            audience=["thread", "implementer"],
            text="The change window opens now.",
            buttons="implementation",
        ),
        NoticeSpec(
            id="t_plus_15m",
            at=timedelta(minutes=15),
            audience=["thread", "implementer"],
            text="Status update, please: how is the change going?",
            buttons="implementation",
        ),
        NoticeSpec(
            id="t_plus_30m",
            at=timedelta(minutes=30),
            audience=["implementer"],
            text="Verify: run the smoke tests and check the success criteria.",
        ),
    ]


def _default_monitoring() -> dict[Category, timedelta]:
    return {
        Category.STANDARD: timedelta(minutes=15),
        Category.NORMAL: timedelta(hours=1),
        Category.MAJOR: timedelta(hours=4),
        Category.EMERGENCY: timedelta(minutes=30),
    }


class Timeline(_Strict):
    notices: list[NoticeSpec] = Field(default_factory=_default_notices, max_length=20)
    # Approved after a pre-start notice was due? Say so once instead of sending stale ones.
    short_notice: bool = True
    # Sent after downtime this much past its time: marked late.
    late_after: Duration = timedelta(minutes=5)
    overrun_alert: bool = True
    stakeholders: dict[Category, list[str]] = Field(default_factory=dict)
    monitoring: dict[Category, Duration] = Field(default_factory=_default_monitoring)
    rollback_triggers: list[str] = Field(default_factory=list)

    @field_validator("notices")
    @classmethod
    def _unique_ids(cls, value: list[NoticeSpec]) -> list[NoticeSpec]:
        seen: set[str] = set()
        for spec in value:
            if spec.id in RESERVED_NOTICE_IDS:
                raise ValueError(f"notice id '{spec.id}' is reserved for changebot's own notices")
            if spec.id in seen:
                raise ValueError(f"notice id '{spec.id}' is used twice")
            seen.add(spec.id)
        return value

    @field_validator("stakeholders")
    @classmethod
    def _channels(cls, value: dict[Category, list[str]]) -> dict[Category, list[str]]:
        for channels in value.values():
            for channel in channels:
                if not CHANNEL_ID.match(channel):
                    raise ValueError(f"'{channel}' is not a Slack channel id (like C0123ABCD)")
        return value


class Digest(_Strict):
    enabled: bool = True
    at: str = Field(default="09:00", pattern=HH_MM)
    days_ahead: int = Field(default=3, ge=0, le=14)

    @property
    def hour(self) -> int:
        return int(self.at[:2])

    @property
    def minute(self) -> int:
        return int(self.at[3:])


class PostApproval(_Strict):
    """Seed 002: an emergency is post-approved by a manager within 24 hours."""

    role: str = "engineering_manager"
    count: int = Field(default=1, ge=1, le=20)
    within: Duration = timedelta(hours=24)
    remind_every: Duration = timedelta(hours=4)
    last_reminder: Duration = timedelta(hours=20)


class Emergency(_Strict):
    # not_required: fix first, document concurrently (seed 002); on_call: wait for the
    # on-call engineer's go-ahead before starting.
    go_ahead: Literal["not_required", "on_call"] = "not_required"
    # Approvals before the fix may start (seed 000: "On-call engineer + manager"): `on_call`
    # (whoever PagerDuty says is on call) and/or role names, one approval each. Empty: none.
    pre_approval: list[str] = Field(default_factory=list, max_length=5)
    fallback: list[SlackMember] = Field(default_factory=list)
    post_approval: PostApproval = Field(default_factory=PostApproval)
    escalate_to: str = "cto"
    severities: list[str] = Field(default_factory=lambda: ["P0", "P1", "P2"], min_length=1, max_length=10)
    window: Duration = timedelta(hours=2)


class OnCall(_Strict):
    """Who is on call, from PagerDuty: level 1 of these escalation policies / schedules."""

    escalation_policy_ids: list[str] = Field(default_factory=list)
    schedule_ids: list[str] = Field(default_factory=list)
    cache_seconds: int = Field(default=60, ge=0, le=3600)


BadOutcome = Literal["failed", "rolled_back"]


def _bad_outcomes() -> list[BadOutcome]:
    return ["failed", "rolled_back"]


class ReviewPolicy(_Strict):
    """Post-implementation reviews (seed 003's template; due within 48 h, 24 h for emergencies)."""

    required_for: list[Category] = Field(default_factory=lambda: [Category.MAJOR, Category.EMERGENCY])
    also_when: list[BadOutcome] = Field(default_factory=_bad_outcomes)
    due_within: Duration = timedelta(hours=48)
    due_within_emergency: Duration = timedelta(hours=24)
    remind_before: Duration = timedelta(hours=12)
    escalate_to: str = "engineering_manager"
    checklist: list[str] = Field(default_factory=list, max_length=20)


class CabPolicy(_Strict):
    """The weekly Change Advisory Board agenda (seed 000: Wednesdays 15:00 UTC)."""

    enabled: bool = True
    day: Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"] = "wed"
    at: str = Field(default="15:00", pattern=HH_MM)
    timezone: str = "UTC"
    channel: str | None = None  # default: the changes channel
    role: str | None = None  # approval steps of this role are "awaiting CAB"; None: every pending step

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        return _known_zone(value)


class WeeklyReport(_Strict):
    """The weekly report (seed 004's weekly figures): the seven days before `day`, posted at
    `at` (policy time zone) with trends against the week before."""

    day: Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"] = "mon"
    at: str = Field(default="09:00", pattern=HH_MM)
    channel: str | None = None  # default: the monthly report's channel, else the changes channel

    @field_validator("channel")
    @classmethod
    def _channel_id(cls, value: str | None) -> str | None:
        if value is not None and not CHANNEL_ID.match(value):
            raise ValueError(f"'{value}' is not a Slack channel id (like C0123ABCD)")
        return value


class ReportPolicy(_Strict):
    """The monthly report (seed 001/002), posted on `day` at `at` for the month before."""

    monthly: bool = True
    day: int = Field(default=1, ge=1, le=28)
    at: str = Field(default="09:00", pattern=HH_MM)
    channel: str | None = None  # default: the changes channel
    weekly: WeeklyReport | None = None  # off unless set


class ReschedulePolicy(_Strict):
    """Moving an approved change's window voids its approvals, unless by at most this much."""

    keep_approval_within: Duration = Field(default=timedelta(0), ge=timedelta(0))


class Limits(_Strict):
    title: int = Field(default=150, ge=10, le=150)
    text: int = Field(default=2500, ge=100, le=2900)
    max_ahead: Duration = DEFAULT_MAX_AHEAD  # how far ahead a change may start
    max_duration: Duration = DEFAULT_MAX_DURATION  # the longest change window

    @field_validator("max_ahead", "max_duration")
    @classmethod
    def _within_ceiling(cls, value: timedelta, info: ValidationInfo) -> timedelta:
        ceiling = CEILING_AHEAD if info.field_name == "max_ahead" else CEILING_DURATION
        if not timedelta(hours=1) <= value <= ceiling:
            raise ValueError(f"must be between 1h and {ceiling.days}d")
        return value


class Policy(_Strict):
    timezone: str = "UTC"
    channels: Channels
    roles: dict[str, list[SlackMember]]
    role_labels: dict[str, RoleLabel] = role_labels_field()  # how a role reads: {cto: CTO}
    services: list[str] = Field(min_length=1, max_length=100)
    risk_matrix: dict[Likelihood, dict[Impact, Risk]] = Field(
        default_factory=lambda: {k: dict(v) for k, v in DEFAULT_RISK_MATRIX.items()}
    )
    approvals: Approvals
    standard_catalog: list[CatalogEntry] = Field(default_factory=list, max_length=100)
    limits: Limits = Field(default_factory=Limits)
    group_cache_seconds: int = Field(default=300, ge=0, le=86400)
    # Sections the timeline, emergency, calendar and review features read; kept
    # loosely typed here so one policy file serves every feature.
    emergency: Emergency = Field(default_factory=Emergency)
    oncall: OnCall = Field(default_factory=OnCall)
    timeline: Timeline = Field(default_factory=Timeline)
    digest: Digest = Field(default_factory=Digest)
    windows: Windows = Field(default_factory=dict)
    blackouts: list[Blackout] = Field(default_factory=list, max_length=50)
    exceptions: ApprovalStepSpec = Field(default_factory=lambda: ApprovalStepSpec(role="engineering_manager"))
    freeze_roles: list[str] = Field(default_factory=lambda: ["engineering_manager", "cto"])
    # Besides the requester and the implementer, who may mark a change as an incident's cause.
    incident_roles: list[str] = Field(default_factory=list)
    # How early before its approved window a change may start (shared with pipeline gates).
    start_tolerance: Duration = Field(default=timedelta(minutes=30), ge=timedelta(0))
    # Who may start a change outside its window or in a freeze/blackout, with a reason.
    start_override_roles: list[str] = Field(default_factory=list)
    reschedule: ReschedulePolicy = Field(default_factory=lambda: ReschedulePolicy())
    dependencies: dict[str, list[str]] = Field(default_factory=dict)
    review: ReviewPolicy = Field(default_factory=ReviewPolicy)
    cab: CabPolicy = Field(default_factory=CabPolicy)
    report: ReportPolicy = Field(default_factory=ReportPolicy)
    targets: Targets = Field(default_factory=Targets)
    gates: GatePolicy = Field(default_factory=GatePolicy)  # pipelines waiting at a change's gate
    integrations: Integrations = Field(default_factory=Integrations)  # what else asks the gates
    # Form fields a category must fill in, besides the built-in ones (003/004: a test plan).
    required_fields: dict[Category, list[RequiredField]] = Field(default_factory=default_required_fields)
    # How far ahead of its start a category is filed (004); sooner takes the exception path.
    lead_time: dict[Category, Duration] = Field(default_factory=default_lead_time)
    quiet_hours: QuietHours | None = None  # DMs due at night wait for the recipient's morning

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        return _known_zone(value, hint=" (use an IANA name like Europe/Berlin)")

    @model_validator(mode="after")
    def _emergency_window_fits(self) -> Policy:
        if self.emergency.window > self.limits.max_duration:
            raise ValueError("emergency.window is longer than limits.max_duration")
        return self

    @field_validator("roles")
    @classmethod
    def _members(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        for role, members in value.items():
            if not SLUG.match(role):
                raise ValueError(f"role name '{role}' must be a lower-case slug")
            if not members:
                raise ValueError(f"role '{role}' has no members")
        return value

    @field_validator("risk_matrix")
    @classmethod
    def _complete_matrix(
        cls, value: dict[Likelihood, dict[Impact, Risk]]
    ) -> dict[Likelihood, dict[Impact, Risk]]:
        for likelihood in Likelihood:
            row = value.get(likelihood)
            if row is None:
                raise ValueError(f"missing likelihood row '{likelihood.value}'")
            missing = [impact.value for impact in Impact if impact not in row]
            if missing:
                raise ValueError(f"row '{likelihood.value}' misses impact {', '.join(missing)}")
        return value

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def catalog_entry(self, entry_id: str) -> CatalogEntry | None:
        return next((entry for entry in self.standard_catalog if entry.id == entry_id), None)

    def steps_for(self, *, category: Category, risk: Risk) -> list[ApprovalStepSpec]:
        """The category's own steps if the policy sets them, else those for the risk."""
        if category in self.approvals.by_category:
            return list(self.approvals.by_category[category])
        return list(self.approvals.by_risk[risk])


@dataclass(frozen=True)
class PolicyProblem:
    path: str
    line: int | None
    message: str

    def __str__(self) -> str:
        return f"line {self.line or '?'}: {self.path}: {self.message}"


class PolicyError(Exception):
    """Every problem in a policy file at once, each with its key path and line."""

    def __init__(self, source: str, problems: Sequence[PolicyProblem]) -> None:
        self.source = source
        self.problems = list(problems)
        super().__init__(self.render())

    def render(self) -> str:
        lines = [f"{self.source}: invalid policy ({len(self.problems)} problem(s))"]
        lines += [f"  {self.source}:{p.line or '?'}: {p.path}: {p.message}" for p in self.problems]
        return "\n".join(lines)


def _format_path(loc: Iterable[Any]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "(top level)"


LineFinder = Any  # callable(loc) -> int | None; supplied by the YAML loader


def validate_policy(data: Any, *, source: str = "policy.yml", line_of: LineFinder | None = None) -> Policy:
    """Validate parsed policy data, then cross-check references between sections."""
    locate = line_of or (lambda loc: None)
    if not isinstance(data, dict):
        raise PolicyError(source, [PolicyProblem("(top level)", 1, "expected a mapping of keys")])
    try:
        policy = Policy.model_validate(data)
    except ValidationError as exc:
        merged: dict[tuple[Any, ...], list[str]] = {}
        for error in exc.errors():
            # Union branches show up in the location as "literal['anytime']" and the
            # like; drop them and say the alternatives in one line instead.
            loc = tuple(
                part
                for part in error["loc"]
                if not (isinstance(part, str) and ("[" in part or "function-" in part))
            )
            message = error["msg"].removeprefix("Value error, ")
            if error["type"] == "extra_forbidden":
                message = "unknown key"
            if message not in merged.setdefault(loc, []):
                merged[loc].append(message)
        problems = [
            PolicyProblem(_format_path(loc), locate(loc), "; or ".join(msgs)) for loc, msgs in merged.items()
        ]
        raise PolicyError(source, problems) from None
    problems = list(_cross_check(policy, locate))
    if problems:
        raise PolicyError(source, problems)
    return policy


def _cross_check(policy: Policy, locate: LineFinder) -> Iterable[PolicyProblem]:
    known_roles = sorted(policy.roles)
    steps: list[tuple[tuple[Any, ...], ApprovalStepSpec]] = []
    for risk, risk_steps in policy.approvals.by_risk.items():
        steps += [(("approvals", "by_risk", risk.value, i), s) for i, s in enumerate(risk_steps)]
    for category, cat_steps in policy.approvals.by_category.items():
        steps += [(("approvals", "by_category", category.value, i), s) for i, s in enumerate(cat_steps)]
    for loc, step in steps:
        if step.role not in policy.roles:
            yield PolicyProblem(
                _format_path((*loc, "role")),
                locate((*loc, "role")),
                f"unknown role '{step.role}' (roles: {', '.join(known_roles)})",
            )
    role_refs: list[tuple[tuple[Any, ...], str]] = [
        (("emergency", "post_approval", "role"), policy.emergency.post_approval.role),
        (("emergency", "escalate_to"), policy.emergency.escalate_to),
        (("exceptions", "role"), policy.exceptions.role),
        (("review", "escalate_to"), policy.review.escalate_to),
    ]
    if policy.cab.role:
        role_refs.append((("cab", "role"), policy.cab.role))
    role_refs += [
        (("emergency", "pre_approval", i), role)
        for i, role in enumerate(policy.emergency.pre_approval)
        if role != "on_call"
    ]
    role_refs += [(("freeze_roles", i), role) for i, role in enumerate(policy.freeze_roles)]
    role_refs += [(("incident_roles", i), role) for i, role in enumerate(policy.incident_roles)]
    role_refs += [(("start_override_roles", i), role) for i, role in enumerate(policy.start_override_roles)]
    for loc, role in role_refs:
        if role not in policy.roles:
            yield PolicyProblem(
                _format_path(loc), locate(loc), f"unknown role '{role}' (roles: {', '.join(known_roles)})"
            )
    services = set(policy.services)
    if len(services) != len(policy.services):
        yield PolicyProblem("services", locate(("services",)), "services are listed twice")
    for service, needs in policy.dependencies.items():
        for j, name in enumerate([service, *needs]):
            if name not in services:
                loc = ("dependencies", service) if j == 0 else ("dependencies", service, j - 1)
                yield PolicyProblem(_format_path(loc), locate(loc), f"unknown service '{name}'")
    seen: set[str] = set()
    for i, entry in enumerate(policy.standard_catalog):
        if entry.id in seen:
            loc = ("standard_catalog", i, "id")
            yield PolicyProblem(_format_path(loc), locate(loc), f"duplicate id '{entry.id}'")
        seen.add(entry.id)
        for j, service in enumerate(entry.services):
            if service not in services:
                loc = ("standard_catalog", i, "services", j)
                yield PolicyProblem(_format_path(loc), locate(loc), f"unknown service '{service}'")
    for category, lead in policy.lead_time.items():
        loc = ("lead_time", category.value)
        if category is Category.EMERGENCY:
            yield PolicyProblem(_format_path(loc), locate(loc), "emergency changes have no lead time")
        elif not timedelta(0) <= lead < policy.limits.max_ahead:
            yield PolicyProblem(
                _format_path(loc), locate(loc), "must be from 0 to less than limits.max_ahead"
            )
    catalog = {entry.id: entry.services for entry in policy.standard_catalog}
    for loc, message in integration_problems(policy.integrations, catalog=catalog, services=policy.services):
        yield PolicyProblem(_format_path(loc), locate(loc), message)
    approvals = policy.approvals
    for loc, message in approval_problems(
        deadline=approvals.deadline,
        extra_steps=approvals.extra_steps,
        roles=policy.roles,
        services=policy.services,
    ):
        yield PolicyProblem(_format_path(loc), locate(loc), message)
    for loc, message in role_label_problems(policy.role_labels, roles=policy.roles):
        yield PolicyProblem(_format_path(loc), locate(loc), message)
