"""Block Kit and mrkdwn as plain terminal text.

The demo and `changebot slack send` show what each person would see in Slack without
a Slack client; so this renders what Slack renders (mentions as @name, dates as their
fallback, escaped user text as the literal characters) and never pings anyone.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

__all__ = ["Names", "blocks_to_text", "message_to_text", "mrkdwn_to_text", "text_object", "view_to_text"]

_TOKEN = re.compile(r"<([^<>]*)>")
_LABELLED_BOLD = re.compile(r"^\*([^*\n]+)\*$")
DIVIDER = "─" * 24


@dataclass(frozen=True)
class Names:
    """Display names for ids, as the Slack client would resolve them; unknown ids show as is."""

    users: Mapping[str, str] = field(default_factory=dict)
    channels: Mapping[str, str] = field(default_factory=dict)
    groups: Mapping[str, str] = field(default_factory=dict)
    zone: ZoneInfo = field(default_factory=lambda: ZoneInfo("UTC"))

    def user(self, user_id: str) -> str:
        return "@" + self.users.get(user_id, user_id)

    def channel(self, channel_id: str) -> str:
        return "#" + self.channels.get(channel_id, channel_id)

    def group(self, group_id: str) -> str:
        return "@" + self.groups.get(group_id, group_id)


NO_NAMES = Names()


def _decode(text: str) -> str:
    """Slack's three escapes; `&amp;` last so `&amp;lt;` stays the literal `&lt;`."""
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def _special(body: str, label: str | None, names: Names) -> str:
    """`<!…>` tokens: broadcasts, user groups and dates."""
    head, _, rest = body.partition("^")
    if head == "date":
        if label is not None:
            return label
        stamp = rest.split("^", 1)[0]
        try:
            moment = datetime.fromtimestamp(int(stamp), UTC).astimezone(names.zone)
        except (ValueError, OverflowError):
            return stamp
        return moment.strftime("%a %d %b %Y %H:%M %Z")
    if head == "subteam":
        return label or names.group(rest)
    if head in ("here", "channel", "everyone"):
        return "@" + head
    return label or head


def _token(match: re.Match[str], names: Names) -> str:
    body, bar, label_raw = match.group(1).partition("|")
    label = _decode(label_raw) if bar else None
    if body.startswith("@"):
        return "@" + label.lstrip("@") if label else names.user(body[1:])
    if body.startswith("#"):
        return "#" + label.lstrip("#") if label else names.channel(body[1:])
    if body.startswith("!"):
        return _special(body[1:], label, names)
    url = _decode(body)
    if label and label != url:
        return f"{label} ({url})"
    return url


def mrkdwn_to_text(text: str, names: Names = NO_NAMES) -> str:
    """Resolve `<…>` tokens, decode the escapes around them: `&lt;!channel&gt;` prints `<!channel>`."""
    out: list[str] = []
    position = 0
    for match in _TOKEN.finditer(text):
        out += [_decode(text[position : match.start()]), _token(match, names)]
        position = match.end()
    out.append(_decode(text[position:]))
    return "".join(out)


def text_object(obj: Any, names: Names = NO_NAMES) -> str:
    """A composition text object (or a bare string, as some builders pass)."""
    if obj is None:
        return ""
    if isinstance(obj, str):
        return obj
    if not isinstance(obj, Mapping):
        return str(obj)
    text = str(obj.get("text") or "")
    return mrkdwn_to_text(text, names) if obj.get("type") == "mrkdwn" else text


def _field(obj: Any, names: Names) -> str:
    """`*Label*\\nvalue` (the card's field convention) reads best as `Label: value`."""
    text = text_object(obj, names)
    first, newline, rest = text.partition("\n")
    bold = _LABELLED_BOLD.match(first)
    if bold and newline:
        return f"{bold.group(1)}: {' '.join(line.strip() for line in rest.splitlines())}"
    return " ".join(line.strip() for line in text.splitlines())


def _moment(epoch: Any, names: Names) -> str:
    try:
        return datetime.fromtimestamp(int(epoch), UTC).astimezone(names.zone).strftime("%a %d %b %Y %H:%M")
    except (TypeError, ValueError, OverflowError):
        return str(epoch)


