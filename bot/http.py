"""The HTTP door: signature check in front of Bolt, `/slack/events` and `/healthz`."""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
from collections.abc import Awaitable, Callable

from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response
from slack_bolt.async_app import AsyncApp
from slack_bolt.request.async_request import AsyncBoltRequest

from bot.listener_errors import INPUT_ERRORS, outage_response
from bot.log_limit import LogLimiter
from bot.outage import DatabaseOutage
from bot.priority import AckFirst
from bot.replay import ReplayGuard
from bot.request_shape import request_problem
from domain.clock import Clock
from storage.health import is_unavailable

log = logging.getLogger(__name__)

MAX_AGE_SECONDS = 300
MAX_BODY = 1024 * 1024
METRICS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
# What a feed token can look like (URL-safe, bounded): anything else is refused unread.
FEED_TOKEN = re.compile(r"[A-Za-z0-9_.~-]{1,128}")


def signature_problem(
    *, secret: str, body: bytes, timestamp: str | None, signature: str | None, now: float
) -> str | None:
    """Why a request is not from Slack, or None. Never raises: every bad header is a 401."""
    if not timestamp or not signature:
        return "missing signature headers"
    if not timestamp.isascii() or not timestamp.isdigit() or len(timestamp) > 12:
        return "malformed timestamp"
    if abs(now - int(timestamp)) > MAX_AGE_SECONDS:
        return "stale timestamp"
    if not signature.isascii() or not signature.startswith("v0=") or len(signature) != 67:
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
    outage: DatabaseOutage | None = None,
) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    priority = ack_first or AckFirst()
    outage = outage or DatabaseOutage(clock=clock)
    unsigned = LogLimiter(log, clock=clock)
    malformed = LogLimiter(log, clock=clock)

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
            unsigned.log(logging.WARNING, "rejected unsigned request from %s: %s", request.remote, problem)
            return web.json_response({"error": "invalid signature"}, status=401)
        problem = request_problem(body, request.content_type)
        if problem:
            malformed.log(logging.WARNING, "rejected malformed Slack request: %s", problem)
            return web.json_response({"error": "malformed request"}, status=400)
        try:
            bolt_request = AsyncBoltRequest(
                body=body.decode("utf-8"), query=request.query_string, headers=dict(request.headers)
            )
        except Exception as error:  # Bolt reads ids from places the shape check leaves alone
            malformed.log(logging.WARNING, "rejected malformed Slack request: %s", type(error).__name__)
            return web.json_response({"error": "malformed request"}, status=400)
        try:
            if replays is None:
                return await to_aiohttp_response(await bolt.async_dispatch(bolt_request))
            answer = await replays.once(
                body=body,
                signature=request.headers.get("X-Slack-Signature", ""),
                dispatch=lambda: bolt.async_dispatch(bolt_request),
            )
            return await to_aiohttp_response(answer)
        except Exception as error:  # Bolt answers listener errors itself; this is what escapes it
            if isinstance(error, INPUT_ERRORS) and not is_unavailable(error):
                malformed.log(
                    logging.WARNING, "rejected malformed Slack request: %s in Bolt", type(error).__name__
                )
                return web.json_response({"error": "malformed request"}, status=400)
            if not is_unavailable(error):
                raise
            outage.answered_during(error, "request")
            return await to_aiohttp_response(outage_response(bolt_request.body))

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
    outage: DatabaseOutage | None = None,
) -> web.Application:
    web_app = web.Application(client_max_size=MAX_BODY)
    web_app.router.add_post(
        "/slack/events",
        slack_events_handler(
            bolt,
            signing_secret=signing_secret,
            clock=clock,
            ack_first=ack_first,
            replays=replays,
            outage=outage,
        ),
    )

    async def healthz(_request: web.Request) -> web.Response:
        checks = await health()
        if outage is not None and "database" in checks:
            outage.probed(up=checks["database"])
        return web.json_response(
            {"ok": all(checks.values()), **checks}, status=200 if all(checks.values()) else 503
        )

    web_app.router.add_get("/healthz", healthz)

    async def calendar_ics(request: web.Request) -> web.Response:
        token = request.query.get("token", "")
        if not FEED_TOKEN.fullmatch(token):  # \w would let Unicode letters and digits through
            return web.Response(status=403, text="unknown or revoked calendar token\n")
        try:
            body = await feed(token) if feed else None
        except Exception as error:
            if not is_unavailable(error):
                raise
            return web.Response(status=503, text="the calendar is unavailable; try again later\n")
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
        text = await outage.metrics(metrics) if outage else await metrics()
        return web.Response(body=text.encode(), headers={"Content-Type": METRICS_CONTENT_TYPE})

    web_app.router.add_get("/metrics", prometheus)
    return web_app
