"""`POST /api/v1/changes` with the template's further fields, the required fields and the
lead time, on a policy with the documents' defaults: 201 with what was stored (as
`changebot changes show --json` prints it), 422 under each field's JSON name."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.support.api_calls import Pipeline, make_token
from tests.support.harness import Harness
from tests.support.policy_fixture import RULES_OFF, TEST_POLICY

CR = "CR-2026-0001"
HOSTILE = "<!channel> <@U123> <https://evil.example|ZZFORGED> &lt;ZZPRE *b*"


@pytest.fixture
def policy_text() -> str:
    return TEST_POLICY.replace(RULES_OFF, "")


@pytest.fixture
async def pipeline(harness: Harness) -> Pipeline:
    return Pipeline(harness, await make_token(harness))


async def test_the_new_fields_are_filed_and_answered(harness: Harness, pipeline: Pipeline) -> None:
    status, body = await pipeline.file(
        test_plan="The pipeline's end-to-end suite.",
        links=["https://github.com/org/api/pull/7", "https://runbooks.example/api"],
        success_criteria=HOSTILE,
        dependencies="CR-2026-0007 first",
        stakeholders=["UPRODUCT", "CSUPPORT"],
        rollback_minutes=10,
        rollback_triggers=HOSTILE,
    )

    assert status == 201, body
    assert body["links"] == ["https://github.com/org/api/pull/7", "https://runbooks.example/api"]
    assert (body["success_criteria"], body["dependencies"]) == (HOSTILE, "CR-2026-0007 first")
    assert (body["stakeholders"], body["rollback_minutes"], body["rollback_triggers"]) == (
        ["UPRODUCT", "CSUPPORT"],
        10,
        HOSTILE,
    )
    assert (await pipeline.get(f"/api/v1/changes/{CR}"))[1]["links"] == body["links"]


BAD = [
    ({"links": "https://github.com/org/api/pull/7"}, "links", "Must be a list of http(s) URLs."),
    ({"links": ["https://ok.example", 7]}, "links", "Must be a list of http(s) URLs."),
    ({"links": ["https://ok.example", "javascript:alert(1)"]}, "links", "Link 2 (javascript:alert(1))"),
    ({"links": ["<https://evil.example|ZZFORGED>"]}, "links", "not a web address"),
    ({"links": [f"https://x.example/{i}" for i in range(11)]}, "links", "at most 10 links"),
    ({"stakeholders": ["#general"]}, "stakeholders", "from the lists"),
    ({"stakeholders": "UPRODUCT"}, "stakeholders", "Must be a list"),
    ({"rollback_minutes": "10"}, "rollback_minutes", "Must be a whole number of minutes."),
    ({"rollback_minutes": -1}, "rollback_minutes", "between 0"),
    ({"success_criteria": ["x"]}, "success_criteria", "Must be a string."),
    ({"test_plan": ...}, "test_plan", "Normal changes need a test plan."),
]


@pytest.mark.parametrize(
    ("overrides", "field", "fragment"), BAD, ids=[f"{b[1]}-{i}" for i, b in enumerate(BAD)]
)
async def test_a_bad_field_is_a_422_under_its_json_name_and_nothing_is_filed(
    pipeline: Pipeline, overrides: dict, field: str, fragment: str
) -> None:
    fields = {"test_plan": "Suite", **overrides}
    status, body = await pipeline.file(**fields)

    assert status == 422, body
    assert set(body["errors"]) == {field}
    assert fragment in body["errors"][field]
    assert (await pipeline.get(f"/api/v1/changes/{CR}"))[0] == 404


async def test_sooner_than_the_lead_time_is_a_422_and_an_exception_reason_files_it(
    pipeline: Pipeline,
) -> None:
    status, body = await pipeline.file(test_plan="Suite", starts_in=timedelta(minutes=20))

    assert status == 422
    message = body["errors"]["starts_at"]
    assert "Normal changes are filed at least 24 hours before they start." in message
    assert "Or give an exception_reason saying why." in message

    status, body = await pipeline.file(
        test_plan="Suite", starts_in=timedelta(minutes=20), exception_reason="The certificate expires tonight"
    )
    assert status == 201, body
    assert [s["purpose"] for s in body["steps"]] == ["", "exception"]
