"""The GitHub side of the gate tests: the policy with the App configured against the
HTTPS fake, and deliveries signed as GitHub signs them, sent to the running bot."""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient

from bot.app import Changebot
from tests.support.github_fake import GithubFake
from tests.support.harness import Harness
from tests.support.policy_fixture import TEST_POLICY

SECRET = "github-webhook-secret-for-tests"
REPO = "example-org/api"
INSTALLATION = 77


def github_policy(fake: GithubFake, key_file: Path) -> str:
    """The tests' policy with the App: production deploys of example-org/api file the
    security patch for api-server when they name no change."""
    key_file.write_text(fake.private_key)
    return TEST_POLICY + (
        "integrations:\n"
        "  github:\n"
        f"    app_id: {fake.app_id}\n"
        f"    private_key_file: {key_file}\n"
        f"    api_url: {fake.base_url}\n"
        "    mappings:\n"
        f"      - repository: {REPO}\n"
        "        environment: production\n"
        "        standard: security-patch\n"
        "        services: [api-server]\n"
        "        window: 45m\n"
    )


def signature(body: bytes, secret: str = SECRET) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


_deliveries = itertools.count(1)


class Deliveries:
    """Sends GitHub's webhook deliveries to the bot, signed, then lets the bot finish
    (the deployment pass, the card refreshes)."""

    def __init__(self, harness: Harness, fake: GithubFake) -> None:
        self.harness = harness
        self.fake = fake

    async def send(
        self,
        event: str,
        payload: dict[str, Any] | bytes,
        *,
        delivery: str | None = None,
        secret: str = SECRET,
        http: TestClient | None = None,
        bot: Changebot | None = None,
    ) -> Any:
        body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        headers = {
            "Content-Type": "application/json",
            "X-GitHub-Event": event,
            "X-GitHub-Delivery": delivery or f"delivery-{next(_deliveries)}",
            "X-Hub-Signature-256": signature(body, secret),
        }
        response = await (http or self.harness.http).post("/github/webhook", data=body, headers=headers)
        await settle(self.harness, bot or self.harness.bot)
        return response

    def protection_rule(
        self,
        *,
        deployment_id: int = 9001,
        run_id: int = 31337,
        environment: str = "production",
        ref: str = "main",
        repository: str = REPO,
        **extra: Any,
    ) -> dict[str, Any]:
        return {
            "action": "requested",
            "environment": environment,
            "event": "push",
            "deployment_callback_url": self.fake.callback_url(repository, run_id),
            "deployment": {"id": deployment_id, "ref": ref, "environment": environment, "payload": {}},
            "repository": {"full_name": repository, "html_url": f"https://github.com/{repository}"},
            "installation": {"id": INSTALLATION},
            **extra,
        }

    def deployment_status(
        self, state: str, *, deployment_id: int = 9001, environment: str = "production", ref: str = "main"
    ) -> dict[str, Any]:
        return {
            "action": "created",
            "deployment_status": {"state": state, "environment": environment},
            "deployment": {"id": deployment_id, "ref": ref, "environment": environment},
            "repository": {"full_name": REPO, "html_url": f"https://github.com/{REPO}"},
            "installation": {"id": INSTALLATION},
        }

    async def request(self, **kwargs: Any) -> Any:
        return await self.send("deployment_protection_rule", self.protection_rule(**kwargs))


async def settle(harness: Harness, bot: Changebot) -> None:
    """Until the deployment passes and the outbox are both idle."""
    assert bot.deployments is not None
    for _ in range(10):
        await bot.deployments.drain()
        await harness.settle()
        if bot.deployments.idle:
            return


async def tick(harness: Harness, bot: Changebot | None = None) -> None:
    """The scheduler's deployment tick."""
    bot = bot or harness.bot
    assert bot.deployments is not None
    await bot.deployments.tick()
    await settle(harness, bot)
