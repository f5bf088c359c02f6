"""The demo's correction scene: a tech lead asks for changes instead of approving or
rejecting, the requester edits the change (the same form, filled in) and resubmits it,
and it is approved, keeping its id and its whole trail."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from tooling.demo_world import DemoWorld
from tooling.slack_payloads import change_form_state, prefilled_state, text_value

CR_EDITED = "CR-2026-0005"


async def changes_requested_then_approved(world: DemoWorld) -> None:
    world.feed.banner("8. bob asks for changes before approving; alice edits and resubmits; it is approved")
    await world.advance_to(datetime(2026, 11, 26, 11, 0, tzinfo=UTC))
    window = datetime(2026, 11, 30, 10, 0, tzinfo=UTC)
    await world.submit(
        "UALICE",
        "change_new",
        change_form_state(
            title="Raise the Redis memory limit to 8 GB",
            category="normal",
            impact="medium",
            likelihood="medium",
            services=["redis-cache"],
            starts_at=int(window.timestamp()),
            ends_at=int((window + timedelta(hours=1)).timestamp()),
            description="Evictions spike every evening; give the cache room.",
            rollback_plan="Set the limit back to 4 GB.",
            test_plan="Raise it on one replica first and watch its memory for an hour.",
        ),
        what="files a change: raise the Redis memory limit (Mon 10:00)",
    )
    await world.click("UBOB", "Request changes", "change_request_changes", CR_EDITED, channel="D_UBOB")
    await world.submit(
        "UBOB",
        "change_request_changes_submit",
        {"reason": {"reason": text_value("Add success criteria: how will we know the evictions stopped?")}},
        what="asks for success criteria and clicks [ Send ]",
        private_metadata=_opened(world)["private_metadata"],
    )
    await world.click("UALICE", "Edit and resubmit", "change_edit", CR_EDITED, channel="D_UALICE")
    view = _opened(world)
    await world.submit(
        "UALICE",
        "change_edit_submit",
        prefilled_state(
            view, success_criteria={"value": "evicted_keys stays at zero on the Redis dashboard for a day."}
        ),
        what="adds success criteria in the filled-in form and clicks [ Save ]",
        private_metadata=view["private_metadata"],
    )
    await world.advance_to(world.clock.now() + timedelta(minutes=10))
    await world.click("UBOB", "Approve", "change_approve", CR_EDITED, channel="D_UBOB")


def _opened(world: DemoWorld) -> dict[str, Any]:
    """The modal the last click opened, as the emulator holds it."""
    view: dict[str, Any] = world.emulator.calls_to("views.open")[-1].params["view"]
    return view
