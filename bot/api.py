"""The REST API for deploy pipelines, `/api/v1` next to `/slack/events`: file a change
(the form's validation and policy, announced and routed like the form), read it, ask its
gate (go, wait or stop, optionally long-polled) and report the deploy's progress.

Every call carries `Authorization: Bearer TOKEN` (an API token, never a Slack secret),
checked before the body is read. A token's calls act as "api:NAME"; the token itself is
never logged."""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from typing import Any

from aiohttp import web
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.api_input import BodyRejected, ChangeRequestBody, api_errors, parse_change, parse_event
from bot.change_json import change_as_json
from bot.directory import DirectoryUnavailable, SlackDirectory
from bot.log_limit import LogLimiter
from domain.api_tokens import principal
from domain.clock import Clock
from domain.conflicts import Conflict
from domain.errors import ChangeNotFound, ConflictsFound
from domain.gates import GateDecision
from domain.intake import IntakeRejected
from domain.model import Change
from domain.policy import Policy
from domain.service import ChangeService
from storage.api_tokens import ApiTokens
from storage.health import is_unavailable
from storage.repository import SqlChangeRepository

log = logging.getLogger(__name__)

PREFIX = "/api/v1"
MAX_API_BODY = 64 * 1024  # a change's JSON is a few KiB; the policy's text limits are far below
MAX_WAIT_SECONDS = 25  # a long-poll answers within this, under the usual proxies' 30 s
POLL_SECONDS = 1.0
CHANGE_ID = re.compile(r"[A-Za-z0-9-]{1,20}")
MAX_SERVICE = 100
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class ApiError(Exception):
    """Answered as `{"error": message}` with `status`."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass
class Api:
    """What the routes need; the composition root builds it (bot/app.py)."""

    service: ChangeService
    policy: Policy
    tokens: ApiTokens
    repository: SqlChangeRepository
    directory: SlackDirectory
    client: AsyncWebClient
    clock: Clock
    changes_channel: str
    slack_secrets: tuple[str, ...]  # the bot and app tokens and the signing secret: never accepted
    _links: dict[str, str] = field(default_factory=dict)
    _refused: LogLimiter | None = None

    def routes(self, web_app: web.Application) -> None:
        self._refused = LogLimiter(log, clock=self.clock)
        web_app.router.add_post(f"{PREFIX}/changes", self._guarded(self.file_change))
        web_app.router.add_get(f"{PREFIX}/changes/{{change_id}}", self._guarded(self.show_change))
        web_app.router.add_get(f"{PREFIX}/changes/{{change_id}}/gate", self._guarded(self.gate))
        web_app.router.add_post(f"{PREFIX}/changes/{{change_id}}/events", self._guarded(self.report_event))
        # last: any other path or method under /api/v1 is still asked for a token first
        web_app.router.add_route("*", f"{PREFIX}/{{tail:.*}}", self._guarded(_no_such_route))

    # --- the door: who asks, and what any failure answers --------------------------
    def _guarded(self, handler: Callable[[web.Request, str], Awaitable[web.Response]]) -> Handler:
        async def handle(request: web.Request) -> web.StreamResponse:
            try:
                name = await self._authenticate(request)
                if name is None:
                    return web.json_response({"error": "missing, unknown or revoked API token"}, status=401)
                return await handler(request, name)
            except ApiError as exc:
                return web.json_response({"error": exc.message}, status=exc.status)
            except (BodyRejected, IntakeRejected) as exc:
                return web.json_response({"errors": api_errors(exc.errors)}, status=422)
            except ChangeNotFound:
                return web.json_response({"error": "no such change"}, status=404)
            except DirectoryUnavailable:
                return web.json_response({"error": "Slack could not be asked; try again"}, status=503)
            except Exception as exc:
                if not is_unavailable(exc):
                    raise
                return web.json_response({"error": "the database is unavailable; try again"}, status=503)

        return handle

    async def _authenticate(self, request: web.Request) -> str | None:
        """The token's name, or None (logged without the token, at most a line a minute)."""
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        token = token.strip()
        name = None
        if scheme.lower() == "bearer" and token and not self._is_slack_secret(token):
            name = await self.tokens.authenticate(token, now=self.clock.now())
        if name is None and self._refused is not None:
            where = f"{request.method} {request.path[:200]}"
            self._refused.log(logging.WARNING, "refused API call %s from %s", where, request.remote)
        return name

    def _is_slack_secret(self, token: str) -> bool:
        given = token.encode("utf-8", "surrogatepass")
        return any(
            hmac.compare_digest(given, secret.encode("utf-8", "surrogatepass"))
            for secret in self.slack_secrets
            if secret
        )

    # --- the routes ---------------------------------------------------------------
    async def file_change(self, request: web.Request, name: str) -> web.Response:
        body = parse_change(await _json_object(request), policy=self.policy, now=self.clock.now())
        requester = await self._requester(body)
        form = body.form
        try:
            change = await self.service.file_change(form=form, requester=requester, source=body.source)
        except ConflictsFound as exc:
            if not body.confirm_conflicts:
                return _conflicts(exc)
            seen = tuple(c.change_id for c in exc.conflicts)
            try:  # confirmed: the overlaps just seen are acknowledged, as a second Submit does
                change = await self.service.file_change(
                    form=replace(form, acknowledged_conflicts=seen), requester=requester, source=body.source
                )
            except ConflictsFound as again:  # one more appeared in between: it was not confirmed
                return _conflicts(again)
        log.info("api: token %s filed %s for %s", name, change.id, requester)
        return web.json_response(change_as_json(change), status=201)

    async def show_change(self, request: web.Request, _name: str) -> web.Response:
        change = await self.service.get_change(change_id=_change_id(request))
        return web.json_response(change_as_json(change))

    async def gate(self, request: web.Request, name: str) -> web.Response:
        change_id = _change_id(request)
        service = request.query.get("service") or None
        if service is not None and len(service) > MAX_SERVICE:
            raise BodyRejected({"service": f"A service name has at most {MAX_SERVICE} characters."})
        wait = _wait_seconds(request.query.get("wait"))
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait
        while True:
            answer = await self.service.gate(change_id=change_id, service=service, asked_by=principal(name))
            if answer.decision is not GateDecision.WAIT or loop.time() + POLL_SECONDS > deadline:
                break
            await asyncio.sleep(POLL_SECONDS)
        change = await self.service.get_change(change_id=change_id, history=False)
        return web.json_response(
            {
                "decision": answer.decision.value,
                "reason": answer.reason,
                "change": change.id,
                "url": await self._card_link(change),
            }
        )

    async def report_event(self, request: web.Request, name: str) -> web.Response:
        change_id = _change_id(request)
        event, notes = parse_event(await _json_object(request))
        outcome = await self.service.report_event(
            change_id=change_id, event=event, notes=notes, actor=principal(name)
        )
        if outcome.refusal:
            log.info("api: token %s reported %s on %s: refused", name, event.value, change_id)
            return web.json_response({"error": outcome.refusal}, status=409)
        log.info("api: token %s reported %s on %s", name, event.value, outcome.change.id)
        return web.json_response(change_as_json(outcome.change))

    # --- helpers --------------------------------------------------------------------
    async def _requester(self, body: ChangeRequestBody) -> str:
        if not body.requester_is_email:
            return body.requester
        user = await self.directory.user_by_email(body.requester)
        if user is None:
            raise BodyRejected({"requester": "No Slack user has this email."})
        return user

    async def _card_link(self, change: Change) -> str | None:
        """The permalink of the change's card in the changes channel, once it is posted."""
        if change.id in self._links:
            return self._links[change.id]
        for copy in await self.repository.card_copies(change.id):
            if copy.channel == self.changes_channel and copy.user_id is None:
                try:
                    answer = await self.client.chat_getPermalink(channel=copy.channel, message_ts=copy.ts)
                except (SlackApiError, OSError, TimeoutError):
                    return None
                link = str(answer.get("permalink") or "") or None
                if link is not None:
                    if len(self._links) > 10_000:  # a long-lived process: keep the cache bounded
                        self._links.clear()
                    self._links[change.id] = link
                return link
        return None


