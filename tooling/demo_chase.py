"""The demo's approval-chase scene: the database failover carol filed on Wednesday is
still unapproved on Thursday afternoon, half-way to its deadline, so the bot reminds the
approvers who have not answered (the engineering managers' user group)."""

from __future__ import annotations

from datetime import UTC, datetime

from tooling.demo_world import DemoWorld

REMINDER_AT = datetime(2026, 11, 26, 15, 0, tzinfo=UTC)  # half-way from Wed 16:00 to Fri 14:00


async def approvals_chased(world: DemoWorld) -> None:
    world.feed.banner("9. Nobody has approved the database failover yet: its approvers are reminded")
    await world.advance_to(REMINDER_AT)
