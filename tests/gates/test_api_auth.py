"""Who may call the REST API: a live API token only (never a Slack secret), checked
before the body is read, never logged; its last use written at most once a minute."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest

from storage.api_tokens import ApiTokens, BadTokenName, TokenNameTaken
from storage.database import session_factory
from tests.support.api_calls import Pipeline, make_token
from tests.support.harness import Harness
from tests.support.slack_requests import SIGNING_SECRET

UNAUTHORISED = {"error": "missing, unknown or revoked API token"}
ROUTES = (
    ("POST", "/api/v1/changes"),
    ("GET", "/api/v1/changes/CR-2026-0001"),
    ("GET", "/api/v1/changes/CR-2026-0001/gate"),
    ("POST", "/api/v1/changes/CR-2026-0001/events"),
    ("DELETE", "/api/v1/changes/CR-2026-0001"),
    ("GET", "/api/v1/tokens"),
)


def tokens(harness: Harness) -> ApiTokens:
    return ApiTokens(session_factory(harness.bot.engine))


async def test_no_wrong_revoked_or_slack_credentials_get_401_before_the_body_is_read(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    live = await make_token(harness, "deploy")
    revoked = await make_token(harness, "old")
    assert await tokens(harness).revoke(name="old", now=harness.clock.now())
    wrong = live[:-4] + ("AAAA" if not live.endswith("AAAA") else "BBBB")
    caplog.set_level(logging.INFO)
    for token in ("", wrong, revoked, "xoxb-test", SIGNING_SECRET, "cbt_" + "x" * 40):
        for method, path in ROUTES:
            headers = {"Authorization": f"Bearer {token}"} if token else {}
            response = await harness.http.request(method, path, headers=headers, data=b"{not json")
            assert (response.status, await response.json()) == (401, UNAUTHORISED), (token, path)
    for scheme in ("Basic", "Token", ""):
        response = await harness.http.get(ROUTES[1][1], headers={"Authorization": f"{scheme} {live}"})
        assert response.status == 401
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "refused API call" in logged
    for secret in (live, wrong, revoked, SIGNING_SECRET, "xoxb-test"):
        assert secret not in logged
    status, _ = await Pipeline(harness, live).get(ROUTES[1][1])
    assert status == 404  # the live token works: it is only that change that is unknown
    response = await harness.http.delete(ROUTES[1][1], headers={"Authorization": f"Bearer {live}"})
    assert (response.status, await response.json()) == (
        404,
        {"error": "no such API route: DELETE /api/v1/changes/CR-2026-0001"},
    )
    assert harness.slack.calls_to("chat.postMessage") == []


async def test_token_names_are_bounded_and_unique(harness: Harness) -> None:
    store = tokens(harness)
    token = await store.create(name="ci.main_1-x", now=harness.clock.now())
    assert token.startswith("cbt_") and len(token) > 40
    with pytest.raises(TokenNameTaken):
        await store.create(name="ci.main_1-x", now=harness.clock.now())
    for bad in ("", "a b", "x" * 37, "naïve", "semi;colon"):
        with pytest.raises(BadTokenName):
            await store.create(name=bad, now=harness.clock.now())
    assert [t.name for t in await store.list()] == ["ci.main_1-x"]


async def test_last_use_is_written_at_most_once_a_minute(harness: Harness) -> None:
    pipeline = Pipeline(harness, await make_token(harness, "deploy"))
    first = harness.clock.now()
    await pipeline.get("/api/v1/changes/CR-2026-0001")
    assert [t.last_used_at for t in await tokens(harness).list()] == [first]
    harness.clock.set(first + timedelta(seconds=59))
    await pipeline.get("/api/v1/changes/CR-2026-0001")
    assert [t.last_used_at for t in await tokens(harness).list()] == [first]
    harness.clock.set(first + timedelta(seconds=61))
    await pipeline.get("/api/v1/changes/CR-2026-0001")
    assert [t.last_used_at for t in await tokens(harness).list()] == [first + timedelta(seconds=61)]
