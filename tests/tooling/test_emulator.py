"""Tests for the Slack emulator, driven through the real slack_sdk AsyncWebClient.

Going through the SDK (not raw HTTP) is the point: it proves the emulator
understands every body encoding and error shape the bot will see.
"""

from __future__ import annotations

import asyncio
import io
import json
import time
from collections.abc import AsyncIterator

import aiohttp
import pytest
import pytest_asyncio
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler
from slack_sdk.web.async_client import AsyncWebClient

from tooling.emulator import SlackEmulator

TOKEN = "xoxb-test"


@pytest_asyncio.fixture
async def emulator() -> AsyncIterator[SlackEmulator]:
    emu = SlackEmulator()
    await emu.start()
    try:
        yield emu
    finally:
        await emu.stop()


@pytest.fixture
def client(emulator: SlackEmulator) -> AsyncWebClient:
    # No retry handlers: failures must surface exactly as the emulator sent them.
    return AsyncWebClient(token=TOKEN, base_url=emulator.base_url, retry_handlers=[])


@pytest.mark.asyncio
async def test_base_url_and_auth_test(emulator: SlackEmulator, client: AsyncWebClient) -> None:
    assert emulator.base_url.startswith("http://127.0.0.1:")
    assert emulator.base_url.endswith("/api/")
    resp = await client.auth_test()
    assert resp["user_id"] == "UBOT"
    assert resp["bot_id"] == "BBOT"
    assert resp["team_id"] == "T0001"
    assert resp["team"] == "Emulated"
    assert resp["url"]
    assert [c.method for c in emulator.calls] == ["auth.test"]


@pytest.mark.asyncio
async def test_post_message_to_channel(emulator: SlackEmulator, client: AsyncWebClient) -> None:
    blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": "hi"}}]
    metadata = {"event_type": "change", "event_payload": {"id": 7}}
    first = await client.chat_postMessage(channel="C123", text="hello", blocks=blocks, metadata=metadata)
    second = await client.chat_postMessage(channel="C123", text="again")

    assert first["channel"] == "C123"
    assert first["message"]["text"] == "hello"
    assert float(second["ts"]) > float(first["ts"])
    stored = emulator.messages("C123")
    assert [m["ts"] for m in stored] == [first["ts"], second["ts"]]
    assert stored[0]["blocks"] == blocks
    assert stored[0]["metadata"] == metadata
    assert stored[0]["user"] == "UBOT"
    assert stored[1]["thread_ts"] is None

    call = emulator.calls_to("chat.postMessage")[0]
    assert call.params["channel"] == "C123"
    assert call.params["blocks"] == blocks


@pytest.mark.asyncio
async def test_post_message_to_user_opens_dm(emulator: SlackEmulator, client: AsyncWebClient) -> None:
    resp = await client.chat_postMessage(channel="U123", text="psst")
    assert resp["channel"] == "D_U123"
    assert emulator.messages("D_U123")[0]["text"] == "psst"
    opened = await client.conversations_open(users="U123")
    assert opened["channel"]["id"] == "D_U123"


@pytest.mark.asyncio
@pytest.mark.filterwarnings("ignore:The top-level `text` argument is missing")
async def test_post_message_without_content(client: AsyncWebClient) -> None:
    with pytest.raises(SlackApiError) as info:
        await client.chat_postMessage(channel="C123")
    assert info.value.response.status_code == 200
    assert info.value.response["error"] == "no_text"


@pytest.mark.asyncio
async def test_update_delete_and_permalink(emulator: SlackEmulator, client: AsyncWebClient) -> None:
    posted = await client.chat_postMessage(channel="C1", text="v1")
    updated = await client.chat_update(channel="C1", ts=posted["ts"], text="v2", blocks=[{"type": "divider"}])
    assert (updated["channel"], updated["ts"]) == ("C1", posted["ts"])
    message = emulator.messages("C1")[0]
    assert message["text"] == "v2"
    assert message["blocks"] == [{"type": "divider"}]

    link = await client.chat_getPermalink(channel="C1", message_ts=posted["ts"])
    assert "C1" in link["permalink"]

    with pytest.raises(SlackApiError) as info:
        await client.chat_update(channel="C1", ts="1.000001", text="nope")
    assert info.value.response["error"] == "message_not_found"

    await client.chat_delete(channel="C1", ts=posted["ts"])
    assert emulator.messages("C1") == []


