"""Tables. Times are stored as tz-aware UTC; JSON columns hold small snapshots."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.types import TypeDecorator
from sqlmodel import Column, Field, SQLModel

from domain.limits import MAX_SOURCE_KIND, MAX_SOURCE_REF, MAX_SOURCE_URL


class UtcDateTime(TypeDecorator[datetime]):
    """Always hand back tz-aware UTC, even from SQLite which stores naive text."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are not stored; pass tz-aware UTC")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def utc_column(*, nullable: bool = False, index: bool = False) -> Any:
    return Field(sa_column=Column(UtcDateTime(), nullable=nullable, index=index))


def json_column(*, nullable: bool = False) -> Any:
    return Field(sa_column=Column(sa.JSON(), nullable=nullable))


class ChangeRow(SQLModel, table=True):
    __tablename__ = "change_request"

    id: str = Field(primary_key=True, max_length=20)
    year: int
    sequence: int
    title: str = Field(max_length=200)
    category: str = Field(max_length=20, index=True)
    impact: str = Field(max_length=20)
    likelihood: str = Field(max_length=20)
    risk: str = Field(max_length=20)
    services: list[str] = json_column()
    starts_at: datetime = utc_column(index=True)
    ends_at: datetime = utc_column()
    description: str = Field(default="", sa_type=sa.Text)
    justification: str = Field(default="", sa_type=sa.Text)
    implementation_plan: str = Field(default="", sa_type=sa.Text)
    rollback_plan: str = Field(default="", sa_type=sa.Text)
    test_plan: str = Field(default="", sa_type=sa.Text)
    downtime_minutes: int = 0
    catalog_id: str | None = Field(default=None, max_length=100)
    requester: str = Field(max_length=40, index=True)
    implementer: str | None = Field(default=None, max_length=40)
    status: str = Field(max_length=30, index=True)
    version: int = 1
    steps: list[dict[str, Any]] = json_column()
    created_at: datetime = utc_column()
    updated_at: datetime = utc_column()
    approved_at: datetime | None = utc_column(nullable=True)
    severity: str | None = Field(default=None, max_length=20)
    incident_ref: str | None = Field(default=None, max_length=500)
    post_state: str | None = Field(default=None, max_length=20, index=True)
    post_due_at: datetime | None = utc_column(nullable=True)
    post_steps: list[dict[str, Any]] | None = Field(default=None, sa_column=Column(sa.JSON(), nullable=True))
    # Open changes this one overlapped when filed or moved (ids), shown to approvers.
    conflicts: list[str] | None = Field(default=None, sa_column=Column(sa.JSON(), nullable=True))
    caused_incident: str | None = Field(default=None, max_length=500)
    started_at: datetime | None = utc_column(nullable=True)
    finished_at: datetime | None = utc_column(nullable=True)
    outcome_notes: str = Field(default="", sa_type=sa.Text)
    # Where a pipeline-filed change came from (domain ChangeSource); all None for the form's.
    source_kind: str | None = Field(default=None, max_length=MAX_SOURCE_KIND)
    source_url: str | None = Field(default=None, max_length=MAX_SOURCE_URL)
    source_ref: str | None = Field(default=None, max_length=MAX_SOURCE_REF)
    # The template's further fields (domain ChangeDraft); None on rows filed before them.
    links: list[str] | None = Field(default=None, sa_column=Column(sa.JSON(), nullable=True))
    success_criteria: str | None = Field(default=None, sa_type=sa.Text)
    dependencies: str | None = Field(default=None, sa_type=sa.Text)
    stakeholders: list[str] | None = Field(default=None, sa_column=Column(sa.JSON(), nullable=True))
    rollback_minutes: int | None = None
    rollback_triggers: str | None = Field(default=None, sa_type=sa.Text)
    # Its approval deadline (policy approvals.deadline); None: not chased, or filed before.
    approval_due_at: datetime | None = utc_column(nullable=True)

    __table_args__ = (sa.UniqueConstraint("year", "sequence", name="uq_change_year_sequence"),)


class ChangeSequence(SQLModel, table=True):
    """Per-year counter, bumped in the CR's own transaction so ids never skip."""

    __tablename__ = "change_sequence"

    year: int = Field(primary_key=True)
    last: int = 0


class ApprovalRow(SQLModel, table=True):
    __tablename__ = "approval"

    id: int | None = Field(default=None, primary_key=True)
    change_id: str = Field(foreign_key="change_request.id", max_length=20, index=True)
    user_id: str = Field(max_length=40)
    decision: str = Field(max_length=20)
    step_index: int
    reason: str = Field(default="", sa_type=sa.Text)
    decided_at: datetime = utc_column()
    # "pre": approval before the change; "post": an emergency's post-approval.
    phase: str = Field(default="pre", max_length=10)

    # One decision per person per CR and phase: a double click cannot count twice.
    __table_args__ = (
        sa.UniqueConstraint("change_id", "user_id", "phase", name="uq_approval_change_user_phase"),
    )


