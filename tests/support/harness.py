"""What the fixtures hand a test: the running bot driven like Slack drives it, and the real
repository on a migrated database."""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp.test_utils import TestClient
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.app import Changebot
from domain.clock import FakeClock
from storage.database import session_factory
from storage.outbox import OutboxStore
from storage.repository import SqlChangeRepository
from tests.support.slack_requests import (
    block_action,
    change_form_state,
    command_body,
    event_body,
    interaction_body,
    sign,
    view_submission,
)
from tooling.emulator import SlackEmulator
from tooling.settle import settle_outbox

START = datetime(2026, 11, 23, 7, 0, tzinfo=UTC)  # the tests' first moment: before the 09:00 digest


@dataclass
class Db:
    """The real repository on a migrated database, with every SQL statement it sends."""

    sessions: async_sessionmaker[AsyncSession]
    repo: SqlChangeRepository
    statements: list[str]


class Harness:
    """Talks to the bot like Slack does and lets the test drive time and the outbox."""

    def __init__(self, bot: Changebot, http: TestClient, slack: SlackEmulator, clock: FakeClock) -> None:
        self.bot = bot
        self.http = http
        self.slack = slack
        self.clock = clock
        self._triggers = itertools.count(1)

    async def post(self, body: bytes, *, content_type: str, headers: dict[str, str] | None = None) -> Any:
        signed = sign(body, int(self.clock.now().timestamp()))
        return await self.http.post(
            "/slack/events", data=body, headers={"Content-Type": content_type, **signed, **(headers or {})}
        )

    async def command(self, text: str, *, user: str) -> Any:
        response = await self.post(
            command_body(text, user=user, trigger_id=f"trig-{next(self._triggers)}"),
            content_type="application/x-www-form-urlencoded",
        )
        assert response.status == 200, await response.text()
        body = await response.text()
        await self.settle()
        return json.loads(body) if body else {}

    async def click(self, action_id: str, value: str, *, user: str, channel: str = "CCHANGES") -> Any:
        payload = block_action(
            action_id, value, user=user, channel=channel, trigger_id=f"trig-{next(self._triggers)}"
        )
        response = await self.post(
            interaction_body(payload), content_type="application/x-www-form-urlencoded"
        )
        assert response.status == 200, await response.text()
        await self.settle()
        return response

    async def submit(
        self,
        callback_id: str,
        values: dict[str, Any],
        *,
        user: str,
        private_metadata: str = "",
        view_blocks: list[dict[str, Any]] | None = None,
        confirm_conflicts: bool = True,
    ) -> Any:
        """Submit a view. A CR form answered with the overlap warning is submitted again,
        as a person who read it would (unless `confirm_conflicts=False`)."""
        answer = await self._submit_once(
            callback_id, values, user=user, private_metadata=private_metadata, view_blocks=view_blocks
        )
        if confirm_conflicts and callback_id == "change_new" and answer.get("response_action") == "update":
            answer = await self._submit_once(
                callback_id,
                values,
                user=user,
                private_metadata=answer["view"]["private_metadata"],
                view_blocks=view_blocks,
            )
        return answer

    async def _submit_once(
        self,
        callback_id: str,
        values: dict[str, Any],
        *,
        user: str,
        private_metadata: str,
        view_blocks: list[dict[str, Any]] | None,
    ) -> Any:
        payload = view_submission(
            callback_id, values, user=user, private_metadata=private_metadata, view_blocks=view_blocks
        )
        response = await self.post(
            interaction_body(payload), content_type="application/x-www-form-urlencoded"
        )
        assert response.status == 200, await response.text()
        text = await response.text()
        await self.settle()
        return json.loads(text) if text else {}

    async def event(self, event: dict[str, Any], *, event_id: str, retry_num: int | None = None) -> Any:
        headers = (
            {"X-Slack-Retry-Num": str(retry_num), "X-Slack-Retry-Reason": "http_timeout"}
            if retry_num is not None
            else {}
        )
        response = await self.post(
            event_body(event, event_id=event_id), content_type="application/json", headers=headers
        )
        await self.settle()
        return response

    async def file_change(self, *, user: str = "UREQ", **overrides: Any) -> dict[str, Any]:
        """Submit a valid normal change (medium risk unless overridden)."""
        fields = self.form(**overrides)
        answer = await self.submit("change_new", change_form_state(**fields), user=user)
        return answer

    def form(self, **overrides: Any) -> dict[str, Any]:
        start = int((self.clock.now() + timedelta(days=2)).timestamp())
        fields: dict[str, Any] = {
            "title": "Upgrade the API gateway",
            "category": "normal",
            "impact": "medium",
            "likelihood": "medium",
            "services": ["api-server"],
            "starts_at": start,
            "ends_at": start + 3600,
            "description": "Roll out gateway 2.4 with the new TLS ciphers.",
            "rollback_plan": "Redeploy 2.3 from the previous release tag.",
        }
        fields.update(overrides)
        return {k: v for k, v in fields.items() if v is not ...}

    async def settle(self, *, max_rounds: int = 200) -> None:
        """Let in-flight work finish and deliver every due outbox row; moves the fake
        clock to the next due row when only paced or backed-off rows remain."""
        dispatcher = self.bot.context.dispatcher
        store = OutboxStore(session_factory(self.bot.engine))
        settled = await settle_outbox(
            dispatcher=dispatcher, store=store, clock=self.clock, max_rounds=max_rounds
        )
        if not settled:
            raise AssertionError(f"outbox did not settle: {await store.counts()}")

    async def tick(self) -> None:
        """What the scheduler does: due notices and freeze ends, then the outbox."""
        await self.bot.context.service.process_due_notices()
        await self.bot.context.service.end_due_freezes()
        await self.settle()

    async def advance_to(self, moment: datetime) -> None:
        self.clock.set(moment)
        await self.tick()

    def posts_to(self, channel: str) -> list[Any]:
        return [c for c in self.slack.calls_to("chat.postMessage") if c.params["channel"] == channel]

    async def change(self, change_id: str) -> Any:
        return await self.bot.context.service.get_change(change_id=change_id)
