"""Prints what the Slack emulator receives, as the people in the workspace would see it.

The emulator records every Web API call the bot makes; the feed walks that record and
shows each new message, edit, ephemeral and modal once, in order, as readable text. An
edit shows only the lines that changed, and identical copies (the same card in the
channel and in two DMs) are shown once with every place they went to.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, TextIO

from domain.clock import Clock
from tooling.emulator import Call, SlackEmulator
from tooling.render import Names, message_to_text, view_to_text
from tooling.slack_payloads import user_of_trigger

INDENT = " " * 11
_TITLE_LIMIT = 60


@dataclass
class _Entry:
    kind: str
    places: list[str]
    body: str
    note: str = ""

    def same_as(self, other: _Entry) -> bool:
        return (self.kind, self.body, self.note) == (other.kind, other.body, other.note)


@dataclass
class SlackFeed:
    emulator: SlackEmulator
    names: Names
    clock: Clock
    out: TextIO
    _seen: int = 0
    _shown: dict[tuple[str, str], str] = field(default_factory=dict)
    _titles: dict[tuple[str, str], str] = field(default_factory=dict)

    # --- narration ----------------------------------------------------------------
    def _stamp(self) -> str:
        return self.clock.now().astimezone(self.names.zone).strftime("%a %H:%M")

    def _print(self, text: str = "") -> None:
        print(text, file=self.out, flush=True)

    def banner(self, title: str) -> None:
        self._print()
        self._print(f"━━ {title}")

    def say(self, text: str) -> None:
        """What a person does, as opposed to what Slack shows."""
        self._print(f"{self._stamp()}  » {text}")

    def show(self, place: str, body: str) -> None:
        self._print(f"{self._stamp()}  {place}")
        for line in body.splitlines() or [""]:
            self._print(f"{INDENT}{line}".rstrip())

    # --- the emulator's record -------------------------------------------------------
    def flush(self) -> int:
        """Show every call made since the last flush; returns how many entries printed."""
        calls = self.emulator.calls[self._seen :]
        self._seen += len(calls)
        entries: list[_Entry] = []
        for call in calls:
            entry = self._entry(call)
            if entry is None:
                continue
            twin = next((e for e in entries if e.same_as(entry)), None)
            if twin is not None:
                twin.places += [p for p in entry.places if p not in twin.places]
            else:
                entries.append(_compared(entry, entries))
        for entry in entries:
            prefix = "✎ edited in " if entry.kind == "edit" else ""
            note = f"  ({entry.note})" if entry.note else ""
            self.show(prefix + ", ".join(entry.places) + note, entry.body)
        return len(entries)

    def place(self, channel: str) -> str:
        """`#changes`, or `@bob's DM` for a DM (the emulator's DM ids are `D_<user>`)."""
        if channel.startswith("D_"):
            return f"{self.names.user(channel[2:])}'s DM"
        if channel[:1] in ("U", "W"):
            return f"{self.names.user(channel)}'s DM"
        return self.names.channel(channel)

    def _entry(self, call: Call) -> _Entry | None:
        entry = self._render(call)
        if entry is not None and entry.kind == "edit" and not entry.body:
            return None  # re-sent as it was: nobody sees anything
        return entry

    def _render(self, call: Call) -> _Entry | None:
        params = call.params
        method = call.method
        if method == "chat.postMessage":
            return self._posted(params)
        if method == "chat.update":
            return self._edited(params)
        if method == "chat.postEphemeral":
            body = message_to_text(params.get("text"), params.get("blocks"), self.names)
            place = self.place(str(params.get("channel")))
            return _Entry(
                "ephemeral", [f"{place}, only {self.names.user(str(params.get('user')))} sees this"], body
            )
        if method in ("views.open", "views.push", "views.update"):
            view = params.get("view")
            if not isinstance(view, Mapping):
                return None
            user = user_of_trigger(str(params.get("trigger_id") or ""))
            screen = f"{self.names.user(user)}'s screen" if user else "a screen"
            verb = "modal updated on" if method == "views.update" else "modal opens on"
            return _Entry("view", [f"{verb} {screen}"], view_to_text(view, self.names))
        if method == "views.publish":
            view = params.get("view")
            user = str(params.get("user_id"))
            if not isinstance(view, Mapping):
                return None
            return _Entry("view", [f"{self.names.user(user)}'s App Home"], view_to_text(view, self.names))
        if method.startswith("response/"):
            body = message_to_text(params.get("text"), params.get("blocks"), self.names)
            return _Entry("reply", ["reply via response_url"], body)
        return None

    def _stored(self, params: Mapping[str, Any]) -> tuple[str, str] | None:
        """(channel, ts) of the message a postMessage call created. The bot puts its outbox
        id in every message's metadata, which makes the match exact."""
        metadata = params.get("metadata")
        if not metadata:
            return None
        for channel, messages in self.emulator.channels.items():
            for message in reversed(messages):
                if message.get("metadata") == metadata:
                    return channel, str(message["ts"])
        return None

    def _posted(self, params: Mapping[str, Any]) -> _Entry:
        body = message_to_text(params.get("text"), params.get("blocks"), self.names)
        channel = str(params.get("channel"))
        stored = self._stored(params)
        if stored is not None:
            self._shown[stored] = body
            first = body.splitlines()[0] if body else ""
            title = first.removeprefix("== ").removesuffix(" ==")
            self._titles[stored] = title if len(title) <= _TITLE_LIMIT else title[: _TITLE_LIMIT - 1] + "…"
            channel = stored[0]
        place = self.place(channel)
        thread = params.get("thread_ts")
        if thread:
            title = self._titles.get((channel, str(thread)), "a message")
            place += f" › thread of “{title}”"
        return _Entry("message", [place], body)

    def _edited(self, params: Mapping[str, Any]) -> _Entry:
        key = (str(params.get("channel")), str(params.get("ts")))
        body = message_to_text(params.get("text"), params.get("blocks"), self.names)
        before = self._shown.get(key)
        self._shown[key] = body
        title = self._titles.get(key, "a message")
        if before is None:
            return _Entry("edit", [self.place(key[0])], body, note=title)
        changed = [
            line for line in difflib.ndiff(before.splitlines(), body.splitlines()) if line[:2] in ("- ", "+ ")
        ]
        return _Entry("edit", [self.place(key[0])], "\n".join(changed), note=title)


def _compared(entry: _Entry, earlier: list[_Entry]) -> _Entry:
    """A copy of a card edited like one shown just before, minus a line or two (a DM copy
    has no implementation buttons), is told in one line instead of repeated."""
    if entry.kind != "edit":
        return entry
    lines = entry.body.splitlines()
    for other in earlier:
        if other.kind != "edit" or other.note != entry.note:
            continue
        others = other.body.splitlines()
        if set(lines) <= set(others):
            missing = [line for line in others if line not in lines]
            return _Entry(
                "edit",
                entry.places,
                "the same edit, but without: " + " / ".join(f"“{line}”" for line in missing),
                note=entry.note,
            )
    return entry
