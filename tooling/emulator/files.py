"""File uploads the way Slack does them now: ask for an upload URL, POST the bytes to it,
then complete the upload, which shares the files in a channel."""

from __future__ import annotations

import json
from collections.abc import Callable

from aiohttp import web

from tooling.emulator.wire import BOT_ID, BOT_USER_ID, Handler, JSONDict, SlackError, int_param, str_param
from tooling.emulator.workspace import Workspace


class FileMethods:
    """Answers ``files.*`` and receives the uploaded bytes into the workspace's files."""

    def __init__(self, workspace: Workspace, *, address: Callable[[], str]) -> None:
        self._ws = workspace
        self._address = address

    def handlers(self) -> dict[str, Handler]:
        return {
            "files.getUploadURLExternal": self.get_upload_url,
            "files.completeUploadExternal": self.complete_upload,
        }

    def get_upload_url(self, params: JSONDict) -> JSONDict:
        filename = str_param(params, "filename")
        if not filename:
            raise SlackError("invalid_arguments")
        file_id = self._ws.next_id("F")
        self._ws.files[file_id] = {
            "id": file_id,
            "filename": filename,
            "length": int_param(params, "length", 0),
            "data": b"",
            "title": filename,
        }
        return {"upload_url": f"http://{self._address()}/upload/{file_id}", "file_id": file_id}

    async def handle_upload(self, request: web.Request) -> web.Response:
        """The upload URL's route: store the POSTed bytes."""
        file_id = request.match_info["file_id"]
        if file_id not in self._ws.files:
            return web.Response(status=404, text="unknown upload")
        self._ws.files[file_id]["data"] = await request.read()
        return web.Response(text=f"OK - {len(self._ws.files[file_id]['data'])}")

    def complete_upload(self, params: JSONDict) -> JSONDict:
        files = params.get("files")
        if isinstance(files, str):
            files = json.loads(files)
        if not isinstance(files, list) or not files:
            raise SlackError("invalid_arguments")
        channel = str_param(params, "channel_id") or str_param(params, "channels")
        done = []
        for entry in files:
            stored = self._ws.files.get(str(entry.get("id")))
            if stored is None or not stored["data"]:
                raise SlackError("file_not_found")
            stored.update(
                title=entry.get("title") or stored["filename"],
                channel=channel,
                thread_ts=str_param(params, "thread_ts"),
            )
            done.append({"id": stored["id"], "title": stored["title"], "name": stored["filename"]})
        if channel:
            self._ws.store_message(
                channel,
                {
                    "text": str_param(params, "initial_comment") or "",
                    "thread_ts": str_param(params, "thread_ts"),
                    "files": done,
                },
                user=BOT_USER_ID,
                bot_id=BOT_ID,
            )
        return {"files": done}
