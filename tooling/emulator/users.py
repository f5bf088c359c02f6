"""Who is who: ``auth.test`` for the bot, ``users.*`` profiles (with time zones from the
injected clock) and ``usergroups.users.list``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from tooling.emulator.wire import (
    BOT_ID,
    BOT_USER_ID,
    TEAM_ID,
    TEAM_NAME,
    USER_ID_RE,
    WORKSPACE_URL,
    Handler,
    JSONDict,
    SlackError,
    str_param,
)
from tooling.emulator.workspace import Workspace


def auth_test(params: JSONDict) -> JSONDict:
    return {
        "url": WORKSPACE_URL,
        "team": TEAM_NAME,
        "user": "changebot",
        "team_id": TEAM_ID,
        "user_id": BOT_USER_ID,
        "bot_id": BOT_ID,
        "is_enterprise_install": False,
    }


class UserMethods:
    """Answers the identity methods from the workspace's users and usergroups."""

    def __init__(self, workspace: Workspace) -> None:
        self._ws = workspace

    def handlers(self) -> dict[str, Handler]:
        return {
            "auth.test": auth_test,
            "usergroups.users.list": self.usergroups_users_list,
            "users.info": self.info,
            "users.lookupByEmail": self.lookup_by_email,
        }

    def usergroups_users_list(self, params: JSONDict) -> JSONDict:
        group = str_param(params, "usergroup")
        if group is None or group not in self._ws.usergroups:
            raise SlackError("no_such_subteam")
        return {"users": list(self._ws.usergroups[group])}

    def _user_object(self, user_id: str, data: Mapping[str, Any]) -> JSONDict:
        tz = str(data.get("tz") or "UTC")
        tz_offset = data.get("tz_offset")
        if tz_offset is None:
            try:
                offset = self._ws.clock.now().astimezone(ZoneInfo(tz)).utcoffset()
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

    def info(self, params: JSONDict) -> JSONDict:
        user_id = str_param(params, "user")
        if user_id is None:
            raise SlackError("user_not_found")
        data = self._ws.users.get(user_id)
        if data is None:
            if not (self._ws.auto_users and USER_ID_RE.match(user_id)):
                raise SlackError("user_not_found")
            data = {"email": f"{user_id.lower()}@example.com"}
        return {"user": self._user_object(user_id, data)}

    def lookup_by_email(self, params: JSONDict) -> JSONDict:
        email = (str_param(params, "email") or "").lower()
        for user_id, data in self._ws.users.items():
            user = self._user_object(user_id, data)
            if email and str(user["profile"].get("email", "")).lower() == email:
                return {"user": user}
        raise SlackError("users_not_found")