@pytest.mark.asyncio
async def test_ephemeral(emulator: SlackEmulator, client: AsyncWebClient) -> None:
    resp = await client.chat_postEphemeral(channel="C1", user="U9", text="only you")
    assert resp["message_ts"]
    assert emulator.ephemeral_messages == [
        {
            "channel": "C1",
            "user": "U9",
            "ts": resp["message_ts"],
            "text": "only you",
            "blocks": None,
            "thread_ts": None,
        }
    ]
    assert emulator.messages("C1") == []


@pytest.mark.asyncio
async def test_threads_history_and_replies(emulator: SlackEmulator, client: AsyncWebClient) -> None:
    parent = await client.chat_postMessage(
        channel="C1", text="parent", metadata={"event_type": "x", "event_payload": {}}
    )
    reply = await client.chat_postMessage(channel="C1", text="reply", thread_ts=parent["ts"])
    later = await client.chat_postMessage(channel="C1", text="later")

    assert [m["text"] for m in emulator.thread("C1", parent["ts"])] == ["parent", "reply"]

    history = await client.conversations_history(channel="C1")
    assert [m["text"] for m in history["messages"]] == ["later", "parent"]
    assert "metadata" not in history["messages"][1]
    with_meta = await client.conversations_history(channel="C1", include_all_metadata=True)
    assert with_meta["messages"][1]["metadata"]["event_type"] == "x"
    # History is a GET with query params: they must be recorded like body params.
    assert emulator.calls_to("conversations.history")[0].params["channel"] == "C1"

    windowed = await client.conversations_history(channel="C1", oldest=parent["ts"], limit=5)
    assert [m["ts"] for m in windowed["messages"]] == [later["ts"]]

    replies = await client.conversations_replies(channel="C1", ts=parent["ts"])
    assert [m["ts"] for m in replies["messages"]] == [parent["ts"], reply["ts"]]

    with pytest.raises(SlackApiError) as info:
        await client.conversations_history(channel="C404")
    assert info.value.response["error"] == "channel_not_found"


@pytest.mark.asyncio
async def test_views_open_update_hash_conflict(emulator: SlackEmulator, client: AsyncWebClient) -> None:
    modal = {
        "type": "modal",
        "callback_id": "new_change",
        "external_id": "ext-1",
        "title": {"type": "plain_text", "text": "New change"},
        "blocks": [],
    }
    with pytest.raises(SlackApiError) as info:
        await client.views_open(trigger_id="", view=modal)
    assert info.value.response["error"] == "invalid_arguments"
    with pytest.raises(SlackApiError) as info:
        await client.views_open(trigger_id="123.expired", view=modal)
    assert info.value.response["error"] == "expired_trigger_id"

    opened = await client.views_open(trigger_id="123.456", view=modal)
    view = opened["view"]
    assert view["id"].startswith("V")
    assert view["hash"]
    assert emulator.views[view["id"]]["callback_id"] == "new_change"

    step2 = {**modal, "blocks": [{"type": "divider"}]}
    updated = await client.views_update(view_id=view["id"], hash=view["hash"], view=step2)
    assert updated["view"]["id"] == view["id"]
    assert updated["view"]["hash"] != view["hash"]
    assert emulator.views[view["id"]]["blocks"] == [{"type": "divider"}]

    with pytest.raises(SlackApiError) as info:
        await client.views_update(view_id=view["id"], hash=view["hash"], view=modal)
    assert info.value.response["error"] == "hash_conflict"

    by_external = await client.views_update(external_id="ext-1", view=modal)
    assert by_external["view"]["id"] == view["id"]

    pushed = await client.views_push(trigger_id="789.1", view=modal)
    assert pushed["view"]["id"] != view["id"]


