"""Role members from Slack: user ids pass through, user groups are expanded through
`usergroups.users.list` and cached, so a click does not wait on Slack every time."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime, timedelta

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from domain.clock import Clock

log = logging.getLogger(__name__)
ZONE_TTL = timedelta(days=1)  # how long a user's time zone is trusted before asking again


class DirectoryUnavailable(Exception):
    """Slack could not tell us who is in a group and nothing was cached."""


class SlackDirectory:
    def __init__(self, *, client: AsyncWebClient, clock: Clock, ttl_seconds: int) -> None:
        self._client = client
        self._clock = clock
        self._ttl = timedelta(seconds=ttl_seconds)
        self._groups: dict[str, tuple[datetime, frozenset[str]]] = {}
        self._zones: dict[str, tuple[datetime, str | None]] = {}

    async def expand(self, refs: Sequence[str]) -> frozenset[str]:
        users = {ref for ref in refs if not ref.startswith("S")}
        for group in (ref for ref in refs if ref.startswith("S")):
            users |= await self._members(group)
        return frozenset(users)

    async def _members(self, group: str) -> frozenset[str]:
        now = self._clock.now()
        cached = self._groups.get(group)
        if cached and now - cached[0] < self._ttl:
            return cached[1]
        try:
            response = await self._client.usergroups_users_list(usergroup=group)
        except (SlackApiError, OSError, TimeoutError) as exc:
            if cached:
                log.warning("user group %s: serving cached members, Slack failed: %s", group, exc)
                return cached[1]
            raise DirectoryUnavailable(f"could not read user group {group}: {exc}") from exc
        members = frozenset(str(u) for u in response.get("users") or [])
        self._groups[group] = (now, members)
        return members

    async def time_zone(self, user: str) -> str | None:
        """The user's `tz` from `users.info`, cached for a day (people rarely move); None
        when Slack cannot say and nothing is cached, so the caller uses the policy's zone."""
        now = self._clock.now()
        cached = self._zones.get(user)
        if cached and now - cached[0] < ZONE_TTL:
            return cached[1]
        try:
            response = await self._client.users_info(user=user)
        except (SlackApiError, OSError, TimeoutError) as exc:
            log.warning("users.info %s: no time zone, Slack failed: %s", user, type(exc).__name__)
            return cached[1] if cached else None
        zone = str((response.get("user") or {}).get("tz") or "") or None
        self._zones[user] = (now, zone)
        return zone

    async def user_by_email(self, email: str) -> str | None:
        """The Slack user id with this email (`users.lookupByEmail`), None when nobody has it;
        DirectoryUnavailable when Slack cannot say."""
        try:
            response = await self._client.users_lookupByEmail(email=email)
        except SlackApiError as exc:
            if exc.response.get("error") in ("users_not_found", "invalid_email"):
                return None
            why = exc.response.get("error")
            raise DirectoryUnavailable(f"could not look up a user by email: {why}") from exc
        except (OSError, TimeoutError) as exc:
            raise DirectoryUnavailable(f"could not look up a user by email: {type(exc).__name__}") from exc
        user = response.get("user") or {}
        user_id = str(user.get("id") or "")
        return user_id or None
