"""Text helpers for mrkdwn: user text is escaped so `<!channel>` or `<@U…>` never pings."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo


def escape(text: str) -> str:
    """Slack's three control characters; after this, user text renders literally."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def escaped_clip(text: str, limit: int) -> str:
    """Escape then clip without cutting an entity like `&amp;` in half."""
    out = escape(text)
    if len(out) <= limit:
        return out
    cut = out[: limit - 1]
    amp = cut.rfind("&")
    if amp != -1 and ";" not in cut[amp:]:
        cut = cut[:amp]
    return cut.rstrip() + "…"


def slack_date(moment: datetime, zone: ZoneInfo) -> str:
    """Shown in each reader's own Slack time zone; the fallback uses the policy's."""
    local = moment.astimezone(zone)
    fallback = local.strftime("%a %d %b %Y %H:%M %Z")
    return f"<!date^{int(moment.timestamp())}^{{date_short_pretty}} {{time}}|{fallback}>"


def mention(user_id: str) -> str:
    return f"<@{user_id}>"


def role_label(role: str) -> str:
    return role.replace("_", " ").replace("-", " ").capitalize()
