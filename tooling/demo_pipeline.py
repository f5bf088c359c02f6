"""The demo's pipeline scene: a deploy pipeline files its change through the REST API,
waits at the change's gate while a tech lead approves it in Slack, then reports the
deploy started and completed, all over HTTP to the running bot, as a CI job would."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from storage.api_tokens import ApiTokens
from tooling.demo_world import DemoWorld

CR_PIPELINE = "CR-2026-0004"
TOKEN_NAME = "deploy-pipeline"


async def pipeline_at_the_gate(world: DemoWorld) -> None:
    world.feed.banner("7. A deploy pipeline files a change through the REST API and waits at its gate")
    filed_at = datetime(2026, 11, 26, 9, 30, tzinfo=UTC)
    await world.advance_to(filed_at)
    token = await ApiTokens(world.sessions).create(name=TOKEN_NAME, now=world.clock.now())
    world.feed.say(f"an admin runs `changebot api-token create {TOKEN_NAME}` and stores the token in CI")
    pipeline = _Pipeline(world, token)
    window = filed_at + timedelta(minutes=20)
    await pipeline.call(
        "POST",
        "/api/v1/changes",
        {
            "title": "Deploy ingress-controller 1.11",
            "category": "normal",
            "impact": "medium",
            "likelihood": "medium",
            "services": ["kubernetes"],
            "starts_at": window.isoformat(),
            "ends_at": (window + timedelta(hours=1)).isoformat(),
            "description": "Roll out ingress-nginx 1.11 from the release pipeline.",
            "rollback_plan": "Re-run the pipeline of the previous tag.",
            "test_plan": "The pipeline's end-to-end suite against staging.",
            "requester": "UALICE",
            "source": {
                "kind": "github",
                "url": "https://github.com/example/infra/actions/runs/7",
                "ref": "v1.11",
            },
        },
        what="files the change",
    )
    await pipeline.call("GET", f"/api/v1/changes/{CR_PIPELINE}/gate?service=kubernetes", what="asks the gate")
    await world.advance_to(filed_at + timedelta(minutes=4))
    await world.click("UCAROL", "Approve", "change_approve", CR_PIPELINE, channel="D_UCAROL")
    await pipeline.call("GET", f"/api/v1/changes/{CR_PIPELINE}/gate?service=kubernetes", what="asks again")
    await pipeline.call("POST", f"/api/v1/changes/{CR_PIPELINE}/events", {"event": "started"}, what="deploys")
    await world.advance_to(window + timedelta(minutes=10))
    await pipeline.call(
        "POST",
        f"/api/v1/changes/{CR_PIPELINE}/events",
        {"event": "completed", "notes": "Rolled out to 3 clusters."},
        what="finishes",
    )


class _Pipeline:
    """The CI job's side: one token, JSON over HTTP, each answer summed up in a line."""

    def __init__(self, world: DemoWorld, token: str) -> None:
        self._world = world
        self._token = token
        self._base = world.bot_url.removesuffix("/slack/events")

    async def call(self, method: str, path: str, body: dict[str, Any] | None = None, *, what: str) -> None:
        world = self._world
        world.feed.say(f"the pipeline {what}: {method} {path}")
        headers = {"Authorization": f"Bearer {self._token}"}
        async with world.http.request(method, self._base + path, json=body, headers=headers) as response:
            status, answer = response.status, json.loads(await response.text())
        world.feed.show("the pipeline's log", f"HTTP {status} · {_summary(answer)}")
        await world.settle()


def _summary(answer: dict[str, Any]) -> str:
    if "decision" in answer:
        return f"{answer['decision']}: {answer['reason']}"
    if "id" in answer:
        return f"{answer['id']} is {answer['status'].replace('_', ' ')}"
    return json.dumps(answer)[:300]