def _element(element: Mapping[str, Any], names: Names) -> str:
    """An interactive element the way it looks: a button is `[ Approve ]`."""
    kind = element.get("type")
    if kind == "button":
        return f"[ {text_object(element.get('text'), names)} ]"
    if kind in (
        "static_select",
        "external_select",
        "users_select",
        "conversations_select",
        "channels_select",
    ):
        chosen = element.get("initial_option") or {}
        shown = text_object(chosen.get("text"), names) if chosen else ""
        if element.get("initial_user"):
            shown = names.user(str(element["initial_user"]))
        return f"[ {shown or text_object(element.get('placeholder'), names) or 'Choose'} ▾ ]"
    if kind and str(kind).startswith("multi_"):
        chosen = [text_object(o.get("text"), names) for o in element.get("initial_options") or []]
        return f"[ {', '.join(chosen) or text_object(element.get('placeholder'), names) or 'Choose'} ▾▾ ]"
    if kind == "overflow":
        return "[ … ]"
    if kind == "datetimepicker":
        initial = element.get("initial_date_time")
        return f"[ {_moment(initial, names) if initial is not None else 'date and time'} ]"
    if kind in ("datepicker", "timepicker"):
        return f"[ {element.get('initial_date') or element.get('initial_time') or kind} ]"
    if kind in ("plain_text_input", "number_input", "email_text_input", "url_text_input"):
        if element.get("initial_value"):
            return f"[ {element['initial_value']} ]"
        placeholder = text_object(element.get("placeholder"), names)
        if placeholder:
            return f"[ ‹{placeholder}› ]"  # greyed out in Slack: not a value
        return "[ … ]" if element.get("multiline") else "[ ]"
    if kind in ("checkboxes", "radio_buttons"):
        return " ".join(f"( ) {text_object(o.get('text'), names)}" for o in element.get("options") or [])
    if kind == "image":
        return f"[image: {element.get('alt_text', '')}]"
    return f"[{kind}]"


def _rich_text(elements: Sequence[Any], names: Names) -> str:
    out: list[str] = []
    for element in elements:
        if not isinstance(element, Mapping):
            continue
        kind = element.get("type")
        if kind == "text":
            out.append(str(element.get("text", "")))
        elif kind == "link":
            url = str(element.get("url", ""))
            text = element.get("text")
            out.append(f"{text} ({url})" if text else url)
        elif kind == "user":
            out.append(names.user(str(element.get("user_id", ""))))
        elif kind == "channel":
            out.append(names.channel(str(element.get("channel_id", ""))))
        elif kind == "usergroup":
            out.append(names.group(str(element.get("usergroup_id", ""))))
        elif kind == "broadcast":
            out.append("@" + str(element.get("range", "here")))
        elif kind == "emoji":
            out.append(f":{element.get('name', '')}:")
        elif kind == "rich_text_list":
            items = [_rich_text([item], names) for item in element.get("elements") or []]
            out.append("\n".join(f"• {item}" for item in items))
        elif "elements" in element:
            inner = _rich_text(element.get("elements") or [], names)
            if kind == "rich_text_quote":
                inner = "\n".join(f"> {line}" for line in inner.splitlines())
            elif kind == "rich_text_preformatted":
                inner = f"```{inner}```"
            out.append(inner + ("\n" if kind != "rich_text_section" else ""))
    return "".join(out).rstrip("\n")


def _block(block: Mapping[str, Any], names: Names) -> list[str]:
    kind = block.get("type")
    if kind == "header":
        return [f"== {text_object(block.get('text'), names)} =="]
    if kind == "section":
        lines = text_object(block.get("text"), names).splitlines() if block.get("text") else []
        lines += [_field(f, names) for f in block.get("fields") or []]
        accessory = block.get("accessory")
        if isinstance(accessory, Mapping):
            shown = _element(accessory, names)
            if lines:
                lines[-1] = f"{lines[-1]}  {shown}"
            else:
                lines = [shown]
        return lines
    if kind == "context":
        parts = [
            f"[image: {e.get('alt_text', '')}]" if e.get("type") == "image" else text_object(e, names)
            for e in block.get("elements") or []
            if isinstance(e, Mapping)
        ]
        return ["› " + line for line in "  ".join(parts).splitlines()]
    if kind == "actions":
        return [" ".join(_element(e, names) for e in block.get("elements") or [] if isinstance(e, Mapping))]
    if kind == "divider":
        return [DIVIDER]
    if kind == "image":
        return [f"[image: {block.get('alt_text', '')}]"]
    if kind == "input":
        label = text_object(block.get("label"), names)
        optional = " (optional)" if block.get("optional") else ""
        element = block.get("element")
        shown = _element(element, names) if isinstance(element, Mapping) else ""
        return [f"{label}{optional}: {shown}".rstrip()]
    if kind == "rich_text":
        return _rich_text(block.get("elements") or [], names).splitlines()
    return [f"[{kind} block]"]


def blocks_to_text(blocks: Sequence[Any], names: Names = NO_NAMES) -> str:
    lines: list[str] = []
    for block in blocks:
        if isinstance(block, Mapping):
            lines += _block(block, names)
    return "\n".join(lines)


def message_to_text(text: str | None, blocks: Sequence[Any] | None, names: Names = NO_NAMES) -> str:
    """What the reader sees: the blocks if there are any, else the mrkdwn text."""
    if blocks:
        return blocks_to_text(blocks, names)
    return mrkdwn_to_text(text or "", names)


def view_to_text(view: Mapping[str, Any], names: Names = NO_NAMES) -> str:
    """A modal: its title, its blocks, and the close / submit buttons at the bottom."""
    lines = [f"┌ {text_object(view.get('title'), names)}"]
    body = blocks_to_text(view.get("blocks") or [], names)
    lines += [f"│ {line}".rstrip() for line in body.splitlines()]
    buttons = [text_object(view.get(key), names) for key in ("close", "submit") if view.get(key)]
    lines.append("└ " + " ".join(f"[ {b} ]" for b in buttons) if buttons else "└")
    return "\n".join(lines)