@pytest.mark.asyncio
async def test_views_publish_home(emulator: SlackEmulator, client: AsyncWebClient) -> None:
    home = {"type": "home", "blocks": []}
    first = await client.views_publish(user_id="U1", view=home)
    second = await client.views_publish(user_id="U1", view={**home, "blocks": [{"type": "divider"}]})
    assert first["view"]["id"] == second["view"]["id"]
    assert emulator.home_views["U1"]["blocks"] == [{"type": "divider"}]
    with pytest.raises(SlackApiError) as info:
        await client.views_publish(user_id="U1", view=home, hash=first["view"]["hash"])
    assert info.value.response["error"] == "hash_conflict"


@pytest.mark.asyncio
async def test_usergroups_and_users(emulator: SlackEmulator, client: AsyncWebClient) -> None:
    emulator.usergroups["S1"] = ["U1", "U2"]
    emulator.users["U1"] = {"name": "ada", "tz": "Europe/Paris", "email": "ada@example.com"}
    emulator.users["U2"] = {"name": "bob"}

    group = await client.usergroups_users_list(usergroup="S1")
    assert group["users"] == ["U1", "U2"]
    with pytest.raises(SlackApiError) as info:
        await client.usergroups_users_list(usergroup="S404")
    assert info.value.response["error"] == "no_such_subteam"

    ada = (await client.users_info(user="U1"))["user"]
    assert ada["name"] == "ada"
    assert ada["tz"] == "Europe/Paris"
    assert ada["tz_offset"] in (3600, 7200)
    assert ada["profile"]["email"] == "ada@example.com"
    bob = (await client.users_info(user="U2"))["user"]
    assert (bob["tz"], bob["tz_offset"]) == ("UTC", 0)

    found = await client.users_lookupByEmail(email="ADA@example.com")
    assert found["user"]["id"] == "U1"
    with pytest.raises(SlackApiError) as info:
        await client.users_lookupByEmail(email="nobody@example.com")
    assert info.value.response["error"] == "users_not_found"


@pytest.mark.asyncio
async def test_unknown_user_when_auto_users_disabled(emulator: SlackEmulator, client: AsyncWebClient) -> None:
    assert (await client.users_info(user="U77"))["user"]["tz"] == "UTC"
    emulator.auto_users = False
    with pytest.raises(SlackApiError) as info:
        await client.users_info(user="U77")
    assert info.value.response["error"] == "user_not_found"


@pytest.mark.asyncio
async def test_rate_limited_surfaces_retry_after(emulator: SlackEmulator, client: AsyncWebClient) -> None:
    emulator.fail_next("chat.postMessage", status=429, retry_after=3)
    with pytest.raises(SlackApiError) as info:
        await client.chat_postMessage(channel="C1", text="x")
    response = info.value.response
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "3"
    assert response["error"] == "ratelimited"
    assert [c.method for c in emulator.failed_calls] == ["chat.postMessage"]
    assert emulator.calls == []

    # Only the next call fails.
    await client.chat_postMessage(channel="C1", text="x")
    assert len(emulator.calls_to("chat.postMessage")) == 1


@pytest.mark.asyncio
async def test_rate_limit_retry_handler_recovers(emulator: SlackEmulator) -> None:
    client = AsyncWebClient(
        token=TOKEN,
        base_url=emulator.base_url,
        retry_handlers=[AsyncRateLimitErrorRetryHandler(max_retry_count=2)],
    )
    emulator.fail_next("chat.postMessage", retry_after=0, times=2)
    resp = await client.chat_postMessage(channel="C1", text="eventually")
    assert resp["ok"]
    assert len(emulator.failed_calls) == 2
    assert len(emulator.messages("C1")) == 1