async def _no_such_route(request: web.Request, _name: str) -> web.Response:
    return web.json_response(
        {"error": f"no such API route: {request.method} {request.path[:200]}"}, status=404
    )


def _change_id(request: web.Request) -> str:
    raw = request.match_info["change_id"].strip()
    if not CHANGE_ID.fullmatch(raw):
        raise ChangeNotFound(raw[:20])
    return raw.upper()


def _wait_seconds(raw: str | None) -> float:
    if raw is None or raw == "":
        return 0.0
    if not raw.isascii() or not raw.isdigit() or len(raw) > 6:
        raise BodyRejected({"wait": f"Give whole seconds, 0 to {MAX_WAIT_SECONDS}."})
    return float(min(int(raw), MAX_WAIT_SECONDS))


async def _json_object(request: web.Request) -> dict[str, Any]:
    """The body as a JSON object: 413 over the limit, 400 when not a JSON object."""
    if request.content_length is not None and request.content_length > MAX_API_BODY:
        raise ApiError(413, f"the body is over {MAX_API_BODY} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.content.iter_chunked(16 * 1024):
        size += len(chunk)
        if size > MAX_API_BODY:
            raise ApiError(413, f"the body is over {MAX_API_BODY} bytes")
        chunks.append(chunk)
    try:
        body = json.loads(b"".join(chunks))
    except (ValueError, RecursionError):
        raise ApiError(400, "the body is not JSON") from None
    if not isinstance(body, dict):
        raise ApiError(400, "the body must be a JSON object")
    return body


def _conflicts(found: ConflictsFound) -> web.Response:
    return web.json_response({"conflicts": [_conflict_json(c) for c in found.conflicts]}, status=409)


def _conflict_json(conflict: Conflict) -> dict[str, Any]:
    return {
        "id": conflict.change_id,
        "title": conflict.title,
        "window": {"starts_at": conflict.starts_at.isoformat(), "ends_at": conflict.ends_at.isoformat()},
        "services": list(conflict.services),
    }
