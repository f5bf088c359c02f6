"""The REST API's tokens: what a token's name may be, what a token looks like, and how
often its last use is written down. Pure rules; the store is storage/api_tokens.py."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

from domain.limits import MAX_ACTOR

API_PRINCIPAL = "api:"  # a token acts as "api:NAME" in the audit and the timeline
# The name becomes the actor "api:NAME", which the audit stores in MAX_ACTOR characters.
MAX_TOKEN_NAME = MAX_ACTOR - len(API_PRINCIPAL)
TOKEN_NAME = re.compile(rf"[A-Za-z0-9_.-]{{1,{MAX_TOKEN_NAME}}}")
TOKEN_PREFIX = "cbt_"  # recognisable in a leaked log or a secret scanner
# What a token can look like: anything else is refused before the database is asked.
TOKEN_SHAPE = re.compile(r"cbt_[A-Za-z0-9_-]{32,128}")
TOKEN_BYTES = 32  # 256 random bits: a plain sha256 needs no salt or stretching
# Last use is written at most this often per token, so a polling pipeline is not a write each second.
TOUCH_EVERY = timedelta(minutes=1)


def name_problem(name: str) -> str | None:
    """Why `name` cannot name a token, or None."""
    if TOKEN_NAME.fullmatch(name):
        return None
    return (
        f"a token name is 1 to {MAX_TOKEN_NAME} letters, digits, '.', '_' or '-' "
        "(it names the pipeline in the audit trail)"
    )


def principal(name: str) -> str:
    """Who a token's calls act as."""
    return f"{API_PRINCIPAL}{name}"


def looks_like_token(value: str) -> bool:
    return bool(TOKEN_SHAPE.fullmatch(value))


def due_touch(last_used_at: datetime | None, now: datetime) -> bool:
    """Whether this use must be written down (the first, or a minute after the last written)."""
    return last_used_at is None or now - last_used_at >= TOUCH_EVERY
