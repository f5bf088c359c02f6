"""The HTTP door: signature check in front of Bolt, `/slack/events` and `/healthz`."""

from __future__ import annotations

import hashlib
import hmac
import logging
from collections.abc import Awaitable, Callable

from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response
from slack_bolt.async_app import AsyncApp
from slack_bolt.request.async_request import AsyncBoltRequest

from bot.priority import AckFirst
from bot.replay import ReplayGuard
from domain.clock import Clock

log = logging.getLogger(__name__)

MAX_AGE_SECONDS = 300
MAX_BODY = 1024 * 1024
METRICS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def signature_problem(
    *, secret: str, body: bytes, timestamp: str | None, signature: str | None, now: float
) -> str | None:
    """Why a request is not from Slack, or None. Never raises: every bad header is a 401."""
    if not timestamp or not signature:
        return "missing signature headers"
    if not timestamp.isdigit() or len(timestamp) > 12:
        return "malformed timestamp"
    if abs(now - int(timestamp)) > MAX_AGE_SECONDS:
        return "stale timestamp"
    if not signature.startswith("v0=") or len(signature) != 67:
        return "malformed signature"
    expected = (
        "v0="
        + hmac.new(secret.encode(), b"v0:" + timestamp.encode() + b":" + body, hashlib.sha256).hexdigest()
    )
    if not hmac.compare_digest(expected, signature):
        return "signature mismatch"
    return None


def slack_events_handler(
    bolt: AsyncApp,
    *,
    signing_secret: str,
    clock: Clock,
    ack_first: AckFirst | None = None,
    replays: ReplayGuard | None = None,
) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    priority = ack_first or AckFirst()

    async def handle(request: web.Request) -> web.StreamResponse:
        with priority.request():
            return await _handle(request)

    async def _handle(request: web.Request) -> web.StreamResponse:
        body = await request.read()
        problem = signature_problem(
            secret=signing_secret,
            body=body,
            timestamp=request.headers.get("X-Slack-Request-Timestamp"),
            signature=request.headers.get("X-Slack-Signature"),
            now=clock.now().timestamp(),
        )
        if problem:
            log.warning("rejected unsigned request from %s: %s", request.remote, problem)
            return web.json_response({"error": "invalid signature"}, status=401)
        bolt_request = AsyncBoltRequest(
            body=body.decode("utf-8", errors="replace"),
            query=request.query_string,
            headers=dict(request.headers),
        )
        if replays is None:
            return await to_aiohttp_response(await bolt.async_dispatch(bolt_request))
        answer = await replays.once(
            body=body,
            signature=request.headers.get("X-Slack-Signature", ""),
            dispatch=lambda: bolt.async_dispatch(bolt_request),
        )
        return await to_aiohttp_response(answer)

    return handle


def build_web_app(
    *,
    bolt: AsyncApp,
    signing_secret: str,
    clock: Clock,
    health: Callable[[], Awaitable[dict[str, bool]]],
    feed: Callable[[str], Awaitable[bytes | None]] | None = None,
    metrics: Callable[[], Awaitable[str]] | None = None,
    ack_first: AckFirst | None = None,
    replays: ReplayGuard | None = None,
) -> web.Application:
    web_app = web.Application(client_max_size=MAX_BODY)
    web_app.router.add_post(
        "/slack/events",
        slack_events_handler(
            bolt, signing_secret=signing_secret, clock=clock, ack_first=ack_first, replays=replays
        ),
    )

    async def healthz(_request: web.Request) -> web.Response:
        checks = await health()
        return web.json_response(
            {"ok": all(checks.values()), **checks}, status=200 if all(checks.values()) else 503
        )

    web_app.router.add_get("/healthz", healthz)

    async def calendar_ics(request: web.Request) -> web.Response:
        body = await feed(request.query.get("token", "")) if feed else None
        if body is None:
            return web.Response(status=403, text="unknown or revoked calendar token\n")
        return web.Response(
            body=body,
            content_type="text/calendar",
            charset="utf-8",
            headers={"Cache-Control": "private, max-age=300"},
        )

    web_app.router.add_get("/calendar.ics", calendar_ics)

    async def prometheus(_request: web.Request) -> web.Response:
        if metrics is None:
            return web.Response(status=404)
        return web.Response(body=(await metrics()).encode(), headers={"Content-Type": METRICS_CONTENT_TYPE})

    web_app.router.add_get("/metrics", prometheus)
    return web_app
