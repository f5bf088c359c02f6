"""Text helpers for mrkdwn: user text is escaped so `<!channel>` or `<@U…>` never pings.

`Mrkdwn` marks text that is safe for Slack to parse: our own markup, with every user
string escaped. Only this module's helpers make one (`Mrkdwn("…")` of a string literal is
the one exception elsewhere, and tests/test_architecture.py holds the line), so a field
typed `Mrkdwn` cannot be handed raw user text: mypy refuses a plain `str` there. Blocks
get their mrkdwn through `section()`, `section_fields()` and `context()` for the same reason.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import datetime
from zoneinfo import ZoneInfo

from slack_sdk.models.blocks import ContextBlock, MarkdownTextObject, SectionBlock

from domain.gates import is_pipeline_principal
from domain.role_labels import role_label as label_role


class Mrkdwn(str):
    """Safe mrkdwn. `str` operations (f-strings, `+`, `join`) give back a plain `str`,
    so composing needs `md()` or `join_md()`, which escape whatever is not `Mrkdwn` yet."""

    __slots__ = ()


def escape(text: str) -> Mrkdwn:
    """Slack's three control characters; after this, user text renders literally."""
    return Mrkdwn(text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;"))


def md(template: str, *parts: str) -> Mrkdwn:
    """Fill the `{}` slots of a literal template; parts that are not `Mrkdwn` are user
    text and are escaped, so forgetting to escape is not possible."""
    return Mrkdwn(template.format(*(part if isinstance(part, Mrkdwn) else escape(part) for part in parts)))


def join_md(separator: str, parts: Iterable[str]) -> Mrkdwn:
    """`separator.join(parts)` with each part escaped unless it is `Mrkdwn` already."""
    return Mrkdwn(escape(separator).join(md("{}", part) for part in parts))


_ESCAPED_MENTION = re.compile(r"&lt;@([UW][A-Z0-9]{2,})&gt;")


def with_mentions(text: str) -> Mrkdwn:
    """Domain text that names people as `<@U…>` (a refusal): escaped, the mentions kept.
    Only for text the domain composed from ids, never for what a user typed."""
    return Mrkdwn(_ESCAPED_MENTION.sub(r"<@\1>", escape(text)))


def reloaded(text: str) -> Mrkdwn:
    """Text that was `Mrkdwn` when an outbox row stored it (JSON keeps no types)."""
    return Mrkdwn(text)


def clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def clip_md(text: Mrkdwn, limit: int) -> Mrkdwn:
    """Clip mrkdwn without cutting an entity (`&amp;`) or a token (`<@U…>`) in half."""
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    amp, token = cut.rfind("&"), cut.rfind("<")
    if amp != -1 and ";" not in cut[amp:]:
        cut = cut[:amp]
    if token != -1 and ">" not in cut[token:]:
        cut = cut[:token]
    return Mrkdwn(cut.rstrip() + "…")


def escaped_clip(text: str, limit: int) -> Mrkdwn:
    """Escape then clip without cutting an entity like `&amp;` in half."""
    return clip_md(escape(text), limit)


def slack_date(moment: datetime, zone: ZoneInfo) -> Mrkdwn:
    """Shown in each reader's own Slack time zone; the fallback uses the policy's."""
    local = moment.astimezone(zone)
    fallback = local.strftime("%a %d %b %Y %H:%M %Z")
    return Mrkdwn(f"<!date^{int(moment.timestamp())}^{{date_short_pretty}} {{time}}|{escape(fallback)}>")


def slack_time(moment: datetime, zone: ZoneInfo) -> Mrkdwn:
    """The time of day only (a list under its day's heading), in each reader's time zone."""
    fallback = moment.astimezone(zone).strftime("%H:%M %Z")
    return Mrkdwn(f"<!date^{int(moment.timestamp())}^{{time}}|{escape(fallback)}>")


def mention(user_id: str) -> Mrkdwn:
    """A Slack user as a mention; a pipeline principal (github:…, api:…) as its name."""
    if is_pipeline_principal(user_id):
        name = escape(user_id).replace("`", "'")
        return Mrkdwn(f"`{name}`")
    return Mrkdwn(f"<@{escape(user_id)}>")


# The policy's role labels ("CTO", "SRE lead"), set once by the composition root.
_ROLE_LABELS: dict[str, str] = {}


def use_role_labels(labels: Mapping[str, str]) -> None:
    """Show roles with the policy's labels from now on (the bot calls it as it starts)."""
    _ROLE_LABELS.clear()
    _ROLE_LABELS.update(labels)


def role_label(role: str) -> str:
    """A policy role as people say it: the policy's label, else `engineering_manager` ->
    "Engineering manager", `cto` -> "CTO" (the acronym rule in `domain/role_labels.py`)."""
    return label_role(role, _ROLE_LABELS)


def section(text: Mrkdwn, *, block_id: str | None = None) -> SectionBlock:
    """A section: its text is mrkdwn, so it takes `Mrkdwn` only."""
    return SectionBlock(text=MarkdownTextObject(text=text), block_id=block_id)


def section_fields(fields: Iterable[Mrkdwn]) -> SectionBlock:
    return SectionBlock(fields=[MarkdownTextObject(text=field) for field in fields])


def context(text: Mrkdwn) -> ContextBlock:
    return ContextBlock(elements=[MarkdownTextObject(text=text)])
