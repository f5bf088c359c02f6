"""pipeline gates: a change's source, API tokens, gate requests

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-10 09:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import storage.models

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("change_request", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("source_kind", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=True)
        )
        batch_op.add_column(
            sa.Column("source_url", sqlmodel.sql.sqltypes.AutoString(length=500), nullable=True)
        )
        batch_op.add_column(
            sa.Column("source_ref", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True)
        )
    op.create_table(
        "api_token",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
        sa.Column("token_hash", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("created_at", storage.models.UtcDateTime(timezone=True), nullable=False),
        sa.Column("last_used_at", storage.models.UtcDateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", storage.models.UtcDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name"),
        sa.UniqueConstraint("token_hash"),
    )
    op.create_table(
        "gate_request",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("change_id", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=True),
        sa.Column("kind", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column("service", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=True),
        sa.Column("repository", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("environment", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("external_id", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("callback_url", sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
        sa.Column("installation_id", sa.BigInteger(), nullable=True),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.Column("created_at", storage.models.UtcDateTime(timezone=True), nullable=False),
        sa.Column("answered_at", storage.models.UtcDateTime(timezone=True), nullable=True),
        sa.Column("claimed_until", storage.models.UtcDateTime(timezone=True), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["change_id"], ["change_request.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("external_id"),
    )
    with op.batch_alter_table("gate_request", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_gate_request_change_id"), ["change_id"], unique=False)
        batch_op.create_index("ix_gate_request_status_claimed", ["status", "claimed_until"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("gate_request", schema=None) as batch_op:
        batch_op.drop_index("ix_gate_request_status_claimed")
        batch_op.drop_index(batch_op.f("ix_gate_request_change_id"))
    op.drop_table("gate_request")
    op.drop_table("api_token")
    with op.batch_alter_table("change_request", schema=None) as batch_op:
        batch_op.drop_column("source_ref")
        batch_op.drop_column("source_url")
        batch_op.drop_column("source_kind")
