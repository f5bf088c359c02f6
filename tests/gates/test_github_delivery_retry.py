"""A delivery the bot could not act on (its database went away mid-way) is not marked as
seen: GitHub's redelivery of the same id is acted on, not skipped as a duplicate."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC, datetime
from typing import Any, cast

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from bot.github_webhook import github_webhook_handler
from domain.clock import FakeClock
from domain.deployments import DeploymentRequest
from domain.usecases.deployments import DeploymentGates

SECRET = "webhook-secret"


class FlakyGates:
    """Deliveries remembered as the store does; acting fails the first time."""

    def __init__(self) -> None:
        self.seen: set[str] = set()
        self.stored: list[DeploymentRequest] = []
        self.failures = 1

    async def first_delivery(self, delivery_id: str) -> bool:
        fresh = delivery_id not in self.seen
        self.seen.add(delivery_id)
        return fresh

    async def forget_delivery(self, delivery_id: str) -> None:
        self.seen.discard(delivery_id)

    async def requested(self, request: DeploymentRequest) -> None:
        if self.failures:
            self.failures -= 1
            raise ConnectionError("database went away")
        self.stored.append(request)


def protection_rule() -> dict[str, Any]:
    return {
        "action": "requested",
        "environment": "production",
        "deployment_callback_url": "https://api.github.com/repos/acme/api/actions/runs/7/deployment_protection_rule",
        "deployment": {"id": 9001, "ref": "CR-2026-0001", "environment": "production"},
        "repository": {"full_name": "acme/api", "html_url": "https://github.com/acme/api"},
        "installation": {"id": 1},
    }


async def send(http: TestClient, body: bytes) -> int:
    signature = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    headers = {
        "X-Hub-Signature-256": signature,
        "X-GitHub-Event": "deployment_protection_rule",
        "X-GitHub-Delivery": "delivery-1",
        "Content-Type": "application/json",
    }
    response = await http.post("/github/webhook", data=body, headers=headers)
    return response.status


async def test_a_delivery_that_failed_is_acted_on_when_github_sends_it_again() -> None:
    gates = FlakyGates()
    app = web.Application()
    handler = github_webhook_handler(
        secret=SECRET,
        gates=cast(DeploymentGates, gates),
        wake=lambda: None,
        clock=FakeClock(datetime(2026, 12, 4, tzinfo=UTC)),
    )
    app.router.add_post("/github/webhook", handler)
    body = json.dumps(protection_rule()).encode()
    async with TestClient(TestServer(app)) as http:
        assert await send(http, body) == 500  # not acted on: GitHub marks it failed
        assert gates.seen == set()  # and its id is not kept as seen
        assert await send(http, body) == 202  # the redelivery is acted on
        assert [r.external_id for r in gates.stored] == ["9001:production"]
        assert await send(http, body) == 202  # and a third copy is a duplicate
        assert len(gates.stored) == 1
