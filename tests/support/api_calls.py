"""Calling the REST API of the running bot (through its real HTTP door) as a pipeline does."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from storage.api_tokens import ApiTokens
from storage.database import session_factory
from tests.support.harness import Harness


async def make_token(harness: Harness, name: str = "deploy-bot") -> str:
    """A new API token, as `changebot api-token create` makes one."""
    return await ApiTokens(session_factory(harness.bot.engine)).create(name=name, now=harness.clock.now())


def iso(moment: datetime) -> str:
    return moment.isoformat()


def change_body(
    harness: Harness, *, starts_in: timedelta = timedelta(days=2), **overrides: Any
) -> dict[str, Any]:
    """A valid normal change of medium risk (a tech lead approves it), filed for UREQ."""
    start = harness.clock.now() + starts_in
    body: dict[str, Any] = {
        "title": "Upgrade the API gateway",
        "category": "normal",
        "impact": "medium",
        "likelihood": "medium",
        "services": ["api-server"],
        "starts_at": iso(start),
        "ends_at": iso(start + timedelta(hours=1)),
        "description": "Roll out gateway 2.4 with the new TLS ciphers.",
        "rollback_plan": "Redeploy 2.3 from the previous release tag.",
        "requester": "UREQ",
        "source": {
            "kind": "github",
            "url": "https://github.com/example-org/api/actions/runs/42",
            "ref": "v2.4",
        },
    }
    body.update(overrides)
    return {k: v for k, v in body.items() if v is not ...}


class Pipeline:
    """A pipeline holding one token: JSON in, (status, JSON) out."""

    def __init__(self, harness: Harness, token: str) -> None:
        self.harness = harness
        self.token = token

    def _headers(self, token: str | None) -> dict[str, str]:
        token = self.token if token is None else token
        return {"Authorization": f"Bearer {token}"} if token else {}

    async def post(
        self, path: str, body: Any = None, *, data: bytes | None = None, token: str | None = None
    ) -> tuple[int, Any]:
        kwargs: dict[str, Any] = {"data": data} if data is not None else {"json": body}
        response = await self.harness.http.post(path, headers=self._headers(token), **kwargs)
        answer = (response.status, await response.json(content_type=None))
        await self.harness.settle()
        return answer

    async def get(self, path: str, *, token: str | None = None) -> tuple[int, Any]:
        response = await self.harness.http.get(path, headers=self._headers(token))
        return response.status, await response.json(content_type=None)

    async def file(self, **overrides: Any) -> tuple[int, Any]:
        return await self.post("/api/v1/changes", change_body(self.harness, **overrides))

    async def gate(self, change_id: str, query: str = "") -> tuple[int, Any]:
        return await self.get(f"/api/v1/changes/{change_id}/gate{query}")

    async def event(self, change_id: str, event: str, notes: str | None = None) -> tuple[int, Any]:
        body: dict[str, Any] = {"event": event}
        if notes is not None:
            body["notes"] = notes
        return await self.post(f"/api/v1/changes/{change_id}/events", body)
