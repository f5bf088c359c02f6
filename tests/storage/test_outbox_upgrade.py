"""After an upgrade, outbox rows the previous version stored (payload dicts with a
"template" name, or plain texts and replies without one) are still delivered, as
the previous version would have delivered them."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from slack_sdk.models.blocks import Block

from storage.database import session_factory
from storage.models import OutboxRow
from tests.support.flows import CR, approved
from tests.support.harness import Harness
from tests.support.outbox_rows import store_as_before


def blocks_of(call: Any) -> list[dict[str, Any]]:
    blocks = call.params.get("blocks") or []
    return json.loads(blocks) if isinstance(blocks, str) else list(blocks)


async def test_rows_stored_by_the_previous_version_are_delivered(harness: Harness) -> None:
    await approved(harness)
    await harness.settle()
    change = await harness.change(CR)
    now = harness.clock.now()
    moved_from = [
        (change.draft.starts_at - timedelta(days=1)).isoformat(),
        change.draft.starts_at.isoformat(),
    ]
    before = len(harness.slack.calls)
    await store_as_before(
        harness,
        [
            (
                "message",
                CR,
                "CCHANGES",
                {"template": "progress", "status": "in_progress", "by": "UREQ", "notes": "", "thread": True},
            ),
            (
                "message",
                CR,
                "UREQ",
                {
                    "template": "decided",
                    "by": "ULEAD1",
                    "decision": "approve",
                    "status": "approved",
                    "role": "tech_lead",
                    "reason": "Looks fine",
                },
            ),
            (
                "message",
                CR,
                "CCHANGES",
                {
                    "template": "rescheduled",
                    "by": "UREQ",
                    "thread": True,
                    "reapproval": False,
                    "from": moved_from,
                },
            ),
            (
                "message",
                CR,
                "CCHANGES",
                {"template": "incident_linked", "by": "ULEAD1", "incident": "INC-7", "thread": True},
            ),
            (
                "message",
                CR,
                "UREQ",
                {
                    "template": "notice",
                    "key": "t_minus_1h",
                    "late": True,
                    "due_at": now.isoformat(),
                    "actions": True,
                },
            ),
            ("dm_role", CR, None, {"template": "review_chase", "key": "review_deadline", "role": "cto"}),
            ("dm_card", CR, "ULEAD2", {"on_call": True}),
            (
                "message",
                None,
                "CCHANGES",
                {"template": "freeze", "started": True, "by": "UCTO", "reason": "Quarter end"},
            ),
            ("message", None, "CBUSY", {"text": "plain old text", "thread_ts": None}),
            ("ephemeral", None, "CCHANGES", {"user": "UREQ", "text": "only you"}),
            (
                "message",
                None,
                "CCHANGES",
                {
                    "template": "digest",
                    "start": now.isoformat(),
                    "end": (now + timedelta(days=2)).isoformat(),
                    "title": "Change calendar for today",
                },
            ),
            ("message", None, "CCHANGES", {"template": "cab_agenda"}),
        ],
    )
    await harness.settle()

    async with session_factory(harness.bot.engine)() as session:
        states = (
            await session.execute(sa.select(OutboxRow.kind, OutboxRow.state, OutboxRow.last_error))
        ).all()
    assert [row for row in states if row.state != "sent"] == []
    posts = [c for c in harness.slack.calls[before:] if c.method == "chat.postMessage"]
    texts = {(c.params["channel"], c.params["text"]) for c in posts}
    [card] = [
        c for c in await harness.bot.context.gateway.repository.card_copies(CR) if c.channel == "CCHANGES"
    ]
    threaded = [c.params["text"] for c in posts if c.params.get("thread_ts") == card.ts]
    assert len(threaded) == 3
    assert threaded[0].startswith("<@UREQ> :construction: started *CR-2026-0001*")
    assert ":calendar: <@UREQ> moved *CR-2026-0001* from <!date^" in threaded[1]
    assert (
        threaded[2]
        == ":boom: <@ULEAD1> linked *CR-2026-0001* to incident INC-7: it counts as a change failure."
    )
    late_notice = "T-1h: CR-2026-0001 Upgrade the API gateway"
    assert {
        ("UREQ", late_notice),
        (
            "UCTO",
            ":rotating_light: The review of *CR-2026-0001* Upgrade the API gateway is overdue (it was due now). <@UREQ>, please write it.",
        ),
        (
            "UREQ",
            "<@ULEAD1> approved your change *CR-2026-0001* Upgrade the API gateway as Tech lead. "
            "Reason: Looks fine Status: :white_check_mark: Approved.",
        ),
    } <= texts
    [notice] = [c for c in posts if c.params["text"] == late_notice]
    assert ":hourglass: Sent late: this was due" in blocks_of(notice)[0]["text"]["text"]
    assert any(c.params["channel"] == "ULEAD2" and "CR-2026-0001" in c.params["text"] for c in posts)
    assert (
        "CCHANGES",
        ":no_entry_sign: <@UCTO> declared a change freeze: Quarter end. No changes but emergencies until it is lifted.",
    ) in texts
    assert ("CBUSY", "plain old text") in texts
    assert ("CCHANGES", "CAB agenda") in texts
    assert ("CCHANGES", "Change calendar for today") in texts
    [ephemeral] = [c for c in harness.slack.calls[before:] if c.method == "chat.postEphemeral"]
    assert (ephemeral.params["user"], ephemeral.params["text"]) == ("UREQ", "only you")
    for call in posts:
        for raw in blocks_of(call):
            block = Block.parse(raw)
            assert block is not None
            block.validate_json()
