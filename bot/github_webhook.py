"""`POST /github/webhook`: the GitHub App's deliveries. The signature (HMAC-SHA256 of the
raw body with the webhook secret) is checked before anything is parsed or logged; then a
deployment protection request is stored and answered by the deployment ticker, and a
deployment status moves the change it was gated on."""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from bot.log_limit import LogLimiter
from domain.clock import Clock
from domain.deployments import DeploymentRequest
from domain.gate_policy import REPOSITORY
from domain.usecases.deployments import DeploymentGates

log = logging.getLogger(__name__)

MAX_WEBHOOK_BODY = 1024 * 1024  # deployment events are a few kB; GitHub's own cap is 25 MB
HANDLED = frozenset({"deployment_protection_rule", "deployment_status"})


def signature_valid(*, secret: str, body: bytes, signature: str | None) -> bool:
    """X-Hub-Signature-256 is "sha256=" and the hex HMAC of the raw body; constant time."""
    if not secret or not signature or not signature.isascii() or not signature.startswith("sha256="):
        return False
    expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, signature)


class Malformed(ValueError):
    """A signed delivery whose content is not what its event promises."""


def github_webhook_handler(
    *, secret: str, gates: DeploymentGates, wake: Callable[[], None], clock: Clock
) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    unsigned = LogLimiter(log, clock=clock)
    malformed = LogLimiter(log, clock=clock)

    async def handle(request: web.Request) -> web.StreamResponse:
        if (request.content_length or 0) > MAX_WEBHOOK_BODY:
            return web.json_response({"error": "payload too large"}, status=413)
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            return web.json_response({"error": "payload too large"}, status=413)
        if not signature_valid(
            secret=secret, body=body, signature=request.headers.get("X-Hub-Signature-256")
        ):
            unsigned.log(logging.WARNING, "rejected unsigned GitHub delivery from %s", request.remote)
            return web.json_response({"error": "invalid signature"}, status=401)
        event = request.headers.get("X-GitHub-Event", "")
        try:
            payload = json.loads(body)
            if not isinstance(payload, dict):
                raise Malformed("not a JSON object")
        except (ValueError, UnicodeDecodeError):
            malformed.log(logging.WARNING, "rejected malformed GitHub delivery (%s)", event[:40])
            return web.json_response({"error": "malformed JSON"}, status=400)
        if event not in HANDLED:
            return web.json_response({"ignored": event[:40] or "no event"}, status=202)
        try:  # read first: only a bad delivery is a 400, never our own trouble acting on it
            act = _reader(event, payload)
        except (Malformed, KeyError, TypeError, ValueError) as error:
            malformed.log(logging.WARNING, "rejected malformed GitHub %s: %s", event, type(error).__name__)
            return web.json_response({"error": f"malformed {event}"}, status=400)
        delivery = request.headers.get("X-GitHub-Delivery", "")[:90]
        if act is None:
            return web.json_response({"ok": True, "outcome": "ignored"}, status=202)
        if delivery and not await gates.first_delivery(delivery):
            return web.json_response({"ok": True, "outcome": "duplicate"}, status=202)
        try:
            outcome = await _act(act, gates=gates, wake=wake)
        except BaseException:
            if delivery:  # not acted on: GitHub's redelivery of it must be, not skipped
                with contextlib.suppress(Exception):
                    await gates.forget_delivery(delivery)
            raise
        return web.json_response({"ok": True, "outcome": outcome}, status=202)

    return handle


async def _act(
    act: DeploymentRequest | dict[str, Any], *, gates: DeploymentGates, wake: Callable[[], None]
) -> str:
    if isinstance(act, DeploymentRequest):
        await gates.requested(act)
        wake()
        return "stored"
    return await gates.status(**act)


