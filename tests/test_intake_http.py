"""CR intake over the real HTTP door."""

from __future__ import annotations

from conftest import Harness


async def test_change_new_opens_modal(harness: Harness) -> None:
    answer = await harness.command("new", user="UREQ")
    assert answer == {} or answer.get("text") in (None, "")
    calls = await harness.slack.wait_for("views.open")
    view = calls[0].params["view"]
    assert view["callback_id"] == "change_new"
    block_ids = {b.get("block_id") for b in view["blocks"]}
    assert {"title", "category", "impact", "likelihood", "services", "starts_at", "ends_at",
            "description", "rollback_plan", "catalog"} <= block_ids


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
