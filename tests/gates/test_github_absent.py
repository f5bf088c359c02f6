"""Without `integrations.github` in the policy there is no GitHub door."""

from __future__ import annotations

from tests.support.harness import Harness


async def test_the_webhook_route_is_not_mounted(harness: Harness) -> None:
    response = await harness.http.post("/github/webhook", data=b"{}")
    assert response.status == 404
    assert harness.bot.deployments is None
