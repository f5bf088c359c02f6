"""The ``conversations.*`` methods: open DMs, join channels, read history and threads with
Slack's ``oldest``/``latest``/``inclusive`` windows and cursor paging."""

from __future__ import annotations

from tooling.emulator.wire import (
    Handler,
    JSONDict,
    SlackError,
    bool_param,
    dm_channel,
    int_param,
    public,
    str_param,
    ts_key,
)
from tooling.emulator.workspace import Workspace


def _window(params: JSONDict, messages: list[JSONDict]) -> list[JSONDict]:
    """Apply oldest/latest/inclusive the way Slack does (exclusive by default)."""
    oldest = ts_key(params.get("oldest") or "0")
    latest_raw = params.get("latest")
    latest = ts_key(latest_raw) if latest_raw else None
    inclusive = bool_param(params, "inclusive")

    def inside(message: JSONDict) -> bool:
        ts = ts_key(message["ts"])
        if ts < oldest or (ts == oldest and not inclusive):
            return False
        return latest is None or ts < latest or (ts == latest and inclusive)

    return [m for m in messages if inside(m)]


def _page(params: JSONDict, messages: list[JSONDict], default_limit: int) -> JSONDict:
    """Offset-based cursor paging; the cursor is opaque to callers anyway."""
    limit = int_param(params, "limit", default_limit) or default_limit
    start = int_param(params, "cursor", 0)
    page = messages[start : start + limit]
    has_more = start + limit < len(messages)
    include_metadata = bool_param(params, "include_all_metadata")
    return {
        "messages": [public(m, include_metadata=include_metadata) for m in page],
        "has_more": has_more,
        "response_metadata": {"next_cursor": str(start + limit) if has_more else ""},
    }


class ConversationMethods:
    """Answers ``conversations.*`` from the workspace's channels."""

    def __init__(self, workspace: Workspace) -> None:
        self._ws = workspace

    def handlers(self) -> dict[str, Handler]:
        return {
            "conversations.open": self.open,
            "conversations.join": self.join,
            "conversations.history": self.history,
            "conversations.replies": self.replies,
        }

    def join(self, params: JSONDict) -> JSONDict:
        channel = str_param(params, "channel")
        if not channel:
            raise SlackError("channel_not_found")
        self._ws.not_member_of.discard(channel)
        self._ws.add_channel(channel)
        return {"channel": {"id": channel, "is_member": True}}

    def open(self, params: JSONDict) -> JSONDict:
        users = params.get("users")
        if isinstance(users, str):
            users = [u.strip() for u in users.split(",") if u.strip()]
        if users:
            ids = sorted(str(u) for u in users)
            channel = dm_channel(ids[0]) if len(ids) == 1 else "G_" + "_".join(ids)
        else:
            existing = str_param(params, "channel")
            if existing is None:
                raise SlackError("users_list_not_supplied")
            channel = existing
        already_open = channel in self._ws.channels
        self._ws.add_channel(channel)
        result: JSONDict = {"channel": {"id": channel}}
        if bool_param(params, "return_im"):
            result["already_open"] = already_open
        return result

    def history(self, params: JSONDict) -> JSONDict:
        channel = str_param(params, "channel")
        if channel is None or channel not in self._ws.channels:
            raise SlackError("channel_not_found")
        top_level = [
            m
            for m in self._ws.channels[channel]
            if m.get("thread_ts") in (None, m["ts"]) or m.get("reply_broadcast")
        ]
        newest_first = sorted(_window(params, top_level), key=lambda m: ts_key(m["ts"]))
        newest_first.reverse()
        return {"pin_count": 0, **_page(params, newest_first, 100)}

    def replies(self, params: JSONDict) -> JSONDict:
        channel = str_param(params, "channel")
        ts = str_param(params, "ts")
        if channel is None or channel not in self._ws.channels:
            raise SlackError("channel_not_found")
        if ts is None:
            raise SlackError("thread_not_found")
        thread = self._ws.thread(channel, ts)
        if not thread:
            raise SlackError("thread_not_found")
        parent, replies = thread[0], _window(params, thread[1:])
        return _page(params, [parent, *replies], 1000)
