"""the change request template's further fields: links, success criteria, dependencies,
stakeholders, rollback duration and triggers

Revision ID: 0011
Revises: 0009
Create Date: 2026-12-12 09:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("change_request", schema=None) as batch_op:
        batch_op.add_column(sa.Column("links", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("success_criteria", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("dependencies", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("stakeholders", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("rollback_minutes", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("rollback_triggers", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("change_request", schema=None) as batch_op:
        batch_op.drop_column("rollback_triggers")
        batch_op.drop_column("rollback_minutes")
        batch_op.drop_column("stakeholders")
        batch_op.drop_column("dependencies")
        batch_op.drop_column("success_criteria")
        batch_op.drop_column("links")
