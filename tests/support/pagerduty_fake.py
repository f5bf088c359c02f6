"""An HTTPS fake of the PagerDuty REST API v2 (on-calls, users) and the Events API v2
(change events), for tests.

It serves TLS with a certificate signed by a throwaway CA made with the ``openssl`` CLI,
so clients really verify the chain: point ``SSL_CERT_FILE`` at ``ca_file`` before you
construct a client (httpx2 reads it when the client is built).

    fake = PagerDutyFake()
    await fake.start()
    fake.add_user("PALICE", name="Alice", email="alice@example.com")
    fake.add_oncall("PALICE", level=1, escalation_policy_id="PEP1")
    monkeypatch.setenv("SSL_CERT_FILE", fake.ca_file)
    ... RestApiV2Client(token, base_url=fake.base_url) ...
    await fake.stop()

Public state (plain lists/dicts, mutate freely): ``users``, ``oncalls``,
``change_events``, ``requests``; knobs: ``api_token``, ``routing_key``,
``include_users_supported``, ``max_page_size``. Faults: ``fail_with``, ``delay``,
``go_down`` / ``come_back``.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import json
import shutil
import socket
import ssl
import subprocess
import tempfile
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

from tests.support.policy_fixture import TEST_POLICY

JSONDict = dict[str, Any]

_CERTS: tuple[str, str, str] | None = None  # (ca.pem, server chain .pem, server .key)


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def tls_certificates() -> tuple[str, str, str]:
    """A CA and a server certificate for 127.0.0.1 / localhost signed by it, made once per
    process with the openssl CLI: (ca_file, cert_file, key_file)."""
    global _CERTS
    if _CERTS is not None:
        return _CERTS
    if shutil.which("openssl") is None:
        raise RuntimeError("the PagerDuty fake needs the openssl command line tool")
    folder = Path(tempfile.mkdtemp(prefix="pagerduty-fake-tls-"))
    atexit.register(shutil.rmtree, folder, True)
    ec = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes")
    _openssl(
        "req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
        "-subj", "/CN=changebot test CA",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign",
        "-addext", "subjectKeyIdentifier=hash",
        cwd=folder,
    )  # fmt: skip
    _openssl("req", *ec, "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=127.0.0.1", cwd=folder)
    (folder / "server.ext").write_text(
        "subjectAltName = IP:127.0.0.1, DNS:localhost\n"
        "basicConstraints = critical, CA:FALSE\n"
        "keyUsage = critical, digitalSignature\n"
        "extendedKeyUsage = serverAuth\n"
        "subjectKeyIdentifier = hash\n"
        "authorityKeyIdentifier = keyid:always\n"
    )
    _openssl(
        "x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
        "-set_serial", "0x" + "5eed" * 4, "-days", "2", "-extfile", "server.ext", "-out", "server.pem",
        cwd=folder,
    )  # fmt: skip
    _CERTS = (str(folder / "ca.pem"), str(folder / "server.pem"), str(folder / "server.key"))
    return _CERTS


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    query: list[tuple[str, str]]  # in order, repeated keys kept (escalation_policy_ids[] ...)
    headers: dict[str, str]
    body: Any  # decoded JSON, or the text, or None

    def params(self, key: str) -> list[str]:
        return [v for k, v in self.query if k == key]


@dataclass
class _Fault:
    status: int
    times: int
    retry_after: float | None
    path: str | None
    body: Any = None


@dataclass
class PagerDutyFake:
    api_token: str | None = "pd-test-token"  # None: accept any Authorization header
    routing_key: str | None = None  # None: accept any non-empty routing key
    include_users_supported: bool = True  # honour include[]=users on GET /oncalls
    max_page_size: int = 100  # PagerDuty caps `limit` at 100
    users: dict[str, JSONDict] = field(default_factory=dict)
    oncalls: list[JSONDict] = field(default_factory=list)
    change_events: list[JSONDict] = field(default_factory=list)
    requests: list[Request] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.ca_file, self._cert_file, self._key_file = tls_certificates()
        self._faults: deque[_Fault] = deque()
        self._delay = 0.0
        self._released = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self._port: int | None = None
        self._placeholder: socket.socket | None = None

    # ------------------------------------------------------------------ lifecycle

    async def start(self, port: int = 0) -> None:
        if self._runner is not None:
            raise RuntimeError("PagerDuty fake already started")
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self._cert_file, self._key_file)
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", port, ssl_context=context, reuse_address=True)
        await site.start()
        self._runner = runner
        self._port = int(runner.addresses[0][1])
        self._released.clear()

    async def stop(self) -> None:
        """Shut down for good; safe to call twice."""
        await self._close()
        if self._placeholder is not None:
            self._placeholder.close()
            self._placeholder = None
        self._port = None

    async def go_down(self) -> None:
        """Stop answering: the port stays reserved (bound, not listening), so connecting
        is refused at once, as when PagerDuty's address is unreachable."""
        port = self._port
        await self._close()
        placeholder = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        placeholder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        placeholder.bind(("127.0.0.1", port or 0))
        self._placeholder = placeholder
        self._port = int(placeholder.getsockname()[1])

    async def come_back(self) -> None:
        """Answer again on the same port after ``go_down``."""
        port = self._port
        if self._placeholder is not None:
            self._placeholder.close()
            self._placeholder = None
        await self.start(port or 0)

    async def _close(self) -> None:
        self._released.set()  # wake delayed handlers so shutdown never waits on them
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> PagerDutyFake:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def base_url(self) -> str:
        if self._port is None:
            raise RuntimeError("PagerDuty fake not started")
        return f"https://127.0.0.1:{self._port}"

    # ------------------------------------------------------------------ data

    def add_user(self, user_id: str, *, email: str, name: str | None = None) -> JSONDict:
        user = {"id": user_id, "type": "user", "name": name or user_id, "email": email}
        self.users[user_id] = user
        return user

    def add_oncall(
        self,
        user_id: str,
        *,
        level: int,
        escalation_policy_id: str = "PEP1",
        schedule_id: str | None = None,
        start: str | None = None,
        end: str | None = None,
    ) -> JSONDict:
        entry: JSONDict = {
            "user_id": user_id,
            "escalation_level": level,
            "escalation_policy_id": escalation_policy_id,
            "schedule_id": schedule_id,
            "start": start,
            "end": end,
        }
        self.oncalls.append(entry)
        return entry

    def requests_to(self, path: str, method: str | None = None) -> list[Request]:
        return [r for r in self.requests if r.path == path and (method is None or r.method == method)]

    # ------------------------------------------------------------------ faults

    def fail_with(
        self, status: int, times: int = 1, retry_after: float | None = None, *, path: str | None = None
    ) -> None:
        """The next ``times`` requests (to ``path`` only, if given) answer ``status``;
        ``retry_after`` adds a Retry-After header (seconds)."""
        self._faults.append(_Fault(status=status, times=times, retry_after=retry_after, path=path))

    def delay(self, seconds: float) -> None:
        """Every request waits ``seconds`` before it is answered (0 to stop)."""
        self._delay = seconds

    # ------------------------------------------------------------------ serving

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        body: Any = None
        if raw:
            try:
                body = json.loads(raw)
            except ValueError:
                body = raw.decode(errors="replace")
        self.requests.append(
            Request(
                method=request.method,
                path=request.path,
                query=list(request.query.items()),
                headers=dict(request.headers.items()),
                body=body,
            )
        )
        if self._delay > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._released.wait(), self._delay)
        fault = self._take_fault(request.path)
        if fault is not None:
            headers = {} if fault.retry_after is None else {"Retry-After": f"{fault.retry_after:g}"}
            return web.json_response(
                self._error_body(request.path, fault.status), status=fault.status, headers=headers
            )
        if request.path == "/v2/change/enqueue" and request.method == "POST":
            return self._change_event(body)
        if request.path.startswith("/v2/"):
            return web.json_response({"status": "invalid request", "message": "Not found"}, status=404)
        if (
            self.api_token is not None
            and request.headers.get("Authorization") != f"Token token={self.api_token}"
        ):
            return web.json_response({"error": {"message": "Unauthorized", "code": 2006}}, status=401)
        if request.path == "/oncalls" and request.method == "GET":
            return self._list_oncalls(request)
        parts = request.path.strip("/").split("/")
        if len(parts) == 2 and parts[0] == "users" and request.method == "GET":
            user = self.users.get(parts[1])
            if user is None:
                return web.json_response({"error": {"message": "Not Found", "code": 2100}}, status=404)
            return web.json_response({"user": self._full_user(user)})
        return web.json_response({"error": {"message": "Not Found", "code": 2100}}, status=404)

    def _take_fault(self, path: str) -> _Fault | None:
        for fault in self._faults:
            if fault.path is None or fault.path == path:
                fault.times -= 1
                if fault.times <= 0:
                    self._faults.remove(fault)
                return fault
        return None

    @staticmethod
    def _error_body(path: str, status: int) -> JSONDict:
        if path.startswith("/v2/"):
            message = "Too many requests" if status == 429 else f"Simulated failure {status}"
            return {"status": "error", "message": message}
        return {"error": {"message": f"Simulated failure {status}", "code": 2000 + status}}

    def _change_event(self, body: Any) -> web.Response:
        errors = []
        if not isinstance(body, dict):
            errors.append("Event object is not a JSON object")
        else:
            key = body.get("routing_key")
            if not key or (self.routing_key is not None and key != self.routing_key):
                errors.append("'routing_key' is invalid")
            payload = body.get("payload")
            if not isinstance(payload, dict) or not payload.get("summary"):
                errors.append("'payload.summary' is missing or blank")
        if errors:
            return web.json_response(
                {"status": "invalid event", "message": "Event object is invalid", "errors": errors},
                status=400,
            )
        self.change_events.append(body)
        return web.json_response({"status": "success", "message": "Change event processed"}, status=202)

    def _ref(self, kind: str, item_id: str, summary: str) -> JSONDict:
        path = {"user": "users", "escalation_policy": "escalation_policies", "schedule": "schedules"}[kind]
        return {
            "id": item_id,
            "type": f"{kind}_reference",
            "summary": summary,
            "self": f"{self.base_url}/{path}/{item_id}",
            "html_url": f"https://example.pagerduty.com/{path}/{item_id}",
        }

    def _full_user(self, user: JSONDict) -> JSONDict:
        return {
            "summary": user.get("name"),
            "self": f"{self.base_url}/users/{user['id']}",
            "html_url": f"https://example.pagerduty.com/users/{user['id']}",
            **user,
        }

    def _list_oncalls(self, request: web.Request) -> web.Response:
        query = request.query
        policies = set(query.getall("escalation_policy_ids[]", []))
        schedules = set(query.getall("schedule_ids[]", []))
        user_ids = set(query.getall("user_ids[]", []))
        include_users = "users" in query.getall("include[]", []) and self.include_users_supported
        matching = [
            entry
            for entry in self.oncalls
            if (not policies or entry["escalation_policy_id"] in policies)
            and (not schedules or entry["schedule_id"] in schedules)
            and (not user_ids or entry["user_id"] in user_ids)
        ]
        if query.get("earliest") == "true":
            earliest: dict[tuple[str, int, str], JSONDict] = {}
            for entry in sorted(matching, key=lambda e: e["start"] or ""):
                earliest.setdefault(
                    (entry["escalation_policy_id"], entry["escalation_level"], entry["user_id"]), entry
                )
            matching = [entry for entry in matching if entry in earliest.values()]
        limit = min(int(query.get("limit", "25")), self.max_page_size)
        offset = int(query.get("offset", "0"))
        page = matching[offset : offset + limit]
        rendered = []
        for entry in page:
            user = self.users.get(entry["user_id"], {"id": entry["user_id"], "name": entry["user_id"]})
            rendered.append(
                {
                    "escalation_policy": self._ref(
                        "escalation_policy", entry["escalation_policy_id"], "Policy"
                    ),
                    "escalation_level": entry["escalation_level"],
                    "schedule": None
                    if entry["schedule_id"] is None
                    else self._ref("schedule", entry["schedule_id"], "Schedule"),
                    "user": self._full_user(user)
                    if include_users and entry["user_id"] in self.users
                    else self._ref("user", entry["user_id"], str(user.get("name"))),
                    "start": entry["start"],
                    "end": entry["end"],
                }
            )
        return web.json_response(
            {
                "oncalls": rendered,
                "limit": limit,
                "offset": offset,
                "more": offset + len(page) < len(matching),
                "total": len(matching) if query.get("total") == "true" else None,
            }
        )


PD_POLICY = TEST_POLICY.replace(
    "emergency:\n  fallback: [UFALLBACK]",
    "emergency:\n  fallback: [UFALLBACK]\n  go_ahead: on_call\noncall:\n  escalation_policy_ids: [PEP1]",
)
ROUTING_KEY = "R0UTINGKEY0000000000000000000000"
