"""In-memory emulator of the Slack Web API.

The test suite (and the demo mode) point the real ``slack_sdk`` clients at this
server instead of slack.com, so flows can be exercised end to end without a
workspace, and so tests can inspect exactly what the bot sent and inject the
failures (rate limits, 5xx, slowness) that are hard to provoke against Slack.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import aiohttp
from aiohttp import web

from domain.clock import Clock, SystemClock

__all__ = ["Call", "SlackEmulator"]

JSONDict = dict[str, Any]
Handler = Callable[[JSONDict], JSONDict]

BOT_USER_ID = "UBOT"
BOT_ID = "BBOT"
TEAM_ID = "T0001"
TEAM_NAME = "Emulated"
APP_ID = "A0001"
WORKSPACE_URL = "https://emulated.slack.com/"

# Fields that slack_sdk serialises to JSON strings when it sends form bodies;
# decoding them keeps recorded params identical whatever the transport was.
_JSON_FIELDS = frozenset(
    {"blocks", "attachments", "view", "metadata", "unfurls", "user_auth_blocks", "payload"}
)
_USER_ID_RE = re.compile(r"^[UW][A-Z0-9]+$")


@dataclass(frozen=True)
class Call:
    """One recorded API request; ``at`` is ``time.monotonic()`` when it was handled."""

    method: str
    params: JSONDict
    at: float


@dataclass
class _Fault:
    """A pending injected failure for one method."""

    status: int
    retry_after: float | None
    error: str
    as_text: bool


class _SlackError(Exception):
    """Handler error answered as ``{"ok": false, "error": code}`` with HTTP 200, like Slack."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


def _dm_channel(user_id: str) -> str:
    """DM channel id for a user: deterministic so tests can predict it."""
    return f"D_{user_id}"


def _ts_key(ts: Any) -> Decimal:
    """Exact ordering key for Slack ``ts`` strings (floats lose the microseconds)."""
    try:
        return Decimal(str(ts))
    except (InvalidOperation, ValueError):
        raise _SlackError("invalid_ts_latest") from None


def _str(params: Mapping[str, Any], key: str) -> str | None:
    value = params.get(key)
    if value is None or value == "":
        return None
    return str(value)


def _int(params: Mapping[str, Any], key: str, default: int) -> int:
    value = params.get(key)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except (TypeError, ValueError):
        raise _SlackError("invalid_arguments") from None


def _bool(params: Mapping[str, Any], key: str) -> bool:
    """Form/query booleans arrive as "1"/"true" strings, JSON ones as real booleans."""
    value = params.get(key)
    if isinstance(value, str):
        return value.strip().lower() in {"1", "true", "yes"}
    return bool(value)


def _public(message: JSONDict, *, include_metadata: bool = True) -> JSONDict:
    """API view of a stored message: Slack omits absent fields rather than sending null."""
    out = {k: v for k, v in message.items() if v is not None and k != "channel"}
    if not include_metadata:
        out.pop("metadata", None)
    return out