@pytest.mark.asyncio
async def test_server_error_text_and_json(emulator: SlackEmulator, client: AsyncWebClient) -> None:
    emulator.fail_next("views.open", status=500)
    with pytest.raises(SlackApiError) as info:
        await client.views_open(trigger_id="1.2", view={"type": "modal", "blocks": []})
    assert info.value.response.status_code == 500
    assert info.value.response.data == "internal_error"

    emulator.fail_next("views.open", status=500, error="fatal_error", as_text=False)
    with pytest.raises(SlackApiError) as info:
        await client.views_open(trigger_id="1.2", view={"type": "modal", "blocks": []})
    assert info.value.response.status_code == 500
    assert info.value.response["error"] == "fatal_error"
    assert emulator.views == {}


@pytest.mark.asyncio
async def test_form_and_multipart_bodies(emulator: SlackEmulator, client: AsyncWebClient) -> None:
    blocks = [{"type": "divider"}]
    await client.api_call(
        "chat.postMessage", data={"channel": "C1", "text": "form", "blocks": json.dumps(blocks)}
    )
    form_call = emulator.calls_to("chat.postMessage")[0]
    assert form_call.params["blocks"] == blocks
    assert emulator.messages("C1")[0]["blocks"] == blocks

    await client.api_call(
        "chat.postMessage",
        data={"channel": "C1", "text": "multi", "blocks": json.dumps(blocks)},
        files={"file": io.BytesIO(b"hello")},
    )
    multi_call = emulator.calls_to("chat.postMessage")[1]
    assert multi_call.params["blocks"] == blocks
    assert multi_call.params["file"]["content"] == b"hello"


@pytest.mark.asyncio
async def test_missing_token_is_not_authed(emulator: SlackEmulator) -> None:
    async with (
        aiohttp.ClientSession() as session,
        session.post(emulator.base_url + "auth.test", json={}) as resp,
    ):
        assert await resp.json() == {"ok": False, "error": "not_authed"}
    assert emulator.calls == []


@pytest.mark.asyncio
async def test_unknown_method_is_recorded(emulator: SlackEmulator, client: AsyncWebClient) -> None:
    with pytest.raises(SlackApiError) as info:
        await client.api_call("no.such.method", json={"a": 1})
    assert info.value.response.status_code == 200
    assert info.value.response["error"] == "unknown_method"
    assert emulator.calls_to("no.such.method")[0].params == {"a": 1}


@pytest.mark.asyncio
async def test_response_url_records_posts(emulator: SlackEmulator) -> None:
    url = emulator.response_url("cmd1")
    async with aiohttp.ClientSession() as session, session.post(url, json={"text": "done"}) as resp:
        assert await resp.text() == "ok"
    assert emulator.responses["cmd1"] == [{"text": "done"}]
    calls = await emulator.wait_for("response/cmd1")
    assert calls[0].params == {"text": "done"}


@pytest.mark.asyncio
async def test_wait_for_and_timeout(emulator: SlackEmulator, client: AsyncWebClient) -> None:
    async def later() -> None:
        await asyncio.sleep(0.05)
        await client.chat_postMessage(channel="C1", text="a")
        await client.chat_postMessage(channel="C1", text="b")

    task = asyncio.create_task(later())
    calls = await emulator.wait_for(
        "chat.postMessage", count=1, predicate=lambda c: c.params.get("text") == "b"
    )
    await task
    assert calls[0].params["text"] == "b"

    with pytest.raises(AssertionError, match=r"views\.open.*chat\.postMessage"):
        await emulator.wait_for("views.open", timeout=0.05)

    emulator.reset_calls()
    assert emulator.calls == []


@pytest.mark.asyncio
async def test_delay_makes_method_slow(emulator: SlackEmulator, client: AsyncWebClient) -> None:
    emulator.delay("auth.test", 0.2)
    started = time.monotonic()
    await client.auth_test()
    assert time.monotonic() - started >= 0.2
    emulator.delay("auth.test", 0)
    started = time.monotonic()
    await client.auth_test()
    assert time.monotonic() - started < 0.2