class AuditRow(SQLModel, table=True):
    """Append-only: the code has no update or delete path for this table; on PostgreSQL a
    trigger refuses both. Tamper-evident: each entry is hash-chained to the one before it
    on its CR's chain (storage/audit_chain.py)."""

    __tablename__ = "audit_event"

    id: int | None = Field(default=None, primary_key=True)
    change_id: str | None = Field(default=None, max_length=20, index=True)
    actor: str = Field(max_length=40)
    action: str = Field(max_length=40)
    at: datetime = utc_column(index=True)
    details: dict[str, Any] = json_column()
    prev_hash: str = Field(max_length=64, unique=True, index=True)
    hash: str = Field(max_length=64)


class CardCopyRow(SQLModel, table=True):
    """Where a CR card was posted, so every copy can be updated in place."""

    __tablename__ = "card_copy"

    id: int | None = Field(default=None, primary_key=True)
    change_id: str = Field(foreign_key="change_request.id", max_length=20, index=True)
    channel: str = Field(max_length=40)
    ts: str = Field(max_length=40)
    user_id: str | None = Field(default=None, max_length=40)

    __table_args__ = (sa.UniqueConstraint("change_id", "channel", name="uq_card_copy_change_channel"),)


class OutboxRow(SQLModel, table=True):
    """A Slack write waiting to happen. Claimed atomically, sent once, never deleted
    before it is delivered."""

    __tablename__ = "outbox"

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=30)
    change_id: str | None = Field(default=None, max_length=20, index=True)
    channel: str | None = Field(default=None, max_length=40)
    payload: dict[str, Any] = json_column()
    dedupe_key: str | None = Field(default=None, max_length=200, unique=True)
    state: str = Field(default="pending", max_length=20)
    attempts: int = 0
    # Claimed from a sender whose lease ran out: it may have reached Slack before dying.
    recovered: bool = False
    due_at: datetime = utc_column()
    lease_until: datetime | None = utc_column(nullable=True)
    created_at: datetime = utc_column()
    sent_at: datetime | None = utc_column(nullable=True)
    last_error: str | None = Field(default=None, sa_type=sa.Text)

    __table_args__ = (sa.Index("ix_outbox_state_due", "state", "due_at"),)


class ProcessedEventRow(SQLModel, table=True):
    """Events API deliveries already handled; Slack retries must not act twice."""

    __tablename__ = "processed_event"

    event_id: str = Field(primary_key=True, max_length=100)
    received_at: datetime = utc_column()


class ProcessedRequestRow(SQLModel, table=True):
    """Slash commands and interactions already acted on, with the answer given: a replay
    or a double click gets that answer again instead of acting twice (bot/replay.py)."""

    __tablename__ = "processed_request"

    key: str = Field(primary_key=True, max_length=100)
    received_at: datetime = utc_column()
    status: int | None = None  # None while the first request is still being handled
    content_type: str | None = Field(default=None, max_length=100)
    body: str | None = Field(default=None, sa_type=sa.Text)

    __table_args__ = (sa.Index("ix_processed_request_received_at", "received_at"),)


class NoticeRow(SQLModel, table=True):
    """A timeline message due at a moment (T-24h, T-0, overrun, …). Claimed atomically
    when due and turned into outbox rows in the same transaction: sent exactly once."""

    __tablename__ = "notice"

    id: int | None = Field(default=None, primary_key=True)
    change_id: str = Field(foreign_key="change_request.id", max_length=20, index=True)
    key: str = Field(max_length=60)
    due_at: datetime = utc_column()
    expires_at: datetime | None = utc_column(nullable=True)
    state: str = Field(default="pending", max_length=20)
    lease_until: datetime | None = utc_column(nullable=True)
    late: bool = False
    created_at: datetime = utc_column()
    done_at: datetime | None = utc_column(nullable=True)
    note: str | None = Field(default=None, sa_type=sa.Text)

    __table_args__ = (sa.Index("ix_notice_state_due", "state", "due_at"),)


class JobRunRow(SQLModel, table=True):
    """One row per cron period (digest of a day, …): the first replica to insert it runs it."""

    __tablename__ = "job_run"

    job: str = Field(primary_key=True, max_length=60)
    period: str = Field(primary_key=True, max_length=40)
    ran_at: datetime = utc_column()


