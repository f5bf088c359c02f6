"""approval chase and delegation: a change's approval deadline, approvers' delegations

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-04 06:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import storage.models

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("change_request", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("approval_due_at", storage.models.UtcDateTime(timezone=True), nullable=True)
        )
    op.create_table(
        "delegation",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("delegator", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("delegate", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("starts_at", storage.models.UtcDateTime(timezone=True), nullable=False),
        sa.Column("until", storage.models.UtcDateTime(timezone=True), nullable=False),
        sa.Column("ended_at", storage.models.UtcDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("delegation", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_delegation_delegator"), ["delegator"], unique=False)
        batch_op.create_index(batch_op.f("ix_delegation_until"), ["until"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("delegation", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_delegation_until"))
        batch_op.drop_index(batch_op.f("ix_delegation_delegator"))
    op.drop_table("delegation")
    with op.batch_alter_table("change_request", schema=None) as batch_op:
        batch_op.drop_column("approval_due_at")
