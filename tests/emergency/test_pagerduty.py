"""PagerDuty on-call lookup and change events, against an HTTPS fake of PagerDuty (real
TLS, verified through SSL_CERT_FILE) and the Slack emulator."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx2
import pytest
from slack_sdk.web.async_client import AsyncWebClient

from adapters.pagerduty import (
    OnCallResult,
    PagerDutyChangeEvents,
    PagerDutyOnCall,
    PagerDutyRejected,
    PagerDutyTransient,
)
from domain.clock import FakeClock
from tests.support.pagerduty_fake import PagerDutyFake
from tooling.emulator import SlackEmulator

TOKEN = "pd-test-token"
ROUTING_KEY = "R" * 32
FALLBACK = ("UFALLBACK1", "UFALLBACK2")


_opened: list[PagerDutyOnCall | PagerDutyChangeEvents] = []


@pytest.fixture(autouse=True)
def _close_clients() -> Iterator[None]:
    yield
    while _opened:
        _opened.pop().close()


@pytest.fixture
async def fake(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[PagerDutyFake]:
    server = PagerDutyFake(api_token=TOKEN, routing_key=ROUTING_KEY)
    await server.start()
    monkeypatch.setenv("SSL_CERT_FILE", server.ca_file)
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    yield server
    await server.stop()


@pytest.fixture
def slack(emulator: SlackEmulator) -> AsyncWebClient:
    emulator.users = {
        "UALICE": {"email": "alice@example.com"},
        "UBOB": {"email": "bob@example.com"},
        "UCAROL": {"email": "carol@example.com"},
    }
    return AsyncWebClient(token="xoxb-test", base_url=emulator.base_url, retry_handlers=[])


def make_on_call(
    fake: PagerDutyFake | None,
    slack: AsyncWebClient,
    clock: FakeClock,
    *,
    api_token: str = TOKEN,
    api_url: str | None = None,
    policies: tuple[str, ...] = ("PEP1",),
    schedules: tuple[str, ...] = (),
    timeout_seconds: float = 3.0,
    client_kwargs: dict[str, Any] | None = None,
) -> PagerDutyOnCall:
    on_call = PagerDutyOnCall(
        api_token=api_token,
        api_url=api_url if api_url is not None else (fake.base_url if fake else ""),
        escalation_policy_ids=policies,
        schedule_ids=schedules,
        fallback_users=FALLBACK,
        slack_client=slack,
        clock=clock,
        cache_seconds=60,
        timeout_seconds=timeout_seconds,
        client_kwargs=client_kwargs,
    )
    _opened.append(on_call)
    return on_call


def staff(fake: PagerDutyFake) -> None:
    fake.add_user("PALICE", name="Alice", email="alice@example.com")
    fake.add_user("PBOB", name="Bob", email="bob@example.com")
    fake.add_user("PCAROL", name="Carol", email="carol@example.com")
    fake.add_user("PDAVE", name="Dave", email="dave@example.com")  # not in Slack


def fallback(reason_part: str) -> Any:
    class _Matches:
        def __eq__(self, other: object) -> bool:
            return (
                isinstance(other, OnCallResult)
                and other.users == FALLBACK
                and other.source == "fallback"
                and other.reason is not None
                and reason_part in other.reason
            )

        def __repr__(self) -> str:
            return f"<fallback result whose reason mentions {reason_part!r}>"

    return _Matches()


# --------------------------------------------------------------------------- on call


async def test_level_one_is_chosen_over_level_two(
    fake: PagerDutyFake, slack: AsyncWebClient, clock: FakeClock
) -> None:
    staff(fake)
    fake.add_oncall("PBOB", level=2, escalation_policy_id="PEP1")
    fake.add_oncall("PALICE", level=1, escalation_policy_id="PEP1")
    fake.add_oncall("PCAROL", level=1, escalation_policy_id="POTHER")  # not our policy

    result = await make_on_call(fake, slack, clock).current()

    assert result == OnCallResult(users=("UALICE",), source="pagerduty", reason=None)
    [request] = fake.requests_to("/oncalls")
    assert request.params("escalation_policy_ids[]") == ["PEP1"]
    assert request.params("earliest") == ["true"]
    assert request.params("include[]") == ["users"]
    assert request.headers["Authorization"] == f"Token token={TOKEN}"
    assert request.headers["Accept"] == "application/vnd.pagerduty+json;version=2"
    assert fake.requests_to("/users/PALICE") == []  # the email came with include[]=users


async def test_emails_are_fetched_per_user_and_pages_followed(
    fake: PagerDutyFake, slack: AsyncWebClient, clock: FakeClock, emulator: SlackEmulator
) -> None:
    staff(fake)
    fake.include_users_supported = False  # entries carry user references only
    fake.max_page_size = 1  # one entry per page: the client must follow `more`
    fake.add_oncall("PALICE", level=1, escalation_policy_id="PEP1")
    fake.add_oncall("PDAVE", level=1, escalation_policy_id="PEP1")
    fake.add_oncall("PBOB", level=3, escalation_policy_id="PEP1")
    fake.add_oncall("PCAROL", level=1, escalation_policy_id="PEP2", schedule_id="PSCHED")

    result = await make_on_call(fake, slack, clock, schedules=("PSCHED",)).current()

    # Dave is on call but unknown to Slack: skipped, the others still count.
    assert result == OnCallResult(users=("UALICE", "UCAROL"), source="pagerduty", reason=None)
    oncall_requests = fake.requests_to("/oncalls")
    assert [r.params("offset") for r in oncall_requests] == [["0"], ["1"], ["2"], ["0"]]
    assert oncall_requests[-1].params("schedule_ids[]") == ["PSCHED"]
    assert {r.path for r in fake.requests if r.path.startswith("/users/")} == {
        "/users/PALICE",
        "/users/PDAVE",
        "/users/PCAROL",
    }
    looked_up = sorted(c.params["email"] for c in emulator.calls_to("users.lookupByEmail"))
    assert looked_up == ["alice@example.com", "carol@example.com", "dave@example.com"]


async def test_result_is_cached_by_the_clock(
    fake: PagerDutyFake, slack: AsyncWebClient, clock: FakeClock
) -> None:
    staff(fake)
    fake.add_oncall("PALICE", level=1)
    on_call = make_on_call(fake, slack, clock)

    assert (await on_call.current()).users == ("UALICE",)
    clock.advance(timedelta(seconds=59))
    fake.oncalls.clear()
    fake.add_oncall("PBOB", level=1)
    assert (await on_call.current()).users == ("UALICE",)
    assert len(fake.requests_to("/oncalls")) == 1  # served from the cache

    clock.advance(timedelta(seconds=1))
    assert (await on_call.current()).users == ("UBOB",)
    assert len(fake.requests_to("/oncalls")) == 2


async def test_concurrent_callers_share_one_lookup(
    fake: PagerDutyFake, slack: AsyncWebClient, clock: FakeClock
) -> None:
    staff(fake)
    fake.add_oncall("PALICE", level=1)
    on_call = make_on_call(fake, slack, clock)
    results = await asyncio.gather(*(on_call.current() for _ in range(5)))
    assert {r.users for r in results} == {("UALICE",)}
    assert len(fake.requests_to("/oncalls")) == 1


async def test_pagerduty_down_falls_back(
    fake: PagerDutyFake, slack: AsyncWebClient, clock: FakeClock
) -> None:
    staff(fake)
    fake.add_oncall("PALICE", level=1)
    on_call = make_on_call(fake, slack, clock)
    await fake.go_down()

    started = time.monotonic()
    assert await on_call.current() == fallback("could not reach PagerDuty: connection refused")
    assert time.monotonic() - started < 1.0  # no sleeping retries in the worker thread

    # A fallback is not cached: once PagerDuty is back, the next call asks it again.
    await fake.come_back()
    assert (await on_call.current()).users == ("UALICE",)


async def test_slow_pagerduty_falls_back_within_the_timeout(
    fake: PagerDutyFake, slack: AsyncWebClient, clock: FakeClock
) -> None:
    staff(fake)
    fake.add_oncall("PALICE", level=1)
    fake.delay(10)

    started = time.monotonic()
    result = await make_on_call(fake, slack, clock, timeout_seconds=0.5).current()
    elapsed = time.monotonic() - started

    assert result == fallback("PagerDuty did not answer within 0.5 s")
    assert elapsed < 1.5


@pytest.mark.parametrize(
    ("status", "reason"),
    [
        (500, "PagerDuty answered 500"),
        (503, "PagerDuty answered 503"),
        (429, "PagerDuty answered 429 (rate limited)"),
        (401, "PagerDuty answered 401 (the API token was refused)"),
    ],
)
async def test_error_status_falls_back(
    fake: PagerDutyFake, slack: AsyncWebClient, clock: FakeClock, status: int, reason: str
) -> None:
    staff(fake)
    fake.add_oncall("PALICE", level=1)
    fake.fail_with(status, retry_after=30 if status == 429 else None)
    on_call = make_on_call(fake, slack, clock)

    started = time.monotonic()
    assert await on_call.current() == fallback(reason)
    assert time.monotonic() - started < 1.0
    assert len(fake.requests_to("/oncalls")) == 1  # the client's in-thread retries are off

    assert (await on_call.current()).users == ("UALICE",)  # recovered, not a cached fallback


async def test_wrong_api_token_falls_back(
    fake: PagerDutyFake, slack: AsyncWebClient, clock: FakeClock
) -> None:
    fake.add_oncall("PALICE", level=1)
    result = await make_on_call(fake, slack, clock, api_token="wrong").current()
    assert result == fallback("PagerDuty answered 401")


async def test_nobody_on_call_falls_back(
    fake: PagerDutyFake, slack: AsyncWebClient, clock: FakeClock
) -> None:
    staff(fake)
    fake.add_oncall("PALICE", level=1, escalation_policy_id="POTHER")
    result = await make_on_call(fake, slack, clock, schedules=("PSCHED",)).current()
    assert result == fallback(
        "PagerDuty lists nobody on call for escalation policies PEP1 and schedules PSCHED"
    )


async def test_nobody_maps_to_slack_falls_back(
    fake: PagerDutyFake, slack: AsyncWebClient, clock: FakeClock, emulator: SlackEmulator
) -> None:
    staff(fake)
    fake.add_oncall("PALICE", level=1)
    fake.add_oncall("PBOB", level=2)  # only level 1 counts, even though Bob would map
    emulator.users = {"UBOB": {"email": "bob@example.com"}}  # Alice is not in this workspace

    result = await make_on_call(fake, slack, clock).current()

    assert result == OnCallResult(
        users=FALLBACK,
        source="fallback",
        reason="nobody on call maps to a Slack user (alice@example.com not found)",
    )


@pytest.mark.parametrize(
    ("api_token", "policies", "schedules", "api_url", "reason"),
    [
        ("", ("PEP1",), (), None, "PagerDuty is not configured (no API token)"),
        (TOKEN, (), (), None, "PagerDuty is not configured (no escalation policy or schedule ids)"),
        (TOKEN, ("PEP1",), (), "http://127.0.0.1:1", "must use scheme https://"),
    ],
)
async def test_not_configured_falls_back_without_asking(
    fake: PagerDutyFake,
    slack: AsyncWebClient,
    clock: FakeClock,
    api_token: str,
    policies: tuple[str, ...],
    schedules: tuple[str, ...],
    api_url: str | None,
    reason: str,
) -> None:
    on_call = make_on_call(fake, slack, clock, api_token=api_token, policies=policies, api_url=api_url)
    assert await on_call.current() == fallback(reason)
    assert fake.requests == []


async def test_tls_is_verified(
    fake: PagerDutyFake, slack: AsyncWebClient, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    staff(fake)
    fake.add_oncall("PALICE", level=1)
    monkeypatch.delenv("SSL_CERT_FILE")  # the system trust store does not know the fake's CA

    result = await make_on_call(fake, slack, clock).current()

    assert result == fallback("TLS certificate verification failed")
    assert result.reason is not None and "certificate" in result.reason
    assert fake.requests == []  # the handshake failed before any request was sent


def streamed_json(status: int, body: Any) -> httpx2.Response:
    """A mock response that is read through the client like a real one. RestApiV2Client
    reads `response.elapsed`, which httpx2 only sets once it has consumed the stream: a
    `httpx2.Response(json=...)` is born read, and the client then raises RuntimeError."""
    return httpx2.Response(
        status,
        headers={"Content-Type": "application/json"},
        stream=httpx2.ByteStream(json.dumps(body).encode()),
    )


async def test_on_call_through_an_httpx2_mock_transport(slack: AsyncWebClient, clock: FakeClock) -> None:
    seen: list[httpx2.Request] = []

    def handler(request: httpx2.Request) -> httpx2.Response:
        seen.append(request)
        if request.url.path == "/oncalls":
            entries = [
                {"escalation_level": 2, "user": {"id": "PBOB", "type": "user_reference", "summary": "Bob"}},
                {
                    "escalation_level": 1,
                    "user": {"id": "PALICE", "type": "user_reference", "summary": "Alice"},
                },
            ]
            return streamed_json(
                200, {"oncalls": entries, "limit": 100, "offset": 0, "more": False, "total": None}
            )
        if request.url.path == "/users/PALICE":
            return streamed_json(200, {"user": {"id": "PALICE", "email": "alice@example.com"}})
        return streamed_json(404, {"error": {"message": "Not Found", "code": 2100}})

    on_call = make_on_call(
        None,
        slack,
        clock,
        api_url="https://api.pagerduty.test",
        client_kwargs={"transport": httpx2.MockTransport(handler)},
    )

    assert await on_call.current() == OnCallResult(users=("UALICE",), source="pagerduty", reason=None)
    assert [r.url.path for r in seen] == ["/oncalls", "/users/PALICE"]
    assert seen[0].url.params.get_list("escalation_policy_ids[]") == ["PEP1"]
    assert seen[0].headers["Authorization"] == f"Token token={TOKEN}"


# --------------------------------------------------------------------------- change events

WHEN = datetime(2026, 11, 23, 7, 30, tzinfo=UTC)


def make_events(
    fake: PagerDutyFake, *, routing_key: str = ROUTING_KEY, timeout: float = 3.0
) -> PagerDutyChangeEvents:
    events = PagerDutyChangeEvents(routing_key=routing_key, events_url=fake.base_url, timeout_seconds=timeout)
    _opened.append(events)
    return events


async def send(events: PagerDutyChangeEvents) -> None:
    await events.send(
        summary="CR-2026-0001 started: upgrade PostgreSQL",
        source="changebot",
        timestamp=WHEN,
        custom_details={"change": "CR-2026-0001", "risk": "high"},
        links=[{"href": "https://example.slack.com/archives/C1/p1", "text": "CR-2026-0001 in Slack"}],
    )


async def test_change_event_is_sent(fake: PagerDutyFake) -> None:
    await send(make_events(fake))

    assert fake.change_events == [
        {
            "routing_key": ROUTING_KEY,
            "payload": {
                "summary": "CR-2026-0001 started: upgrade PostgreSQL",
                "source": "changebot",
                "timestamp": "2026-11-23T07:30:00+00:00",
                "custom_details": {"change": "CR-2026-0001", "risk": "high"},
            },
            "links": [{"href": "https://example.slack.com/archives/C1/p1", "text": "CR-2026-0001 in Slack"}],
        }
    ]
    [request] = fake.requests_to("/v2/change/enqueue", "POST")
    assert request.headers["Content-Type"] == "application/json"
    assert "Authorization" not in request.headers  # the routing key travels in the body


async def test_change_event_timestamp_is_converted_to_utc(fake: PagerDutyFake) -> None:
    events = make_events(fake)
    berlin = WHEN.astimezone(datetime.fromisoformat("2026-11-23T08:30:00+01:00").tzinfo)
    await events.send(summary="s", source="changebot", timestamp=berlin, custom_details={}, links=[])
    assert fake.change_events[0]["payload"]["timestamp"] == "2026-11-23T07:30:00+00:00"
    with pytest.raises(ValueError, match="tz-aware"):
        await events.send(
            summary="s", source="changebot", timestamp=WHEN.replace(tzinfo=None), custom_details={}, links=[]
        )


@pytest.mark.parametrize("status", [500, 502, 503])
async def test_server_errors_are_transient(fake: PagerDutyFake, status: int) -> None:
    fake.fail_with(status)
    started = time.monotonic()
    with pytest.raises(PagerDutyTransient, match=f"PagerDuty answered {status}") as caught:
        await send(make_events(fake))
    assert time.monotonic() - started < 1.0  # not retried (and slept on) inside the client
    assert caught.value.retry_after is None
    assert len(fake.requests_to("/v2/change/enqueue")) == 1
    assert fake.change_events == []


async def test_rate_limit_is_transient_and_carries_retry_after(fake: PagerDutyFake) -> None:
    fake.fail_with(429, retry_after=7)
    with pytest.raises(PagerDutyTransient, match="PagerDuty answered 429") as caught:
        await send(make_events(fake))
    assert caught.value.retry_after == 7.0
    assert len(fake.requests_to("/v2/change/enqueue")) == 1  # pagerduty would retry 429 forever

    await send(make_events(fake))  # the outbox's retry then goes through
    assert len(fake.change_events) == 1


async def test_bad_request_is_rejected(fake: PagerDutyFake) -> None:
    fake.fail_with(400)
    with pytest.raises(PagerDutyRejected, match="PagerDuty answered 400"):
        await send(make_events(fake))


async def test_unknown_routing_key_is_rejected(fake: PagerDutyFake) -> None:
    with pytest.raises(PagerDutyRejected, match="routing_key"):
        await send(make_events(fake, routing_key="S" * 32))


async def test_unreachable_or_slow_events_api_is_transient(fake: PagerDutyFake) -> None:
    fake.delay(10)
    started = time.monotonic()
    with pytest.raises(PagerDutyTransient, match=r"did not answer within 0\.5 s"):
        await send(make_events(fake, timeout=0.5))
    assert time.monotonic() - started < 2.0
    fake.delay(0)

    await fake.go_down()
    with pytest.raises(PagerDutyTransient, match="connection refused"):
        await send(make_events(fake))


async def test_events_tls_is_verified(fake: PagerDutyFake, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SSL_CERT_FILE")
    with pytest.raises(PagerDutyTransient, match="TLS certificate verification failed"):
        await send(make_events(fake))
    assert fake.requests == []


async def test_events_url_must_be_https() -> None:
    with pytest.raises(ValueError, match="https"):
        PagerDutyChangeEvents(routing_key=ROUTING_KEY, events_url="http://events.example")


async def test_change_event_through_an_httpx2_mock_transport() -> None:
    bodies: list[dict[str, Any]] = []

    def handler(request: httpx2.Request) -> httpx2.Response:
        assert request.url == "https://events.pagerduty.test/v2/change/enqueue"
        bodies.append(json.loads(request.content))
        if len(bodies) == 1:
            return httpx2.Response(429, headers={"Retry-After": "12"}, json={"status": "throttled"})
        return httpx2.Response(202, json={"status": "success", "message": "Change event processed"})

    events = PagerDutyChangeEvents(
        routing_key=ROUTING_KEY,
        events_url="https://events.pagerduty.test",
        client_kwargs={"transport": httpx2.MockTransport(handler)},
    )
    _opened.append(events)
    with pytest.raises(PagerDutyTransient) as caught:
        await send(events)
    assert caught.value.retry_after == 12.0
    await send(events)
    assert [b["routing_key"] for b in bodies] == [ROUTING_KEY, ROUTING_KEY]
    assert bodies[1]["payload"]["timestamp"] == "2026-11-23T07:30:00+00:00"
