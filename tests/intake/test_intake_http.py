"""CR intake over the real HTTP door."""

from __future__ import annotations

from tests.support.harness import Harness


async def test_change_new_opens_modal(harness: Harness) -> None:
    answer = await harness.command("new", user="UREQ")
    assert answer == {} or answer.get("text") in (None, "")
    calls = await harness.slack.wait_for("views.open")
    view = calls[0].params["view"]
    assert view["callback_id"] == "change_new"
    block_ids = {b.get("block_id") for b in view["blocks"]}
    assert {
        "title",
        "category",
        "impact",
        "likelihood",
        "services",
        "starts_at",
        "ends_at",
        "description",
        "rollback_plan",
        "catalog",
    } <= block_ids


async def test_valid_change_is_stored_and_posted(harness: Harness) -> None:
    answer = await harness.file_change()
    assert answer == {}
    change = await harness.change("CR-2026-0001")
    assert change.status.value == "pending_approval"
    assert change.risk.value == "medium"
    posts = harness.slack.calls_to("chat.postMessage")
    assert any(c.params["channel"] == "CCHANGES" for c in posts)
    dms = {c.params["channel"] for c in posts}
    assert {"ULEAD1", "ULEAD2", "UREQ"} <= dms


import asyncio  # noqa: E402
import json  # noqa: E402
from datetime import timedelta  # noqa: E402

import pytest  # noqa: E402
import sqlalchemy as sa  # noqa: E402

from modals.intake import new_change_modal  # noqa: E402
from storage.database import session_factory  # noqa: E402
from storage.models import AuditRow, ChangeRow, OutboxRow  # noqa: E402
from tests.support.slack_requests import change_form_state  # noqa: E402


async def table_counts(harness: Harness) -> tuple[int, int, int]:
    async with session_factory(harness.bot.engine)() as session:
        counts = []
        for model in (ChangeRow, AuditRow, OutboxRow):
            counts.append((await session.execute(sa.select(sa.func.count()).select_from(model))).scalar_one())
        return counts[0], counts[1], counts[2]


def view_blocks(harness: Harness) -> list[dict]:
    return new_change_modal(harness.bot.policy, now=harness.clock.now())["blocks"]


BAD_FORMS = [
    ({"title": "   "}, "title", "title"),
    ({"title": "x" * 151}, "title", "150 characters"),
    ({"services": ["mainframe"]}, "services", "Unknown service: mainframe"),
    ({"services": []}, "services", "at least one"),
    ({"starts_at": "PAST"}, "starts_at", "in the past"),
    ({"ends_at": "BEFORE"}, "ends_at", "after the start"),
    ({"description": "d" * 2501}, "description", "keep it to 2500"),
    ({"rollback_plan": ""}, "rollback_plan", "rollback plan"),
    ({"category": "standard", "catalog": None}, "catalog", "pre-approved procedure"),
    (
        {"category": "standard", "catalog": "security-patch", "services": ["database"]},
        "services",
        "pre-approved only for",
    ),
    ({"category": None}, "category", "Choose a category"),
    ({"impact": None}, "impact", "impact"),
    ({"downtime": "-5"}, "downtime", "between 0"),
]


@pytest.mark.parametrize(
    ("overrides", "field", "fragment"),
    BAD_FORMS,
    ids=[case[1] + "-" + str(i) for i, case in enumerate(BAD_FORMS)],
)
async def test_bad_form_gets_inline_errors_and_stores_nothing(
    harness: Harness, overrides: dict, field: str, fragment: str
) -> None:
    now = int(harness.clock.now().timestamp())
    if overrides.get("starts_at") == "PAST":
        overrides["starts_at"] = now - 3600
    if overrides.get("ends_at") == "BEFORE":
        overrides["ends_at"] = now + 3600
        overrides["starts_at"] = now + 7200
    fields = harness.form(**overrides)
    answer = await harness.submit(
        "change_new", change_form_state(**fields), user="UREQ", view_blocks=view_blocks(harness)
    )
    assert answer["response_action"] == "errors"
    assert fragment.lower() in answer["errors"][field].lower()
    assert await table_counts(harness) == (0, 0, 0)
    assert not harness.slack.calls_to("chat.postMessage")


async def test_every_problem_is_reported_at_once(harness: Harness) -> None:
    now = int(harness.clock.now().timestamp())
    state = change_form_state(
        title="", category="normal", services=["nope"], starts_at=now - 7200, ends_at=now - 9000
    )
    answer = await harness.submit("change_new", state, user="UREQ", view_blocks=view_blocks(harness))
    assert {
        "title",
        "impact",
        "likelihood",
        "services",
        "starts_at",
        "ends_at",
        "description",
        "rollback_plan",
    } <= set(answer["errors"])


