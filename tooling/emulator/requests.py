"""Reading a Web API request the way Slack does: query string and body (JSON, urlencoded or
multipart) merged into one dict, JSON-in-form fields decoded, the token found anywhere."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from tooling.emulator.wire import JSONDict, SlackError, str_param

# Fields that slack_sdk serialises to JSON strings when it sends form bodies;
# decoding them keeps recorded params identical whatever the transport was.
_JSON_FIELDS = frozenset(
    {"blocks", "attachments", "view", "metadata", "unfurls", "user_auth_blocks", "payload"}
)


async def parse_params(request: web.Request) -> JSONDict:
    """Merge query string and body (JSON, urlencoded or multipart) into one dict."""
    params: JSONDict = {}
    for key in request.query:
        values = request.query.getall(key)
        params[key] = values[0] if len(values) == 1 else list(values)
    if request.body_exists:
        params.update(await _body_params(request))
    for key in _JSON_FIELDS & params.keys():
        value = params[key]
        if isinstance(value, str) and value.strip()[:1] in ("{", "["):
            try:
                params[key] = json.loads(value)
            except json.JSONDecodeError:
                raise SlackError("invalid_json") from None
    return params


async def _body_params(request: web.Request) -> JSONDict:
    params: JSONDict = {}
    if request.content_type == "application/json":
        try:
            body = await request.json()
        except json.JSONDecodeError:
            raise SlackError("invalid_json") from None
        if not isinstance(body, dict):
            raise SlackError("invalid_json")
        params.update(body)
    elif request.content_type in (
        "application/x-www-form-urlencoded",
        "multipart/form-data",
    ):
        form = await request.post()
        for key in form:
            items = [_form_value(v) for v in form.getall(key)]
            params[key] = items[0] if len(items) == 1 else items
    return params


def _form_value(value: Any) -> Any:
    if isinstance(value, web.FileField):
        return {
            "filename": value.filename,
            "content_type": value.content_type,
            "content": value.file.read(),
        }
    return value


def is_authed(request: web.Request, params: JSONDict) -> bool:
    """A bearer token in the header, or (Slack accepts that too) one in the parameters."""
    header = request.headers.get("Authorization", "")
    if header.startswith("Bearer ") and header[len("Bearer ") :].strip():
        return True
    # Slack also accepts the token as a body/query parameter.
    return bool(str_param(params, "token"))
