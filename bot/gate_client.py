"""`changebot gate`: a pipeline asks a change's gate before it deploys, and waits for it.

Exit codes, for a CI step to branch on: 0 go, 1 stop, 2 wait (not asked to wait, or
still waiting at the timeout), 3 cannot ask (unreachable, bad token, unknown change, a
request the server refused). Standard library only: it runs in any pipeline image."""

from __future__ import annotations

import json
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Any, TextIO

GO, STOP, WAIT, CANNOT_ASK = 0, 1, 2, 3
EXIT_CODES = {"go": GO, "stop": STOP, "wait": WAIT}
LONG_POLL_SECONDS = 20  # the server holds each ask this long at most while the answer is "wait"
MAX_BACKOFF_SECONDS = 10.0


class CannotAsk(Exception):
    """The gate could not be asked; `transient` when asking again may help."""

    def __init__(self, message: str, *, transient: bool) -> None:
        super().__init__(message)
        self.transient = transient


@dataclass(frozen=True)
class GateQuestion:
    base_url: str
    token: str
    change_id: str
    service: str | None = None


def ask(question: GateQuestion, *, wait_seconds: int) -> dict[str, Any]:
    """One ask of the gate endpoint: its JSON answer, or CannotAsk."""
    query: dict[str, str] = {}
    if question.service:
        query["service"] = question.service
    if wait_seconds > 0:
        query["wait"] = str(wait_seconds)
    path = f"/api/v1/changes/{urllib.parse.quote(question.change_id, safe='')}/gate"
    url = question.base_url.rstrip("/") + path + (f"?{urllib.parse.urlencode(query)}" if query else "")
    request = urllib.request.Request(
        url, headers={"Authorization": f"Bearer {question.token}", "Accept": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=wait_seconds + 15) as response:
            answer = json.loads(response.read())
    except urllib.error.HTTPError as exc:
        raise _refused(exc) from None
    except (urllib.error.URLError, OSError, TimeoutError) as exc:
        reason = getattr(exc, "reason", exc)
        raise CannotAsk(f"cannot reach {question.base_url}: {reason}", transient=True) from None
    except ValueError:
        raise CannotAsk("the server's answer is not JSON", transient=True) from None
    if not isinstance(answer, dict) or answer.get("decision") not in EXIT_CODES:
        raise CannotAsk("the server's answer has no decision", transient=True)
    return answer


def _refused(exc: urllib.error.HTTPError) -> CannotAsk:
    try:
        body = json.loads(exc.read() or b"{}")
    except ValueError:
        body = {}
    detail = body.get("error") or body.get("errors") if isinstance(body, dict) else None
    messages = {401: "the API token is missing, unknown or revoked", 404: "no such change"}
    message = messages.get(exc.code) or f"the server answered {exc.code}"
    if detail and exc.code not in messages:
        message += f": {detail}"
    return CannotAsk(message, transient=exc.code >= 500 or exc.code == 429)


def run_gate(
    question: GateQuestion,
    *,
    wait: bool,
    timeout: float,
    out: TextIO = sys.stdout,
    err: TextIO = sys.stderr,
) -> int:
    """Ask once, or with `wait` until the answer is go or stop or `timeout` seconds pass."""
    deadline = time.monotonic() + timeout
    said: tuple[str, str] | None = None
    linked = False
    backoff = 1.0
    while True:
        remaining = deadline - time.monotonic()
        try:
            answer = ask(question, wait_seconds=int(min(LONG_POLL_SECONDS, max(remaining, 0))) if wait else 0)
        except CannotAsk as exc:
            if not (wait and exc.transient and remaining > backoff):
                print(f"changebot gate: {exc}", file=err)
                return CANNOT_ASK
            print(f"changebot gate: {exc}; asking again in {backoff:.0f} s", file=err)
            time.sleep(backoff)
            backoff = min(backoff * 2, MAX_BACKOFF_SECONDS)
            continue
        backoff = 1.0
        decision, reason = str(answer["decision"]), str(answer.get("reason") or "")
        if (decision, reason) != said:
            print(f"{answer.get('change', question.change_id)}: {decision}: {reason}", file=out, flush=True)
            said = (decision, reason)
        if answer.get("url") and not linked:
            print(f"the change in Slack: {answer['url']}", file=out, flush=True)
            linked = True
        if decision != "wait" or not wait or deadline - time.monotonic() < 1:
            if decision == "wait" and wait:
                print(f"changebot gate: still waiting after {timeout:.0f} s", file=err)
            return EXIT_CODES[decision]