class FreezeRow(SQLModel, table=True):
    """An ad-hoc change freeze declared with `/change freeze start`; open until ended."""

    __tablename__ = "freeze"

    id: int | None = Field(default=None, primary_key=True)
    reason: str = Field(default="", sa_type=sa.Text)
    started_by: str = Field(max_length=40)
    started_at: datetime = utc_column()
    ended_by: str | None = Field(default=None, max_length=40)
    ended_at: datetime | None = utc_column(nullable=True, index=True)


def feed_token_hash(token: str) -> str:
    """What is stored of a feed token: a sha256 of 256 random bits needs no salt or stretching."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


class FeedTokenRow(SQLModel, table=True):
    """The secret in the ICS feed URL; rotating it revokes every old subscription.
    `token` holds feed_token_hash(token), never the token itself."""

    __tablename__ = "feed_token"

    id: int | None = Field(default=None, primary_key=True)
    token: str = Field(max_length=100, unique=True)
    created_at: datetime = utc_column()
    revoked_at: datetime | None = utc_column(nullable=True)


class HomeViewerRow(SQLModel, table=True):
    """Who has opened the App Home, so it can be refreshed when their changes move."""

    __tablename__ = "home_viewer"

    user_id: str = Field(primary_key=True, max_length=40)
    opened_at: datetime = utc_column()


class ReviewRow(SQLModel, table=True):
    """A post-implementation review: requested when a change ends badly or is major or
    an emergency, chased until written."""

    __tablename__ = "review"

    change_id: str = Field(primary_key=True, foreign_key="change_request.id", max_length=20)
    requested_at: datetime = utc_column()
    due_at: datetime = utc_column(index=True)
    reason: str = Field(max_length=100)
    submitted_at: datetime | None = utc_column(nullable=True)
    submitted_by: str | None = Field(default=None, max_length=40)
    answers: dict[str, Any] | None = Field(default=None, sa_column=Column(sa.JSON(), nullable=True))


class ChannelPaceRow(SQLModel, table=True):
    """When each channel may next receive a message: shared by every replica, so the
    ~1 message/s/channel pace holds however many processes send."""

    __tablename__ = "channel_pace"

    channel: str = Field(primary_key=True, max_length=40)
    next_free: datetime = utc_column()


class ApiTokenRow(SQLModel, table=True):
    """A pipeline's credential for the REST API. `token_hash` holds the token's sha256 hex
    (feed_token_hash), never the token; a revoked token stays for the audit's sake."""

    __tablename__ = "api_token"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=100, unique=True)
    token_hash: str = Field(max_length=64, unique=True)
    created_at: datetime = utc_column()
    last_used_at: datetime | None = utc_column(nullable=True)
    revoked_at: datetime | None = utc_column(nullable=True)


class GateRequestRow(SQLModel, table=True):
    """One deployment waiting at a change's gate (a GitHub deployment protection rule),
    answered later through its callback. `external_id` is the deployment's identity, so a
    redelivered webhook is the same row; `claimed_until` lets one replica answer it."""

    __tablename__ = "gate_request"

    id: int | None = Field(default=None, primary_key=True)
    # None: no CR was found for the deployment (it is answered rejected at once).
    change_id: str | None = Field(default=None, foreign_key="change_request.id", max_length=20, index=True)
    kind: str = Field(default="github", max_length=20)
    service: str | None = Field(default=None, max_length=100)
    repository: str = Field(max_length=200)
    environment: str = Field(max_length=200)
    external_id: str = Field(max_length=200, unique=True)
    callback_url: str = Field(max_length=500)
    installation_id: int | None = Field(default=None, sa_type=sa.BigInteger)
    status: str = Field(default="pending", max_length=20)  # pending | approved | rejected
    comment: str | None = Field(default=None, sa_type=sa.Text)
    created_at: datetime = utc_column()
    answered_at: datetime | None = utc_column(nullable=True)
    claimed_until: datetime | None = utc_column(nullable=True)
    version: int = 1

    __table_args__ = (sa.Index("ix_gate_request_status_claimed", "status", "claimed_until"),)


class DelegationRow(SQLModel, table=True):
    """An approver away hands their approvals to `delegate` from `starts_at` until
    `until`; `ended_at` set when they end it early or start another."""

    __tablename__ = "delegation"

    id: int | None = Field(default=None, primary_key=True)
    delegator: str = Field(max_length=40, index=True)
    delegate: str = Field(max_length=40)
    starts_at: datetime = utc_column()
    until: datetime = utc_column(index=True)
    ended_at: datetime | None = utc_column(nullable=True)
