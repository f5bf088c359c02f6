"""The REST API holds a pipeline's change to the form's policy: windows, blackouts and
freezes (with the next allowed slot), exceptions, and hostile text escaped on the card."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tests.door.test_hostile_text_http import HOSTILE, every_parsed_text, leaks
from tests.support.api_calls import Pipeline, make_token
from tests.support.harness import Harness
from tests.support.policy_fixture import TEST_POLICY

POLICY = (
    TEST_POLICY
    + """windows:
  normal:
    - {days: [tue, wed, thu], start: "10:00", end: "16:00"}
blackouts:
  - name: Friday afternoon
    weekly: {days: [fri], start: "14:00", end: "24:00"}
"""
)
TUESDAY = datetime(2026, 11, 24, 10, 30, tzinfo=UTC)  # inside the normal window
MONDAY = datetime(2026, 11, 30, 10, 30, tzinfo=UTC)
FRIDAY = datetime(2026, 11, 27, 15, 0, tzinfo=UTC)
CR = "CR-2026-0001"


@pytest.fixture
def policy_text() -> str:
    return POLICY


@pytest.fixture
async def pipeline(harness: Harness) -> Pipeline:
    return Pipeline(harness, await make_token(harness))


def at(moment: datetime) -> dict[str, str]:
    return {"starts_at": moment.isoformat(), "ends_at": (moment + timedelta(hours=1)).isoformat()}


async def test_outside_the_windows_is_422_with_the_next_slot_unless_an_exception_is_asked(
    harness: Harness, pipeline: Pipeline
) -> None:
    status, body = await pipeline.file(**at(MONDAY))
    assert status == 422 and set(body["errors"]) == {"starts_at"}
    message = body["errors"]["starts_at"]
    assert "Normal changes run Tue/Wed/Thu 10:00-16:00" in message
    assert "Next allowed start: Tue 01 Dec 2026 10:00 GMT" in message
    assert "exception_reason" in message and "tick" not in message
    status, body = await pipeline.file(**at(FRIDAY))
    assert status == 422 and "It touches a blackout: Friday afternoon" in body["errors"]["starts_at"]
    status, body = await pipeline.file(**at(MONDAY), exception_reason="   ")
    assert status == 422 and set(body["errors"]) == {"starts_at"}
    status, body = await pipeline.file(**at(MONDAY), exception_reason="x" * 1001)
    assert status == 422 and set(body["errors"]) == {"exception_reason"}
    status, body = await pipeline.file(**at(MONDAY), exception_reason="The vendor's patch window")
    assert status == 201, body
    assert [s["purpose"] for s in body["steps"]][-1] == "exception"
    # an ISO time in another offset is the same moment
    status, body = await pipeline.file(
        starts_at="2026-11-24T12:30:00+02:00", ends_at="2026-11-24T13:00:00+02:00", services=["redis-cache"]
    )
    assert status == 201 and body["starts_at"] == "2026-11-24T10:30:00+00:00"


async def test_a_freeze_refuses_a_pipeline_filing_as_it_does_the_form(
    harness: Harness, pipeline: Pipeline
) -> None:
    await harness.command("freeze start quarter close", user="UMGR1")
    status, body = await pipeline.file(**at(TUESDAY))
    assert status == 422 and "Change freeze: quarter close" in body["errors"]["starts_at"]
    await harness.command("freeze end", user="UMGR1")
    assert (await pipeline.file(**at(TUESDAY)))[0] == 201


async def test_hostile_text_in_every_field_is_escaped_on_the_card_and_everywhere_else(
    harness: Harness, pipeline: Pipeline
) -> None:
    status, body = await pipeline.file(
        **at(MONDAY),
        title=HOSTILE,
        description=HOSTILE,
        justification=HOSTILE,
        implementation_plan=HOSTILE,
        rollback_plan=HOSTILE,
        test_plan=HOSTILE,
        exception_reason=HOSTILE,
        source={"kind": "github", "url": "https://evil.example/<!channel>", "ref": HOSTILE},
    )
    assert status == 201, body
    assert body["title"] == " ".join(HOSTILE.split())
    await harness.click("change_approve", CR, user="ULEAD1")
    replies = [await harness.command(f"show {CR}", user="UREQ")]
    status, _answer = await pipeline.gate(CR)
    assert status == 200
    texts = every_parsed_text(harness, replies)
    assert leaks(texts) == []
    assert "&lt;!channel&gt;" in "\n".join(texts)
    for field in ("colour<!channel>", "x" * 500):
        status, body = await pipeline.file(**{field: HOSTILE})
        assert status == 422 and body["errors"][field[:100]] == "Unknown field."