def _reader(event: str, payload: dict[str, Any]) -> DeploymentRequest | dict[str, Any] | None:
    """What a delivery asks: a deployment to gate, a status to report (as `status`'s
    arguments), or nothing (an action we do not act on)."""
    if event == "deployment_protection_rule":
        return deployment_request(payload) if payload.get("action") == "requested" else None
    status = _object(payload, "deployment_status")
    deployment = _object(payload, "deployment")
    environment = _text(status.get("environment") or deployment.get("environment"), "environment", limit=200)
    return {
        "repository": _repository(payload),
        "environment": environment,
        "state": _text(status.get("state"), "state", limit=40),
        "external_id": f"{int(deployment['id'])}:{environment}",
        "texts": _texts(payload, deployment),
    }


def deployment_request(payload: dict[str, Any]) -> DeploymentRequest:
    """What a `deployment_protection_rule` event asks, checked and bounded."""
    deployment = _object(payload, "deployment")
    environment = _text(payload.get("environment") or deployment.get("environment"), "environment", limit=200)
    callback = _text(payload.get("deployment_callback_url"), "deployment_callback_url")
    installation = payload.get("installation")
    installation_id = int(installation["id"]) if isinstance(installation, dict) else None
    repository = _repository(payload)
    html = payload.get("repository", {}).get("html_url")
    run_id = callback.rstrip("/").split("/runs/")[-1].split("/")[0] if "/runs/" in callback else ""
    run_url = f"{html}/actions/runs/{run_id}" if isinstance(html, str) and run_id.isdigit() else None
    ref = deployment.get("ref") if isinstance(deployment.get("ref"), str) else payload.get("ref")
    return DeploymentRequest(
        external_id=f"{int(deployment['id'])}:{environment}",
        repository=repository,
        environment=environment,
        callback_url=callback,
        installation_id=installation_id,
        run_url=run_url,
        ref=ref[:200] if isinstance(ref, str) else None,
        texts=_texts(payload, deployment),
        sha=_sha(deployment.get("sha")),
    )


def _sha(value: Any) -> str | None:
    """A commit id as GitHub writes it (hex, 7 to 40 digits), else None."""
    if isinstance(value, str) and 7 <= len(value) <= 40 and all(c in "0123456789abcdef" for c in value):
        return value
    return None


def _texts(payload: dict[str, Any], deployment: dict[str, Any]) -> tuple[str, ...]:
    """Where a change id may be written, in order: the ref, the commit message, the pull
    requests' titles, the workflow's inputs."""
    found: list[Any] = [deployment.get("ref"), payload.get("ref")]
    for holder in (payload, payload.get("workflow_run") or {}):
        commit = holder.get("head_commit") if isinstance(holder, dict) else None
        if isinstance(commit, dict):
            found.append(commit.get("message"))
    found.append(deployment.get("description"))
    pulls = payload.get("pull_requests")
    if isinstance(pulls, list):
        found += [pull.get("title") for pull in pulls[:20] if isinstance(pull, dict)]
    extra = deployment.get("payload")
    if isinstance(extra, str):
        found.append(extra)
    elif isinstance(extra, dict):
        inputs = extra.get("inputs")
        found += list(inputs.values())[:50] if isinstance(inputs, dict) else []
        found += list(extra.values())[:50]
    workflow_inputs = (payload.get("workflow_run") or {}).get("inputs")
    if isinstance(workflow_inputs, dict):
        found += list(workflow_inputs.values())[:50]
    return tuple(text[:2000] for text in found if isinstance(text, str))


def _object(payload: dict[str, Any], key: str) -> dict[str, Any]:
    value = payload.get(key)
    if not isinstance(value, dict):
        raise Malformed(f"no {key}")
    return value


def _text(value: Any, name: str, *, limit: int = 500) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > limit:
        raise Malformed(f"bad {name}")
    return value.strip()


def _repository(payload: dict[str, Any]) -> str:
    name = _text(_object(payload, "repository").get("full_name"), "repository", limit=200)
    if not REPOSITORY.match(name):
        raise Malformed("bad repository")
    return name
