"""audit hash chain, append-only trigger, hashed feed tokens

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03 08:50:00.000000

Existing audit entries get their hashes here, chain by chain in id order, so
`changebot audit verify` passes right after the upgrade. Existing feed tokens are
replaced by their hashes, so subscribed calendar URLs keep working.
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import storage.models
from storage.audit_chain import chain_start, entry_hash

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_EVENTS = sa.table(
    "audit_event",
    sa.column("id", sa.Integer),
    sa.column("change_id", sa.String),
    sa.column("actor", sa.String),
    sa.column("action", sa.String),
    sa.column("at", storage.models.UtcDateTime()),
    sa.column("details", sa.JSON),
    sa.column("prev_hash", sa.String),
    sa.column("hash", sa.String),
)
_TOKENS = sa.table("feed_token", sa.column("id", sa.Integer), sa.column("token", sa.String))
_APPEND_ONLY = (
    """CREATE FUNCTION audit_event_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        RAISE EXCEPTION 'audit_event is append-only: % refused', TG_OP;
    END
    $$""",
    """CREATE TRIGGER audit_event_no_update_or_delete BEFORE UPDATE OR DELETE ON audit_event
    FOR EACH ROW EXECUTE FUNCTION audit_event_append_only()""",
    """CREATE TRIGGER audit_event_no_truncate BEFORE TRUNCATE ON audit_event
    FOR EACH STATEMENT EXECUTE FUNCTION audit_event_append_only()""",
)


def _hash_existing_entries(bind: sa.Connection) -> None:
    heads: dict[str | None, str] = {}
    last_id = 0
    while True:
        rows = bind.execute(
            sa.select(_EVENTS).where(_EVENTS.c.id > last_id).order_by(_EVENTS.c.id).limit(1000)
        ).all()
        if not rows:
            return
        filled = []
        for row in rows:
            prev = heads.get(row.change_id) or chain_start(row.change_id)
            heads[row.change_id] = entry_hash(row._mapping, prev)
            filled.append({"row_id": row.id, "p": prev, "h": heads[row.change_id]})
        bind.execute(
            sa.update(_EVENTS)
            .where(_EVENTS.c.id == sa.bindparam("row_id"))
            .values(prev_hash=sa.bindparam("p"), hash=sa.bindparam("h")),
            filled,
        )
        last_id = rows[-1].id


def upgrade() -> None:
    bind = op.get_bind()
    with op.batch_alter_table("audit_event", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("prev_hash", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True)
        )
        batch_op.add_column(sa.Column("hash", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True))
    _hash_existing_entries(bind)
    with op.batch_alter_table("audit_event", schema=None) as batch_op:
        batch_op.alter_column(
            "prev_hash", existing_type=sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False
        )
        batch_op.alter_column(
            "hash", existing_type=sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False
        )
        batch_op.create_index(batch_op.f("ix_audit_event_prev_hash"), ["prev_hash"], unique=True)
    for row in bind.execute(sa.select(_TOKENS)).all():
        bind.execute(
            sa.update(_TOKENS)
            .where(_TOKENS.c.id == row.id)
            .values(token=storage.models.feed_token_hash(row.token))
        )
    if bind.dialect.name == "postgresql":
        for statement in _APPEND_ONLY:
            bind.exec_driver_sql(statement)


def downgrade() -> None:
    # Feed tokens stay hashed (a hash cannot be turned back): issue a new one after a downgrade.
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        for statement in (
            "DROP TRIGGER audit_event_no_truncate ON audit_event",
            "DROP TRIGGER audit_event_no_update_or_delete ON audit_event",
            "DROP FUNCTION audit_event_append_only()",
        ):
            bind.exec_driver_sql(statement)
    with op.batch_alter_table("audit_event", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_audit_event_prev_hash"))
        batch_op.drop_column("hash")
        batch_op.drop_column("prev_hash")
