"""Replays and double submits act once.

Every slash command and interaction that passed the signature check is claimed under a
key before Bolt sees it; a second request with the same key gets the first one's answer
and no second effect. The key is
- for a view submission: the view (id, hash), who submitted it and what it holds — a
  double click re-sends the same view under a new timestamp, so a new signature;
- for anything else: the signature itself, which covers the timestamp and the whole
  body, so only a byte-identical replay matches (a person repeating a command does not).
Events API deliveries have their own guard (event ids, bot/app.py).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import parse_qs

from slack_bolt.response import BoltResponse

from domain.clock import Clock
from handlers.commands import CHANGES_STATE
from storage.health import is_unavailable
from storage.replays import ProcessedRequests, StoredAnswer

log = logging.getLogger(__name__)

# A signed request is accepted while its timestamp is within 5 minutes of our clock, on
# either side: one stamped 5 minutes ahead can still be replayed 10 minutes after it first
# came. Keys are kept for that long plus a margin, then pruned.
KEPT_FOR = timedelta(minutes=11)
# A repeat that arrives while the first is still being handled waits for its answer, but
# not past Slack's 3-second deadline.
WAIT_STEPS, WAIT_STEP_SECONDS = 50, 0.05


def request_key(body: bytes, signature: str) -> str | None:
    """The claim key of a signed request that changes state, else None. Never raises.

    Only form submissions and `/change` words that change state are claimed: clicks are
    version-guarded in the domain (a repeated Approve or Start is refused as already done),
    and reads or modal openings change nothing, so they skip the database round trips."""
    if body.lstrip()[:1] == b"{":
        return None  # JSON: an Events API delivery or a URL check
    try:
        fields = parse_qs(body.decode("utf-8", errors="replace"))
        payload = json.loads(fields["payload"][0]) if "payload" in fields else None
    except (ValueError, KeyError, IndexError):
        payload = None
    if isinstance(payload, dict) and payload.get("type") == "view_submission":
        view, user = _dict(payload.get("view")), _dict(payload.get("user"))
        identity = [
            user.get("id"),
            view.get("id"),
            view.get("hash"),
            view.get("private_metadata"),
            _dict(view.get("state")).get("values"),
        ]
        digest = hashlib.sha256(json.dumps(identity, sort_keys=True, default=str).encode()).hexdigest()
        return f"view:{digest}"
    if payload is not None or "command" not in fields:
        return None
    words = (fields.get("text") or [""])[0].split()
    if not words or words[0].lower() not in CHANGES_STATE:
        return None
    return "sig:" + hashlib.sha256(signature.encode()).hexdigest()


class ReplayGuard:
    def __init__(self, *, store: ProcessedRequests, clock: Clock) -> None:
        self._store = store
        self._clock = clock
        self._pruned_at: datetime | None = None
        self._finishing: set[asyncio.Task[None]] = set()

    async def once(
        self, *, body: bytes, signature: str, dispatch: Callable[[], Awaitable[BoltResponse]]
    ) -> BoltResponse:
        """Dispatch the first request with its key; answer repeats as the first was answered."""
        key = request_key(body, signature)
        if key is None:
            return await dispatch()
        now = self._clock.now()
        try:
            first = await self._store.claim(key, now=now, prune_before=self._prune_cutoff(now))
        except Exception as exc:
            if not is_unavailable(exc):
                raise
            # Without the database nothing can be written twice anyway; help and other
            # answers that need no database keep working. The door logs the outage once.
            return await dispatch()
        if first:
            response = await dispatch()
            content_type = (response.headers.get("content-type") or [""])[0]
            answer = StoredAnswer(status=response.status, content_type=content_type, body=response.body)
            # Stored after the answer goes out: a repeat waits for it (_first_answer), the ack does not.
            task = asyncio.create_task(self._finish(key, answer))
            self._finishing.add(task)
            task.add_done_callback(self._finishing.discard)
            return response
        log.info("%s repeated (replay or double submit); answered as the first, not acted on", _kind(key))
        return await self._first_answer(key)

    async def _finish(self, key: str, answer: StoredAnswer) -> None:
        try:
            await self._store.finish(key, answer)
        except Exception as exc:
            if not is_unavailable(exc):
                log.exception("could not store the answer to a request")

    async def _first_answer(self, key: str) -> BoltResponse:
        for _ in range(WAIT_STEPS):
            try:
                answer = await self._store.answer(key)
            except Exception as exc:
                if not is_unavailable(exc):
                    raise
                break
            if answer is not None:
                headers: dict[str, Any] = {"content-type": answer.content_type} if answer.content_type else {}
                return BoltResponse(status=answer.status, body=answer.body, headers=headers)
            await asyncio.sleep(WAIT_STEP_SECONDS)
        return BoltResponse(status=200, body="")

    def _prune_cutoff(self, now: datetime) -> datetime | None:
        """Expired keys are deleted with a claim, at most once per KEPT_FOR per process."""
        if self._pruned_at is not None and now - self._pruned_at < KEPT_FOR:
            return None
        self._pruned_at = now
        return now - KEPT_FOR


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _kind(key: str) -> str:
    return "a view submission" if key.startswith("view:") else "a signed request"
