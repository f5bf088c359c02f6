"""`changebot api-token create|list|revoke`: the REST API's tokens, on the database alone
(no Slack connection). A new token is printed once; only its hash is kept."""

from __future__ import annotations

import sys
from datetime import datetime

from domain.clock import SystemClock
from storage.api_tokens import ApiTokenInfo, ApiTokens, BadTokenName, TokenNameTaken
from storage.database import create_engine, session_factory


async def api_token_command(*, database_url: str, action: str, name: str | None) -> int:
    engine = create_engine(database_url)
    try:
        tokens = ApiTokens(session_factory(engine))
        now = SystemClock().now()
        if action == "create":
            return await _create(tokens, name or "", now)
        if action == "revoke":
            if await tokens.revoke(name=name or "", now=now):
                print(f"API token '{name}' revoked: pipelines using it now get 401")
                return 0
            print(f"no live API token named '{name}'", file=sys.stderr)
            return 1
        _list(await tokens.list())
        return 0
    finally:
        await engine.dispose()


async def _create(tokens: ApiTokens, name: str, now: datetime) -> int:
    try:
        token = await tokens.create(name=name, now=now)
    except BadTokenName as exc:
        print(f"cannot create the token: {exc}", file=sys.stderr)
        return 1
    except TokenNameTaken:
        print(f"an API token named '{name}' already exists (revoked ones keep their name)", file=sys.stderr)
        return 1
    print(f"API token '{name}' created. It is shown only now: store it as the pipeline's secret")
    print("(CHANGEBOT_API_TOKEN); its calls act as api:" + name + ".")
    print(f"token: {token}")
    return 0


def _list(rows: list[ApiTokenInfo]) -> None:
    if not rows:
        print("no API tokens (create one with `changebot api-token create NAME`)")
        return
    print(f"{'NAME':<37} {'CREATED':<20} {'LAST USED':<20} REVOKED")
    for row in rows:
        used, revoked = _when(row.last_used_at), _when(row.revoked_at)
        print(f"{row.name:<37} {_when(row.created_at):<20} {used:<20} {revoked}")


def _when(moment: datetime | None) -> str:
    return f"{moment:%Y-%m-%d %H:%M}" if moment else "-"
