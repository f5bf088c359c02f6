"""The ``views.*`` methods: modals opened by a trigger, updated under a hash, and the App
Home published per user."""

from __future__ import annotations

from tooling.emulator.wire import APP_ID, BOT_ID, TEAM_ID, Handler, JSONDict, SlackError, str_param
from tooling.emulator.workspace import Workspace


def _check_trigger(params: JSONDict) -> None:
    trigger_id = str_param(params, "trigger_id")
    if trigger_id is None:
        raise SlackError("invalid_arguments")
    if "expired" in trigger_id:
        raise SlackError("expired_trigger_id")


def _view_payload(params: JSONDict) -> JSONDict:
    view = params.get("view")
    if not isinstance(view, dict):
        raise SlackError("invalid_arguments")
    return view


class ViewMethods:
    """Answers ``views.*`` from the workspace's views and home tabs."""

    def __init__(self, workspace: Workspace) -> None:
        self._ws = workspace

    def handlers(self) -> dict[str, Handler]:
        return {
            "views.open": self.open,
            "views.update": self.update,
            "views.push": self.push,
            "views.publish": self.publish,
        }

    def _build_view(
        self, payload: JSONDict, *, view_id: str, root_view_id: str, previous: str | None
    ) -> JSONDict:
        view: JSONDict = {
            "private_metadata": "",
            "callback_id": "",
            "external_id": "",
            "clear_on_close": False,
            "notify_on_close": False,
            **payload,
            "id": view_id,
            "team_id": TEAM_ID,
            "state": {"values": {}},
            "hash": self._ws.new_hash(),
            "root_view_id": root_view_id,
            "previous_view_id": previous,
            "app_id": APP_ID,
            "app_installed_team_id": TEAM_ID,
            "bot_id": BOT_ID,
        }
        self._ws.views[view_id] = view
        return view

    def open(self, params: JSONDict) -> JSONDict:
        _check_trigger(params)
        payload = _view_payload(params)
        view_id = self._ws.next_id("V")
        view = self._build_view(payload, view_id=view_id, root_view_id=view_id, previous=None)
        return {"view": view}

    def push(self, params: JSONDict) -> JSONDict:
        return self.open(params)

    def update(self, params: JSONDict) -> JSONDict:
        payload = _view_payload(params)
        view_id = str_param(params, "view_id")
        external_id = str_param(params, "external_id")
        if view_id is None and external_id is None:
            raise SlackError("invalid_arguments")
        current: JSONDict | None = None
        if view_id is not None:
            current = self._ws.views.get(view_id)
        else:
            current = next((v for v in self._ws.views.values() if v.get("external_id") == external_id), None)
        if current is None:
            raise SlackError("not_found")
        expected = str_param(params, "hash")
        if expected is not None and expected != current["hash"]:
            raise SlackError("hash_conflict")
        view = self._build_view(
            payload,
            view_id=current["id"],
            root_view_id=current["root_view_id"],
            previous=current["previous_view_id"],
        )
        view["state"] = current.get("state", {"values": {}})
        for user_id, home in self._ws.home_views.items():
            if home["id"] == view["id"]:
                self._ws.home_views[user_id] = view
        return {"view": view}

    def publish(self, params: JSONDict) -> JSONDict:
        user_id = str_param(params, "user_id")
        if user_id is None:
            raise SlackError("invalid_arguments")
        payload = _view_payload(params)
        current = self._ws.home_views.get(user_id)
        expected = str_param(params, "hash")
        if current is not None and expected is not None and expected != current["hash"]:
            raise SlackError("hash_conflict")
        view_id = current["id"] if current is not None else self._ws.next_id("V")
        view = self._build_view(payload, view_id=view_id, root_view_id=view_id, previous=None)
        self._ws.home_views[user_id] = view
        return {"view": view}
