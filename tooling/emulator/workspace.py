"""The emulated workspace's state: channels and their messages, views, users, files, and
the ``ts``/id counters, so the method handlers share one truth that tests can inspect."""

from __future__ import annotations

from typing import Any

from domain.clock import Clock, SystemClock
from tooling.emulator.wire import JSONDict, SlackError, bool_param, str_param


class Workspace:
    """In-memory Slack state (plain dicts/lists, mutate freely in tests):

    * ``channels``: channel id -> list of stored messages (oldest first);
    * ``ephemeral_messages``: every ``chat.postEphemeral`` payload stored;
    * ``views``: view id -> view (including ``hash``); ``home_views``: user id -> view;
    * ``usergroups``: usergroup id -> user ids; ``users``: user id -> profile dict
      (keys ``name``, ``tz``, ``tz_offset``, ``email``/``profile``, ``real_name``);
    * ``responses``: response_url name -> list of POSTed JSON bodies;
    * ``files``: uploaded files, id -> {filename, title, data (bytes), channel, thread_ts}.
    """

    def __init__(self, *, auto_users: bool, ts_start: int, clock: Clock | None) -> None:
        self.clock: Clock = clock or SystemClock()
        self._clock_given = clock is not None
        # auto_users: unknown but well-formed user ids get a synthesised profile so
        # flows touching arbitrary test users need no seeding; set False to test
        # the bot's ``user_not_found`` handling.
        self.auto_users = auto_users
        self.channels: dict[str, list[JSONDict]] = {}
        self.ephemeral_messages: list[JSONDict] = []
        self.views: dict[str, JSONDict] = {}
        self.home_views: dict[str, JSONDict] = {}
        self.usergroups: dict[str, list[str]] = {}
        self.users: dict[str, JSONDict] = {}
        self.responses: dict[str, list[Any]] = {}
        self.files: dict[str, JSONDict] = {}
        # Channels the bot has not joined: posting there answers not_in_channel until
        # conversations.join is called, as in Slack without chat:write.public.
        self.not_member_of: set[str] = set()
        self._ts_micros = ts_start * 1_000_000
        self._id_counter = 0

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
        message = self.store_message(
            channel,
            {"text": text, "blocks": blocks, "thread_ts": thread_ts, "metadata": metadata},
            user=user,
            bot_id=None,
        )
        return message

    def clear_state(self) -> None:
        """Forget channels, views, users and responses (files and memberships stay)."""
        for container in (
            self.channels,
            self.views,
            self.home_views,
            self.usergroups,
            self.users,
            self.responses,
        ):
            container.clear()
        self.ephemeral_messages.clear()

    # ------------------------------------------------------------ messages

    def store_message(self, channel: str, params: JSONDict, *, user: str, bot_id: str | None) -> JSONDict:
        """Append a message, and count it on its thread's parent like Slack does."""
        ts = self.next_ts()
        thread_ts = str_param(params, "thread_ts")
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
            "reply_broadcast": True if bool_param(params, "reply_broadcast") else None,
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

    def find_message(self, channel: str | None, ts: str | None) -> JSONDict:
        """The stored message, or Slack's ``message_not_found``."""
        if channel is None or ts is None:
            raise SlackError("message_not_found")
        for message in self.channels.get(channel, []):
            if message["ts"] == ts:
                return message
        raise SlackError("message_not_found")

    # ------------------------------------------------------------ identifiers

    def next_ts(self) -> str:
        """Increasing, and never behind the clock, so `oldest`/`latest` filters behave."""
        now_micros = int(self.clock.now().timestamp() * 1_000_000) if self._clock_given else 0
        self._ts_micros = max(self._ts_micros + 100, now_micros)
        seconds, micros = divmod(self._ts_micros, 1_000_000)
        return f"{seconds}.{micros:06d}"

    def next_id(self, prefix: str) -> str:
        """A fresh id such as ``V0000000001``; one counter for every kind."""
        self._id_counter += 1
        return f"{prefix}{self._id_counter:010d}"

    def new_hash(self) -> str:
        """A fresh view hash, so a stale ``views.update`` can be refused."""
        self._id_counter += 1
        return f"{self._ts_micros // 1_000_000}.{self._id_counter:08x}"