class SlackEmulator:
    """aiohttp server answering Slack Web API methods from in-memory state.

    Public state (plain dicts/lists, mutate freely in tests):

    * ``calls`` / ``failed_calls``: recorded requests (``Call``);
    * ``channels``: channel id -> list of stored messages (oldest first);
    * ``ephemeral_messages``: every ``chat.postEphemeral`` payload stored;
    * ``views``: view id -> view (including ``hash``); ``home_views``: user id -> view;
    * ``usergroups``: usergroup id -> user ids; ``users``: user id -> profile dict
      (keys ``name``, ``tz``, ``tz_offset``, ``email``/``profile``, ``real_name``);
    * ``responses``: response_url name -> list of POSTed JSON bodies.
    """

    def __init__(
        self, *, auto_users: bool = True, ts_start: int = 1_700_000_000, clock: Clock | None = None
    ) -> None:
        self._clock: Clock = clock or SystemClock()
        self._clock_given = clock is not None
        # auto_users: unknown but well-formed user ids get a synthesised profile so
        # flows touching arbitrary test users need no seeding; set False to test
        # the bot's ``user_not_found`` handling.
        self.auto_users = auto_users
        self.calls: list[Call] = []
        self.failed_calls: list[Call] = []
        self.channels: dict[str, list[JSONDict]] = {}
        self.ephemeral_messages: list[JSONDict] = []
        self.views: dict[str, JSONDict] = {}
        self.home_views: dict[str, JSONDict] = {}
        self.usergroups: dict[str, list[str]] = {}
        self.users: dict[str, JSONDict] = {}
        self.responses: dict[str, list[Any]] = {}
        self._faults: dict[str, deque[_Fault]] = {}
        self._delays: dict[str, float] = {}
        # Methods in the order requests came in, before any delay: what is in flight.
        self.arrivals: list[str] = []
        self._ts_micros = ts_start * 1_000_000
        self._id_counter = 0
        self._runner: web.AppRunner | None = None
        # Channels the bot has not joined: posting there answers not_in_channel until
        # conversations.join is called, as in Slack without chat:write.public.
        self.not_member_of: set[str] = set()
        self._host = "127.0.0.1"
        self._port: int | None = None
        self._handlers: dict[str, Handler] = {
            "auth.test": self._auth_test,
            "chat.postMessage": self._chat_post_message,
            "chat.update": self._chat_update,
            "chat.postEphemeral": self._chat_post_ephemeral,
            "chat.delete": self._chat_delete,
            "chat.getPermalink": self._chat_get_permalink,
            "conversations.open": self._conversations_open,
            "conversations.join": self._conversations_join,
            "conversations.history": self._conversations_history,
            "conversations.replies": self._conversations_replies,
            "views.open": self._views_open,
            "views.update": self._views_update,
            "views.push": self._views_push,
            "views.publish": self._views_publish,
            "usergroups.users.list": self._usergroups_users_list,
            "users.info": self._users_info,
            "users.lookupByEmail": self._users_lookup_by_email,
            "apps.connections.open": self._apps_connections_open,
            "files.getUploadURLExternal": self._files_get_upload_url,
            "files.completeUploadExternal": self._files_complete_upload,
        }
        # Uploaded files: id -> {filename, title, data (bytes), channel, thread_ts}
        self.files: dict[str, JSONDict] = {}
        # Socket Mode: connected clients, and the acks they sent back for our envelopes.
        self._sockets: list[web.WebSocketResponse] = []
        self.socket_acks: dict[str, JSONDict] = {}
        self._socket_connected = asyncio.Event()

    # ------------------------------------------------------------------ files

    def _files_get_upload_url(self, params: JSONDict) -> JSONDict:
        filename = _str(params, "filename")
        if not filename:
            raise _SlackError("invalid_arguments")
        file_id = self._next_id("F")
        self.files[file_id] = {
            "id": file_id,
            "filename": filename,
            "length": _int(params, "length", 0),
            "data": b"",
            "title": filename,
        }
        return {"upload_url": f"http://{self._host}:{self._port}/upload/{file_id}", "file_id": file_id}

    async def _handle_upload(self, request: web.Request) -> web.Response:
        file_id = request.match_info["file_id"]
        if file_id not in self.files:
            return web.Response(status=404, text="unknown upload")
        self.files[file_id]["data"] = await request.read()
        return web.Response(text=f"OK - {len(self.files[file_id]['data'])}")

    def _files_complete_upload(self, params: JSONDict) -> JSONDict:
        files = params.get("files")
        if isinstance(files, str):
            files = json.loads(files)
        if not isinstance(files, list) or not files:
            raise _SlackError("invalid_arguments")
        channel = _str(params, "channel_id") or _str(params, "channels")
        done = []
        for entry in files:
            stored = self.files.get(str(entry.get("id")))
            if stored is None or not stored["data"]:
                raise _SlackError("file_not_found")
            stored.update(
                title=entry.get("title") or stored["filename"],
                channel=channel,
                thread_ts=_str(params, "thread_ts"),
            )
            done.append({"id": stored["id"], "title": stored["title"], "name": stored["filename"]})
        if channel:
            self._store_message(
                channel,
                {
                    "text": _str(params, "initial_comment") or "",
                    "thread_ts": _str(params, "thread_ts"),
                    "files": done,
                },
                user=BOT_USER_ID,
                bot_id=BOT_ID,
            )
        return {"files": done}

    # ------------------------------------------------------------------ socket mode

    def _apps_connections_open(self, params: JSONDict) -> JSONDict:
        return {"url": f"ws://{self._host}:{self._port}/socket"}

    async def _handle_socket(self, request: web.Request) -> web.WebSocketResponse:
        socket = web.WebSocketResponse()
        await socket.prepare(request)
        self._sockets.append(socket)
        await socket.send_json(
            {"type": "hello", "num_connections": len(self._sockets), "connection_info": {"app_id": "A0001"}}
        )
        self._socket_connected.set()
        try:
            async for message in socket:
                if message.type is not aiohttp.WSMsgType.TEXT:
                    continue
                data = json.loads(message.data)
                if isinstance(data, dict) and data.get("envelope_id"):
                    self.socket_acks[str(data["envelope_id"])] = data
        finally:
            self._sockets.remove(socket)
        return socket

    async def socket_send(self, envelope_type: str, payload: JSONDict, *, timeout: float = 10.0) -> JSONDict:
        """Deliver one Socket Mode envelope to the connected app and return its ack."""
        await asyncio.wait_for(self._socket_connected.wait(), timeout)
        envelope_id = self._next_id("env")
        await self._sockets[-1].send_json(
            {
                "envelope_id": envelope_id,
                "type": envelope_type,
                "payload": payload,
                "accepts_response_payload": True,
            }
        )
        deadline = time.monotonic() + timeout
        while envelope_id not in self.socket_acks:
            if time.monotonic() > deadline:
                raise AssertionError(f"no ack for Socket Mode envelope {envelope_id}")
            await asyncio.sleep(0.02)
        return self.socket_acks[envelope_id]

    # ------------------------------------------------------------------ server

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        """Bind the server; port 0 lets parallel test runs never collide."""
        if self._runner is not None:
            raise RuntimeError("emulator already started")
        app = web.Application(client_max_size=32 * 1024 * 1024)
        app.router.add_route("*", "/api/{method}", self._handle_api)
        app.router.add_post("/response/{name}", self._handle_response_url)
        app.router.add_get("/socket", self._handle_socket)
        app.router.add_post("/upload/{file_id}", self._handle_upload)
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
        for socket in list(self._sockets):
            await socket.close()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
            self._port = None

    async def __aenter__(self) -> SlackEmulator:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def root_url(self) -> str:
        if self._port is None:
            raise RuntimeError("emulator not started")
        return f"http://{self._host}:{self._port}"

    @property
    def base_url(self) -> str:
        """Value for ``AsyncWebClient(base_url=...)``; the SDK appends the method name."""
        return f"{self.root_url}/api/"

    def response_url(self, name: str) -> str:
        """A response_url whose POSTs are recorded under ``responses[name]``."""
        return f"{self.root_url}/response/{name}"

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

    # --------------------------------------------------------- fault injection

    def fail_next(
        self,
        method: str,
        status: int = 429,
        retry_after: float | None = 1,
        times: int = 1,
        error: str | None = None,
        *,
        as_text: bool | None = None,
    ) -> None:
        """Make the next ``times`` calls to ``method`` fail with HTTP ``status``.

        429 answers JSON ``{"ok": false, "error": "ratelimited"}`` plus ``Retry-After``.
        Other statuses default to a plain-text body (like Slack's edge 5xx pages);
        pass ``as_text=False`` for a JSON body instead.
        """
        if error is None:
            error = "ratelimited" if status == 429 else "internal_error"
        if as_text is None:
            as_text = status >= 500
        fault = _Fault(status=status, retry_after=retry_after, error=error, as_text=as_text)
        self._faults.setdefault(method, deque()).extend(fault for _ in range(times))

    def delay(self, method: str, seconds: float) -> None:
        """Make every later call to ``method`` take ``seconds`` (0 to undo)."""
        if seconds > 0:
            self._delays[method] = seconds
        else:
            self._delays.pop(method, None)

    # ------------------------------------------------------------ state helpers

    def messages(self, channel: str) -> list[JSONDict]:
        """All messages in a channel (thread replies included), oldest first."""
        return list(self.channels.get(channel, []))

    def thread(self, channel: str, ts: str) -> list[JSONDict]:
        """Parent message plus its replies, oldest first."""
        return [m for m in self.channels.get(channel, []) if m["ts"] == ts or m.get("thread_ts") == ts]

    def add_channel(self, channel: str) -> None:
        """Make a channel exist (history on unknown channels is ``channel_not_found``)."""
        self.channels.setdefault(channel, [])

    def add_message(
        self,
        channel: str,
        text: str = "",
        *,
        user: str = "U_TEST",
        blocks: list[Any] | None = None,
        thread_ts: str | None = None,
        metadata: JSONDict | None = None,
    ) -> JSONDict:
        """Seed a message as if a human posted it (not recorded as a call)."""
        message = self._store_message(
            channel,
            {"text": text, "blocks": blocks, "thread_ts": thread_ts, "metadata": metadata},
            user=user,
            bot_id=None,
        )
        return message

    def reset(self) -> None:
        """Forget all calls, faults and state, keeping the server running."""
        self.reset_calls()
        for container in (
            self.channels,
            self.views,
            self.home_views,
            self.usergroups,
            self.users,
            self.responses,
            self._faults,
            self._delays,
        ):
            container.clear()
        self.ephemeral_messages.clear()

    def _next_ts(self) -> str:
        """Increasing, and never behind the clock, so `oldest`/`latest` filters behave."""
        now_micros = int(self._clock.now().timestamp() * 1_000_000) if self._clock_given else 0
        self._ts_micros = max(self._ts_micros + 100, now_micros)
        seconds, micros = divmod(self._ts_micros, 1_000_000)
        return f"{seconds}.{micros:06d}"

    def _next_id(self, prefix: str) -> str:
        self._id_counter += 1
        return f"{prefix}{self._id_counter:010d}"

    # --------------------------------------------------------- request plumbing

    async def _parse_params(self, request: web.Request) -> JSONDict:
        """Merge query string and body (JSON, urlencoded or multipart) into one dict."""
        params: JSONDict = {}
        for key in request.query:
            values = request.query.getall(key)
            params[key] = values[0] if len(values) == 1 else list(values)
        if request.body_exists:
            if request.content_type == "application/json":
                try:
                    body = await request.json()
                except json.JSONDecodeError:
                    raise _SlackError("invalid_json") from None
                if not isinstance(body, dict):
                    raise _SlackError("invalid_json")
                params.update(body)
            elif request.content_type in (
                "application/x-www-form-urlencoded",
                "multipart/form-data",
            ):
                form = await request.post()
                for key in form:
                    items = [self._form_value(v) for v in form.getall(key)]
                    params[key] = items[0] if len(items) == 1 else items
        for key in _JSON_FIELDS & params.keys():
            value = params[key]
            if isinstance(value, str) and value.strip()[:1] in ("{", "["):
                try:
                    params[key] = json.loads(value)
                except json.JSONDecodeError:
                    raise _SlackError("invalid_json") from None
        return params

    @staticmethod
    def _form_value(value: Any) -> Any:
        if isinstance(value, web.FileField):
            return {
                "filename": value.filename,
                "content_type": value.content_type,
                "content": value.file.read(),
            }
        return value

    @staticmethod
    def _is_authed(request: web.Request, params: JSONDict) -> bool:
        header = request.headers.get("Authorization", "")
        if header.startswith("Bearer ") and header[len("Bearer ") :].strip():
            return True
        # Slack also accepts the token as a body/query parameter.
        return bool(_str(params, "token"))

    async def _handle_api(self, request: web.Request) -> web.StreamResponse:
        method = request.match_info["method"]
        self.arrivals.append(method)
        seconds = self._delays.get(method)
        if seconds:
            await asyncio.sleep(seconds)
        try:
            params = await self._parse_params(request)
        except _SlackError as exc:
            self.failed_calls.append(Call(method, {}, time.monotonic()))
            return web.json_response({"ok": False, "error": exc.code})
        authed = self._is_authed(request, params)
        params.pop("token", None)
        call = Call(method=method, params=params, at=time.monotonic())

        faults = self._faults.get(method)
        if faults:
            self.failed_calls.append(call)
            return self._fault_response(faults.popleft())
        if not authed:
            self.failed_calls.append(call)
            return web.json_response({"ok": False, "error": "not_authed"})

        self.calls.append(call)
        handler = self._handlers.get(method)
        if handler is None:
            return web.json_response({"ok": False, "error": "unknown_method"})
        try:
            result = handler(params)
        except _SlackError as exc:
            return web.json_response({"ok": False, "error": exc.code})
        return web.json_response({"ok": True, **result})

    @staticmethod
    def _fault_response(fault: _Fault) -> web.Response:
        headers: dict[str, str] = {}
        if fault.retry_after is not None and fault.status in (429, 503):
            retry = fault.retry_after
            headers["Retry-After"] = str(int(retry) if float(retry).is_integer() else retry)
        if fault.as_text:
            return web.Response(status=fault.status, text=fault.error, headers=headers)
        return web.json_response({"ok": False, "error": fault.error}, status=fault.status, headers=headers)

    async def _handle_response_url(self, request: web.Request) -> web.Response:
        """Record response_url posts; also as a ``response/<name>`` call so wait_for works."""
        name = request.match_info["name"]
        try:
            params = await self._parse_params(request)
        except _SlackError:
            return web.Response(status=400, text="invalid_payload")
        body: Any = params.get("payload", params)
        self.responses.setdefault(name, []).append(body)
        recorded = body if isinstance(body, dict) else {"payload": body}
        self.calls.append(Call(f"response/{name}", recorded, time.monotonic()))
        return web.Response(text="ok")

    # ------------------------------------------------------------------- auth

    def _auth_test(self, params: JSONDict) -> JSONDict:
        return {
            "url": WORKSPACE_URL,
            "team": TEAM_NAME,
            "user": "changebot",
            "team_id": TEAM_ID,
            "user_id": BOT_USER_ID,
            "bot_id": BOT_ID,
            "is_enterprise_install": False,
        }

    # ------------------------------------------------------------------- chat

    def _store_message(self, channel: str, params: JSONDict, *, user: str, bot_id: str | None) -> JSONDict:
        ts = self._next_ts()
        thread_ts = _str(params, "thread_ts")
        message: JSONDict = {
            "type": "message",
            "channel": channel,
            "ts": ts,
            "text": params.get("text") or "",
            "blocks": params.get("blocks"),
            "attachments": params.get("attachments"),
            "user": user,
            "bot_id": bot_id,
            "thread_ts": thread_ts,
            "reply_broadcast": True if _bool(params, "reply_broadcast") else None,
            "metadata": params.get("metadata"),
        }
        history = self.channels.setdefault(channel, [])
        if thread_ts is not None:
            for parent in history:
                if parent["ts"] == thread_ts:
                    parent["thread_ts"] = thread_ts
                    parent["reply_count"] = parent.get("reply_count", 0) + 1
                    parent["latest_reply"] = ts
                    break
        history.append(message)
        return message

    def _find_message(self, channel: str | None, ts: str | None) -> JSONDict:
        if channel is None or ts is None:
            raise _SlackError("message_not_found")
        for message in self.channels.get(channel, []):
            if message["ts"] == ts:
                return message
        raise _SlackError("message_not_found")

    @staticmethod
    def _require_content(params: JSONDict) -> None:
        if not (params.get("text") or params.get("blocks") or params.get("attachments")):
            raise _SlackError("no_text")

    def _chat_post_message(self, params: JSONDict) -> JSONDict:
        channel = _str(params, "channel")
        if channel is None:
            raise _SlackError("channel_not_found")
        if _USER_ID_RE.match(channel):
            channel = _dm_channel(channel)
        if channel in self.not_member_of:
            raise _SlackError("not_in_channel")
        self._require_content(params)
        message = self._store_message(channel, params, user=BOT_USER_ID, bot_id=BOT_ID)
        return {"channel": channel, "ts": message["ts"], "message": _public(message)}

    def _chat_update(self, params: JSONDict) -> JSONDict:
        channel = _str(params, "channel")
        message = self._find_message(channel, _str(params, "ts"))
        for key in ("text", "blocks", "attachments", "metadata"):
            if key in params:
                message[key] = params[key]
        message["edited"] = {"user": BOT_USER_ID, "ts": self._next_ts()}
        return {
            "channel": channel,
            "ts": message["ts"],
            "text": message["text"],
            "message": _public(message),
        }

    def _chat_post_ephemeral(self, params: JSONDict) -> JSONDict:
        channel = _str(params, "channel")
        user = _str(params, "user")
        if channel is None:
            raise _SlackError("channel_not_found")
        if user is None:
            raise _SlackError("user_not_found")
        self._require_content(params)
        ts = self._next_ts()
        self.ephemeral_messages.append(
            {
                "channel": channel,
                "user": user,
                "ts": ts,
                "text": params.get("text") or "",
                "blocks": params.get("blocks"),
                "thread_ts": _str(params, "thread_ts"),
            }
        )
        return {"message_ts": ts}

    def _chat_delete(self, params: JSONDict) -> JSONDict:
        channel = _str(params, "channel")
        message = self._find_message(channel, _str(params, "ts"))
        assert channel is not None
        self.channels[channel].remove(message)
        return {"channel": channel, "ts": message["ts"]}

    def _chat_get_permalink(self, params: JSONDict) -> JSONDict:
        channel = _str(params, "channel")
        message = self._find_message(channel, _str(params, "message_ts"))
        assert channel is not None
        link = f"{WORKSPACE_URL}archives/{channel}/p{message['ts'].replace('.', '')}"
        parent = message.get("thread_ts")
        if parent and parent != message["ts"]:
            link += f"?thread_ts={parent}&cid={channel}"
        return {"channel": channel, "permalink": link}

    # ---------------------------------------------------------- conversations

    def _conversations_join(self, params: JSONDict) -> JSONDict:
        channel = _str(params, "channel")
        if not channel:
            raise _SlackError("channel_not_found")
        self.not_member_of.discard(channel)
        self.add_channel(channel)
        return {"channel": {"id": channel, "is_member": True}}

    def _conversations_open(self, params: JSONDict) -> JSONDict:
        users = params.get("users")
        if isinstance(users, str):
            users = [u.strip() for u in users.split(",") if u.strip()]
        if users:
            ids = sorted(str(u) for u in users)
            channel = _dm_channel(ids[0]) if len(ids) == 1 else "G_" + "_".join(ids)
        else:
            existing = _str(params, "channel")
            if existing is None:
                raise _SlackError("users_list_not_supplied")
            channel = existing
        already_open = channel in self.channels
        self.add_channel(channel)
        result: JSONDict = {"channel": {"id": channel}}
        if _bool(params, "return_im"):
            result["already_open"] = already_open
        return result

    def _window(self, params: JSONDict, messages: list[JSONDict]) -> list[JSONDict]:
        """Apply oldest/latest/inclusive the way Slack does (exclusive by default)."""
        oldest = _ts_key(params.get("oldest") or "0")
        latest_raw = params.get("latest")
        latest = _ts_key(latest_raw) if latest_raw else None
        inclusive = _bool(params, "inclusive")

        def inside(message: JSONDict) -> bool:
            ts = _ts_key(message["ts"])
            if ts < oldest or (ts == oldest and not inclusive):
                return False
            return latest is None or ts < latest or (ts == latest and inclusive)

        return [m for m in messages if inside(m)]

    @staticmethod
    def _page(params: JSONDict, messages: list[JSONDict], default_limit: int) -> JSONDict:
        """Offset-based cursor paging; the cursor is opaque to callers anyway."""
        limit = _int(params, "limit", default_limit) or default_limit
        start = _int(params, "cursor", 0)
        page = messages[start : start + limit]
        has_more = start + limit < len(messages)
        include_metadata = _bool(params, "include_all_metadata")
        return {
            "messages": [_public(m, include_metadata=include_metadata) for m in page],
            "has_more": has_more,
            "response_metadata": {"next_cursor": str(start + limit) if has_more else ""},
        }

    def _conversations_history(self, params: JSONDict) -> JSONDict:
        channel = _str(params, "channel")
        if channel is None or channel not in self.channels:
            raise _SlackError("channel_not_found")
        top_level = [
            m
            for m in self.channels[channel]
            if m.get("thread_ts") in (None, m["ts"]) or m.get("reply_broadcast")
        ]
        newest_first = sorted(self._window(params, top_level), key=lambda m: _ts_key(m["ts"]))
        newest_first.reverse()
        return {"pin_count": 0, **self._page(params, newest_first, 100)}

    def _conversations_replies(self, params: JSONDict) -> JSONDict:
        channel = _str(params, "channel")
        ts = _str(params, "ts")
        if channel is None or channel not in self.channels:
            raise _SlackError("channel_not_found")
        if ts is None:
            raise _SlackError("thread_not_found")
        thread = self.thread(channel, ts)
        if not thread:
            raise _SlackError("thread_not_found")
        parent, replies = thread[0], self._window(params, thread[1:])
        return self._page(params, [parent, *replies], 1000)

    # ------------------------------------------------------------------ views

    def _check_trigger(self, params: JSONDict) -> None:
        trigger_id = _str(params, "trigger_id")
        if trigger_id is None:
            raise _SlackError("invalid_arguments")
        if "expired" in trigger_id:
            raise _SlackError("expired_trigger_id")

    @staticmethod
    def _view_payload(params: JSONDict) -> JSONDict:
        view = params.get("view")
        if not isinstance(view, dict):
            raise _SlackError("invalid_arguments")
        return view

    def _new_hash(self) -> str:
        self._id_counter += 1
        return f"{self._ts_micros // 1_000_000}.{self._id_counter:08x}"

    def _build_view(
        self, payload: JSONDict, *, view_id: str, root_view_id: str, previous: str | None
    ) -> JSONDict:
        view: JSONDict = {
            "private_metadata": "",
            "callback_id": "",
            "external_id": "",
            "clear_on_close": False,
            "notify_on_close": False,
            **payload,
            "id": view_id,
            "team_id": TEAM_ID,
            "state": {"values": {}},
            "hash": self._new_hash(),
            "root_view_id": root_view_id,
            "previous_view_id": previous,
            "app_id": APP_ID,
            "app_installed_team_id": TEAM_ID,
            "bot_id": BOT_ID,
        }
        self.views[view_id] = view
        return view

    def _views_open(self, params: JSONDict) -> JSONDict:
        self._check_trigger(params)
        payload = self._view_payload(params)
        view_id = self._next_id("V")
        view = self._build_view(payload, view_id=view_id, root_view_id=view_id, previous=None)
        return {"view": view}

    def _views_push(self, params: JSONDict) -> JSONDict:
        return self._views_open(params)

    def _views_update(self, params: JSONDict) -> JSONDict:
        payload = self._view_payload(params)
        view_id = _str(params, "view_id")
        external_id = _str(params, "external_id")
        if view_id is None and external_id is None:
            raise _SlackError("invalid_arguments")
        current: JSONDict | None = None
        if view_id is not None:
            current = self.views.get(view_id)
        else:
            current = next((v for v in self.views.values() if v.get("external_id") == external_id), None)
        if current is None:
            raise _SlackError("not_found")
        expected = _str(params, "hash")
        if expected is not None and expected != current["hash"]:
            raise _SlackError("hash_conflict")
        view = self._build_view(
            payload,
            view_id=current["id"],
            root_view_id=current["root_view_id"],
            previous=current["previous_view_id"],
        )
        view["state"] = current.get("state", {"values": {}})
        for user_id, home in self.home_views.items():
            if home["id"] == view["id"]:
                self.home_views[user_id] = view
        return {"view": view}

    def _views_publish(self, params: JSONDict) -> JSONDict:
        user_id = _str(params, "user_id")
        if user_id is None:
            raise _SlackError("invalid_arguments")
        payload = self._view_payload(params)
        current = self.home_views.get(user_id)
        expected = _str(params, "hash")
        if current is not None and expected is not None and expected != current["hash"]:
            raise _SlackError("hash_conflict")
        view_id = current["id"] if current is not None else self._next_id("V")
        view = self._build_view(payload, view_id=view_id, root_view_id=view_id, previous=None)
        self.home_views[user_id] = view
        return {"view": view}

    # ------------------------------------------------------------ users/groups

    def _usergroups_users_list(self, params: JSONDict) -> JSONDict:
        group = _str(params, "usergroup")
        if group is None or group not in self.usergroups:
            raise _SlackError("no_such_subteam")
        return {"users": list(self.usergroups[group])}

    def _user_object(self, user_id: str, data: Mapping[str, Any]) -> JSONDict:
        tz = str(data.get("tz") or "UTC")
        tz_offset = data.get("tz_offset")
        if tz_offset is None:
            try:
                offset = self._clock.now().astimezone(ZoneInfo(tz)).utcoffset()
            except (ZoneInfoNotFoundError, ValueError):
                offset = None
            tz_offset = int(offset.total_seconds()) if offset is not None else 0
        name = str(data.get("name") or user_id.lower())
        profile: JSONDict = dict(data.get("profile") or {})
        if data.get("email"):
            profile["email"] = data["email"]
        real_name = str(data.get("real_name") or profile.get("real_name") or name)
        profile.setdefault("real_name", real_name)
        profile.setdefault("display_name", name)
        return {
            "id": user_id,
            "team_id": TEAM_ID,
            "name": name,
            "real_name": real_name,
            "deleted": bool(data.get("deleted", False)),
            "is_bot": bool(data.get("is_bot", False)),
            "tz": tz,
            "tz_label": tz,
            "tz_offset": tz_offset,
            "profile": profile,
        }

    def _users_info(self, params: JSONDict) -> JSONDict:
        user_id = _str(params, "user")
        if user_id is None:
            raise _SlackError("user_not_found")
        data = self.users.get(user_id)
        if data is None:
            if not (self.auto_users and _USER_ID_RE.match(user_id)):
                raise _SlackError("user_not_found")
            data = {"email": f"{user_id.lower()}@example.com"}
        return {"user": self._user_object(user_id, data)}

    def _users_lookup_by_email(self, params: JSONDict) -> JSONDict:
        email = (_str(params, "email") or "").lower()
        for user_id, data in self.users.items():
            user = self._user_object(user_id, data)
            if email and str(user["profile"].get("email", "")).lower() == email:
                return {"user": user}
        raise _SlackError("users_not_found")
