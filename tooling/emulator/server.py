"""The emulator's HTTP server: routes Web API calls to the method handlers, records every
call, applies the injected faults, and offers tests their waiting and seeding helpers."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from aiohttp import web

from domain.clock import Clock
from tooling.emulator.chat import ChatMethods
from tooling.emulator.conversations import ConversationMethods
from tooling.emulator.faults import FaultPlan, fault_response
from tooling.emulator.files import FileMethods
from tooling.emulator.requests import is_authed, parse_params
from tooling.emulator.socket_mode import SocketMode
from tooling.emulator.users import UserMethods
from tooling.emulator.views import ViewMethods
from tooling.emulator.wire import Call, Handler, JSONDict, SlackError
from tooling.emulator.workspace import Workspace


class SlackEmulator(Workspace):
    """aiohttp server answering Slack Web API methods from in-memory state.

    Besides the workspace state (see ``Workspace``), it records the requests:
    ``calls`` / ``failed_calls`` (``Call``), and ``arrivals``, the methods in the order
    requests came in, before any delay: what is in flight.
    """

    def __init__(
        self, *, auto_users: bool = True, ts_start: int = 1_700_000_000, clock: Clock | None = None
    ) -> None:
        super().__init__(auto_users=auto_users, ts_start=ts_start, clock=clock)
        self.calls: list[Call] = []
        self.failed_calls: list[Call] = []
        self.arrivals: list[str] = []
        self._faults = FaultPlan()
        # Fault injection, the plan's own methods: fail_next(method, status, …), delay(method, s).
        self.fail_next = self._faults.fail_next
        self.delay = self._faults.delay
        self._runner: web.AppRunner | None = None
        self._host = "127.0.0.1"
        self._port: int | None = None
        self._files = FileMethods(self, address=self._address)
        self._socket_mode = SocketMode(address=self._address, next_id=self.next_id)
        self._handlers: dict[str, Handler] = {
            **UserMethods(self).handlers(),
            **ChatMethods(self).handlers(),
            **ConversationMethods(self).handlers(),
            **ViewMethods(self).handlers(),
            **self._files.handlers(),
            **self._socket_mode.handlers(),
        }

    # ------------------------------------------------------------------ server

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        """Bind the server; port 0 lets parallel test runs never collide."""
        if self._runner is not None:
            raise RuntimeError("emulator already started")
        app = web.Application(client_max_size=32 * 1024 * 1024)
        app.router.add_route("*", "/api/{method}", self._handle_api)
        app.router.add_post("/response/{name}", self._handle_response_url)
        app.router.add_get("/socket", self._socket_mode.handle_socket)
        app.router.add_post("/upload/{file_id}", self._files.handle_upload)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, host, port)
        await site.start()
        self._runner = runner
        self._host = host
        addresses = runner.addresses
        self._port = int(addresses[0][1])

    async def stop(self) -> None:
        """Shut the server down; safe to call twice."""
        await self._socket_mode.close()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
            self._port = None

    async def __aenter__(self) -> SlackEmulator:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def _address(self) -> str:
        return f"{self._host}:{self._port}"

    @property
    def root_url(self) -> str:
        if self._port is None:
            raise RuntimeError("emulator not started")
        return f"http://{self._address()}"

    @property
    def base_url(self) -> str:
        """Value for ``AsyncWebClient(base_url=...)``; the SDK appends the method name."""
        return f"{self.root_url}/api/"

    def response_url(self, name: str) -> str:
        """A response_url whose POSTs are recorded under ``responses[name]``."""
        return f"{self.root_url}/response/{name}"

    # ------------------------------------------------------------- socket mode

    @property
    def socket_acks(self) -> dict[str, JSONDict]:
        """The acks the connected app sent back, by envelope id."""
        return self._socket_mode.acks

    async def socket_send(self, envelope_type: str, payload: JSONDict, *, timeout: float = 10.0) -> JSONDict:
        """Deliver one Socket Mode envelope to the connected app and return its ack."""
        return await self._socket_mode.send(envelope_type, payload, timeout=timeout)

    # --------------------------------------------------------------- recording

    def calls_to(self, method: str) -> list[Call]:
        return [c for c in self.calls if c.method == method]

    def reset_calls(self) -> None:
        self.calls.clear()
        self.failed_calls.clear()
        self.arrivals.clear()

    async def wait_for(
        self,
        method: str,
        count: int = 1,
        timeout: float = 5.0,
        predicate: Callable[[Call], bool] | None = None,
    ) -> list[Call]:
        """Wait until ``count`` matching calls exist: bot work is often fire-and-forget."""
        deadline = time.monotonic() + timeout
        while True:
            found = [c for c in self.calls_to(method) if predicate is None or predicate(c)]
            if len(found) >= count:
                return found
            if time.monotonic() >= deadline:
                seen = [c.method for c in self.calls]
                raise AssertionError(
                    f"timed out after {timeout}s waiting for {count} call(s) to {method!r}"
                    f" (matched {len(found)}); recorded calls: {seen}"
                )
            await asyncio.sleep(0.005)

    def reset(self) -> None:
        """Forget all calls, faults and state, keeping the server running."""
        self.reset_calls()
        self.clear_state()
        self._faults.clear()

    # --------------------------------------------------------- request plumbing

    async def _handle_api(self, request: web.Request) -> web.StreamResponse:
        method = request.match_info["method"]
        self.arrivals.append(method)
        seconds = self._faults.delay_for(method)
        if seconds:
            await asyncio.sleep(seconds)
        try:
            params = await parse_params(request)
        except SlackError as exc:
            self.failed_calls.append(Call(method, {}, time.monotonic()))
            return web.json_response({"ok": False, "error": exc.code})
        authed = is_authed(request, params)
        params.pop("token", None)
        call = Call(method=method, params=params, at=time.monotonic())

        fault = self._faults.take(method)
        if fault is not None:
            self.failed_calls.append(call)
            return fault_response(fault)
        if not authed:
            self.failed_calls.append(call)
            return web.json_response({"ok": False, "error": "not_authed"})

        self.calls.append(call)
        handler = self._handlers.get(method)
        if handler is None:
            return web.json_response({"ok": False, "error": "unknown_method"})
        try:
            result = handler(params)
        except SlackError as exc:
            return web.json_response({"ok": False, "error": exc.code})
        return web.json_response({"ok": True, **result})

    async def _handle_response_url(self, request: web.Request) -> web.Response:
        """Record response_url posts; also as a ``response/<name>`` call so wait_for works."""
        name = request.match_info["name"]
        try:
            params = await parse_params(request)
        except SlackError:
            return web.Response(status=400, text="invalid_payload")
        body: Any = params.get("payload", params)
        self.responses.setdefault(name, []).append(body)
        recorded = body if isinstance(body, dict) else {"payload": body}
        self.calls.append(Call(f"response/{name}", recorded, time.monotonic()))
        return web.Response(text="ok")