async def test_error_for_a_block_the_view_lacks_lands_on_the_title(harness: Harness) -> None:
    blocks = [b for b in view_blocks(harness) if b.get("block_id") != "catalog"]
    state = change_form_state(**harness.form(category="standard", catalog=None))
    answer = await harness.submit("change_new", state, user="UREQ", view_blocks=blocks)
    assert set(answer["errors"]) == {"title"}
    assert "pre-approved" in answer["errors"]["title"]


async def test_standard_change_from_catalog_is_auto_approved(harness: Harness) -> None:
    await harness.file_change(
        category="standard",
        catalog="security-patch",
        impact=...,
        likelihood=...,
        description="",
        rollback_plan="",
    )
    change = await harness.change("CR-2026-0001")
    assert change.status.value == "approved"
    assert change.draft.catalog_id == "security-patch"
    assert change.draft.description.startswith("Apply a vendor security patch")
    assert [e.action.value for e in change.audit] == ["submitted", "auto_approved"]
    assert "security-patch" in change.audit[1].details["reason"]
    card = next(c for c in harness.slack.calls_to("chat.postMessage") if c.params["channel"] == "CCHANGES")
    assert "change_approve" not in json.dumps(card.params["blocks"])
    # no approver DMs for a pre-approved change
    assert {c.params["channel"] for c in harness.slack.calls_to("chat.postMessage")} == {"CCHANGES", "UREQ"}


async def test_low_risk_normal_change_needs_no_approval_per_policy(harness: Harness) -> None:
    await harness.file_change(impact="low", likelihood="low")
    change = await harness.change("CR-2026-0001")
    assert change.risk.value == "low" and change.status.value == "approved"


async def test_risk_and_steps_are_snapshotted_at_submission(harness: Harness) -> None:
    await harness.file_change(impact="critical", likelihood="low")  # high risk
    change = await harness.change("CR-2026-0001")
    assert change.risk.value == "high"
    assert [(s.role, s.count, s.members) for s in change.steps] == [
        ("tech_lead", 2, ("ULEAD1", "ULEAD2")),
        ("engineering_manager", 1, ("SMANAGERS",)),
    ]
    await harness.file_change(category="major", implementation_plan="Blue/green switch.")
    major = await harness.change("CR-2026-0002")
    assert [s.role for s in major.steps] == ["engineering_manager", "cto"]


async def test_ids_are_sequential_and_gap_free_under_concurrency(harness: Harness) -> None:
    await harness.file_change()
    bad = harness.form(title="")
    base = int(harness.clock.now().timestamp()) + 3 * 86400
    submissions = [  # windows apart, so no overlap warning gets in the way
        harness.submit(
            "change_new",
            change_form_state(
                **harness.form(title=f"Change {i}", starts_at=base + i * 7200, ends_at=base + i * 7200 + 3600)
            ),
            user="UREQ",
        )
        for i in range(12)
    ]
    submissions += [harness.submit("change_new", change_form_state(**bad), user="UREQ") for _ in range(3)]
    await asyncio.gather(*submissions)
    async with session_factory(harness.bot.engine)() as session:
        ids = sorted((await session.execute(sa.select(ChangeRow.id))).scalars().all())
    assert ids == [f"CR-2026-{n:04d}" for n in range(1, 14)]


async def test_sequence_restarts_each_year(harness: Harness) -> None:
    await harness.file_change()
    harness.clock.set(harness.clock.now().replace(year=2027, month=1, day=1))
    await harness.file_change()
    assert (await harness.change("CR-2027-0001")) is not None


async def test_user_text_never_pings(harness: Harness) -> None:
    await harness.file_change(title="Deploy <!channel> now", description="cc <!here> <@U123> & <#C1>")
    card = next(c for c in harness.slack.calls_to("chat.postMessage") if c.params["channel"] == "CCHANGES")
    rendered = json.dumps(card.params["blocks"])
    assert "<!here>" not in rendered and "<@U123>" not in rendered and "<#C1>" not in rendered
    assert "&lt;!here&gt;" in rendered
    filed = next(c for c in harness.slack.calls_to("chat.postMessage") if c.params["channel"] == "UREQ")
    assert "<!channel>" not in filed.params["text"]


async def test_start_within_grace_is_accepted(harness: Harness) -> None:
    now = int(harness.clock.now().timestamp())
    await harness.file_change(starts_at=now - 120, ends_at=now + 3600)
    assert (await harness.change("CR-2026-0001")).draft.starts_at.timestamp() == now - 120
    assert timedelta(minutes=5)
