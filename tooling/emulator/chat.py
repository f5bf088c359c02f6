"""The ``chat.*`` methods: post, update, delete and link messages, and ephemeral posts."""

from __future__ import annotations

from tooling.emulator.wire import (
    BOT_ID,
    BOT_USER_ID,
    USER_ID_RE,
    WORKSPACE_URL,
    Handler,
    JSONDict,
    SlackError,
    dm_channel,
    public,
    str_param,
)
from tooling.emulator.workspace import Workspace


def _require_content(params: JSONDict) -> None:
    if not (params.get("text") or params.get("blocks") or params.get("attachments")):
        raise SlackError("no_text")


class ChatMethods:
    """Answers ``chat.*`` from the workspace's channels."""

    def __init__(self, workspace: Workspace) -> None:
        self._ws = workspace

    def handlers(self) -> dict[str, Handler]:
        return {
            "chat.postMessage": self.post_message,
            "chat.update": self.update,
            "chat.postEphemeral": self.post_ephemeral,
            "chat.delete": self.delete,
            "chat.getPermalink": self.get_permalink,
        }

    def post_message(self, params: JSONDict) -> JSONDict:
        channel = str_param(params, "channel")
        if channel is None:
            raise SlackError("channel_not_found")
        if USER_ID_RE.match(channel):
            channel = dm_channel(channel)
        if channel in self._ws.not_member_of:
            raise SlackError("not_in_channel")
        _require_content(params)
        message = self._ws.store_message(channel, params, user=BOT_USER_ID, bot_id=BOT_ID)
        return {"channel": channel, "ts": message["ts"], "message": public(message)}

    def update(self, params: JSONDict) -> JSONDict:
        channel = str_param(params, "channel")
        message = self._ws.find_message(channel, str_param(params, "ts"))
        for key in ("text", "blocks", "attachments", "metadata"):
            if key in params:
                message[key] = params[key]
        message["edited"] = {"user": BOT_USER_ID, "ts": self._ws.next_ts()}
        return {
            "channel": channel,
            "ts": message["ts"],
            "text": message["text"],
            "message": public(message),
        }

    def post_ephemeral(self, params: JSONDict) -> JSONDict:
        channel = str_param(params, "channel")
        user = str_param(params, "user")
        if channel is None:
            raise SlackError("channel_not_found")
        if user is None:
            raise SlackError("user_not_found")
        _require_content(params)
        ts = self._ws.next_ts()
        self._ws.ephemeral_messages.append(
            {
                "channel": channel,
                "user": user,
                "ts": ts,
                "text": params.get("text") or "",
                "blocks": params.get("blocks"),
                "thread_ts": str_param(params, "thread_ts"),
            }
        )
        return {"message_ts": ts}

    def delete(self, params: JSONDict) -> JSONDict:
        channel = str_param(params, "channel")
        message = self._ws.find_message(channel, str_param(params, "ts"))
        assert channel is not None
        self._ws.channels[channel].remove(message)
        return {"channel": channel, "ts": message["ts"]}

    def get_permalink(self, params: JSONDict) -> JSONDict:
        channel = str_param(params, "channel")
        message = self._ws.find_message(channel, str_param(params, "message_ts"))
        assert channel is not None
        link = f"{WORKSPACE_URL}archives/{channel}/p{message['ts'].replace('.', '')}"
        parent = message.get("thread_ts")
        if parent and parent != message["ts"]:
            link += f"?thread_ts={parent}&cid={channel}"
        return {"channel": channel, "permalink": link}
