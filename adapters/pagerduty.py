"""PagerDuty: who is on call right now (REST API v2, mapped to Slack users), and change
events (Events API v2).

The official ``pagerduty`` client (7.x, built on httpx2) is synchronous, so every call
runs in a worker thread (``asyncio.to_thread``). Its own retry loops sleep in that thread
(up to forever on 429), so they are switched off here: the on-call lookup falls back
instead, and change events are retried by the caller's outbox, which honours Retry-After.

TLS: the clients verify certificates with the trust store httpx2 builds when a client is
constructed, which honours ``SSL_CERT_FILE`` / ``SSL_CERT_DIR`` (they replace the system
store, so point them at a bundle that also holds the public roots in production).
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from domain.clock import Clock
from domain.messages import ChangeEvent
from domain.model import Change

if TYPE_CHECKING:
    # pagerduty and httpx2 (~30 ms to import) are imported where they are used: only once
    # PagerDuty is configured does start-up construct a client, and thus load them.
    import httpx2
    import pagerduty

log = logging.getLogger(__name__)

# Statuses the pagerduty client would otherwise retry in-thread (429 without limit).
# A positive per-status count plus a negative total budget makes it hand back the first
# response unchanged (see ApiClient.request in pagerduty 7.2.0).
_NO_RETRY_STATUSES = (429, 500, 502, 503, 504)


def _disable_client_retries(client: pagerduty.ApiClient, timeout_seconds: float) -> None:
    client.retry = dict.fromkeys(_NO_RETRY_STATUSES, 1)
    client.max_http_attempts = -1
    client.max_network_attempts = 0  # a network error raises at once instead of sleeping 3 s, 6 s, ...
    # Sent with every request (connect/read/write/pool); pagerduty annotates it as int.
    client.timeout = timeout_seconds  # type: ignore[assignment]


def _seconds(value: float) -> str:
    return f"{value:g} s"


def _causes(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _network_problem(exc: BaseException) -> tuple[str, bool]:
    """(what went wrong, was it a timeout) for an error raised without an HTTP response."""
    import httpx2  # loaded with pagerduty already, which raised this

    chain = list(_causes(exc))
    for cause in chain:
        if isinstance(cause, ssl.SSLCertVerificationError):
            return f"TLS certificate verification failed ({cause.verify_message or cause})", False
    for cause in chain:
        if isinstance(cause, ssl.SSLError):
            return f"TLS handshake failed ({cause})", False
    for cause in chain:
        if isinstance(cause, TimeoutError | httpx2.TimeoutException):
            return "timed out", True
    for cause in chain:
        if isinstance(cause, ConnectionRefusedError):
            return "connection refused", False
    innermost = chain[-1]
    return f"{type(innermost).__name__}: {innermost}", False


def _response_of(exc: pagerduty.HttpError) -> httpx2.Response:
    response = exc.response
    assert response is not None, "pagerduty.HttpError always carries the response"
    return response


def _status_reason(status: int) -> str:
    notes = {401: "the API token was refused", 403: "access denied", 429: "rate limited"}
    note = notes.get(status)
    return f"PagerDuty answered {status}" + (f" ({note})" if note else "")


# --------------------------------------------------------------------------- on call


@dataclass(frozen=True)
class OnCallResult:
    users: tuple[str, ...]  # Slack user ids
    source: str  # "pagerduty" or "fallback"
    reason: str | None  # why the fallback was used, human-readable


@dataclass(frozen=True)
class _OnCallPerson:
    pagerduty_id: str
    name: str
    email: str | None


class _Fallback(Exception):
    """Internal: give up on PagerDuty with this reason."""


class _Abandoned(Exception):
    """Internal: the caller stopped waiting, so the worker thread stops making requests."""


class PagerDutyOnCall:
    """The Slack users on call now: the lowest escalation level PagerDuty lists for the
    configured escalation policies and schedules. Falls back to ``fallback_users`` (with a
    reason) whenever PagerDuty cannot say, and never raises."""

    def __init__(
        self,
        *,
        api_token: str,
        api_url: str,
        escalation_policy_ids: Sequence[str],
        schedule_ids: Sequence[str],
        fallback_users: Sequence[str],
        slack_client: AsyncWebClient,
        clock: Clock,
        cache_seconds: int = 60,
        timeout_seconds: float = 3.0,
        client_kwargs: dict[str, Any] | None = None,
    ) -> None:
        self._policies = tuple(escalation_policy_ids)
        self._schedules = tuple(schedule_ids)
        self._fallback_users = tuple(fallback_users)
        self._slack = slack_client
        self._clock = clock
        self._ttl = timedelta(seconds=cache_seconds)
        self._timeout = timeout_seconds
        self._cached: tuple[datetime, OnCallResult] | None = None
        self._inflight: asyncio.Task[OnCallResult] | None = None
        self._client: pagerduty.RestApiV2Client | None = None
        self._config_problem: str | None = None
        if not api_token:
            self._config_problem = "PagerDuty is not configured (no API token)"
        elif not (self._policies or self._schedules):
            self._config_problem = "PagerDuty is not configured (no escalation policy or schedule ids)"
        else:
            import pagerduty  # see TYPE_CHECKING above

            try:
                client = pagerduty.RestApiV2Client(
                    api_token, base_url=api_url or None, **(client_kwargs or {})
                )
            except pagerduty.UrlError as exc:
                self._config_problem = f"PagerDuty is not configured properly: {exc} (got {api_url!r})"
            else:
                _disable_client_retries(client, timeout_seconds)
                self._client = client

    async def current(self) -> OnCallResult:
        try:
            if self._config_problem is not None:
                return self._fallback(self._config_problem)
            cached = self._cached
            if cached is not None and self._clock.now() < cached[0] + self._ttl:
                return cached[1]
            # Concurrent callers share one lookup instead of each asking PagerDuty.
            if self._inflight is None or self._inflight.done():
                self._inflight = asyncio.get_running_loop().create_task(self._lookup())
            return await asyncio.shield(self._inflight)
        except Exception as exc:  # the contract is "never raise": the caller always gets someone
            log.exception("on-call lookup failed unexpectedly")
            return self._fallback(f"the on-call lookup failed unexpectedly ({type(exc).__name__}: {exc})")

    def close(self) -> None:
        """Close the HTTP connections (at shutdown)."""
        if self._client is not None:
            self._client.close()

    def _fallback(self, reason: str) -> OnCallResult:
        return OnCallResult(users=self._fallback_users, source="fallback", reason=reason)

    async def _lookup(self) -> OnCallResult:
        stop = threading.Event()
        phase = "PagerDuty"
        try:
            async with asyncio.timeout(self._timeout):
                people = await asyncio.to_thread(self._on_call_people, stop)
                phase = "Slack"
                users = await self._slack_users(people)
        except TimeoutError:
            stop.set()
            reason = f"{phase} did not answer within {_seconds(self._timeout)}"
        except _Fallback as exc:
            reason = str(exc)
        else:
            result = OnCallResult(users=users, source="pagerduty", reason=None)
            self._cached = (self._clock.now(), result)
            return result
        log.warning("on call: using the fallback users: %s", reason)
        return self._fallback(reason)

    # ----------------------------------------------------------- PagerDuty (worker thread)

    def _on_call_people(self, stop: threading.Event) -> list[_OnCallPerson]:
        import pagerduty  # loaded by __init__ already: there is a client

        try:
            return self._read_pagerduty(stop)
        except pagerduty.HttpError as exc:
            response = _response_of(exc)
            status = response.status_code
            if response.is_success:
                raise _Fallback(f"PagerDuty sent an unexpected answer ({exc})") from exc
            raise _Fallback(_status_reason(status)) from exc
        except pagerduty.Error as exc:
            problem, timed_out = _network_problem(exc)
            if timed_out:
                raise _Fallback(f"PagerDuty did not answer within {_seconds(self._timeout)}") from exc
            raise _Fallback(f"could not reach PagerDuty: {problem}") from exc
        except pagerduty.UrlError as exc:
            raise _Fallback(f"PagerDuty request refused by the client: {exc}") from exc

    def _read_pagerduty(self, stop: threading.Event) -> list[_OnCallPerson]:
        client = self._client
        assert client is not None
        entries: list[dict[str, Any]] = []
        # One query per filter kind: we want entries matching either list, and a single query
        # with both filters would (as far as the API docs say) have to match both.
        for key, ids in (("escalation_policy_ids", self._policies), ("schedule_ids", self._schedules)):
            if not ids:
                continue
            params = {key: list(ids), "earliest": "true", "include": ["users"]}
            for entry in client.iter_all("/oncalls", params=params):
                if stop.is_set():
                    raise _Abandoned
                entries.append(entry)
        levels = [e["escalation_level"] for e in entries if isinstance(e.get("escalation_level"), int)]
        if not levels:
            raise _Fallback(f"PagerDuty lists nobody on call for {self._describe_targets()}")
        lowest = min(levels)
        people: dict[str, _OnCallPerson] = {}
        for entry in entries:
            user = entry.get("user") or {}
            user_id = str(user.get("id") or "")
            if entry.get("escalation_level") != lowest or not user_id or user_id in people:
                continue
            email = user.get("email")
            if not email:
                if stop.is_set():
                    raise _Abandoned
                full = client.rget(f"/users/{user_id}")
                email = full.get("email") if isinstance(full, dict) else None
            name = str(user.get("summary") or user.get("name") or user_id)
            people[user_id] = _OnCallPerson(
                pagerduty_id=user_id, name=name, email=str(email) if email else None
            )
        return list(people.values())

    def _describe_targets(self) -> str:
        parts = []
        if self._policies:
            parts.append("escalation policies " + ", ".join(self._policies))
        if self._schedules:
            parts.append("schedules " + ", ".join(self._schedules))
        return " and ".join(parts)

    # ----------------------------------------------------------------------- Slack

    async def _slack_users(self, people: list[_OnCallPerson]) -> tuple[str, ...]:
        outcomes = await asyncio.gather(*(self._slack_id(person) for person in people))
        found: list[str] = []
        misses: list[str] = []
        for slack_id, problem in outcomes:
            if slack_id is not None:
                if slack_id not in found:
                    found.append(slack_id)
            else:
                misses.append(problem)
        if misses:
            log.warning("on call: not every PagerDuty user maps to Slack: %s", "; ".join(misses))
        if not found:
            raise _Fallback(f"nobody on call maps to a Slack user ({'; '.join(misses)})")
        return tuple(found)

    async def _slack_id(self, person: _OnCallPerson) -> tuple[str | None, str]:
        if person.email is None:
            return None, f"{person.name} ({person.pagerduty_id}) has no email in PagerDuty"
        try:
            response = await self._slack.users_lookupByEmail(email=person.email)
        except SlackApiError as exc:
            error = exc.response.get("error") if isinstance(exc.response.data, dict) else None
            if error == "users_not_found":
                return None, f"{person.email} not found"
            return None, f"{person.email}: Slack answered {error or exc.response.status_code}"
        except (OSError, TimeoutError) as exc:
            return None, f"{person.email}: Slack unreachable ({type(exc).__name__}: {exc})"
        user = response.get("user") or {}
        if not isinstance(user, dict) or not user.get("id") or user.get("deleted"):
            return None, f"{person.email} is not an active Slack user"
        return str(user["id"]), ""


# --------------------------------------------------------------------------- change events


class PagerDutyEventError(Exception):
    """A change event was not accepted."""


class PagerDutyTransient(PagerDutyEventError):
    """Worth retrying: timeout, network or TLS trouble, 5xx, 429 (``retry_after`` seconds,
    when PagerDuty said)."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class PagerDutyRejected(PagerDutyEventError):
    """PagerDuty refused the event (a 4xx other than 408/429): retrying will not help."""


def _retry_after(headers: Any) -> float | None:
    value = headers.get("retry-after") if headers is not None else None
    try:
        seconds = float(value) if value is not None else None
    except ValueError:  # an HTTP-date; the caller's backoff applies
        return None
    return max(0.0, seconds) if seconds is not None else None


@dataclass(frozen=True)
class ChangeEventBody:
    """What a change event says about a CR; the links are added by who sends it."""

    summary: str
    timestamp: datetime
    custom_details: dict[str, Any]


def change_event_body(change: Change, event: ChangeEvent) -> ChangeEventBody:
    """The event for `change` reaching `event.status`, summarised as PagerDuty shows it."""
    status = event.status.value
    summary = f"{change.id} {change.draft.title}: {status.replace('_', ' ')}"
    return ChangeEventBody(
        summary=summary if len(summary) <= 1024 else summary[:1023].rstrip() + "…",
        timestamp=event.at,
        custom_details={
            "change_id": change.id,
            "status": status,
            "category": change.draft.category.value,
            "risk": change.risk.value,
            "services": list(change.draft.services),
            "implementer": change.implementer,
            "by": event.by,
            "notes": event.notes or "",
            "severity": change.draft.severity,
            "incident": change.draft.incident_ref,
        },
    )


class PagerDutyChangeEvents:
    """Sends change events to the Events API v2 (``POST /v2/change/enqueue``)."""

    def __init__(
        self,
        *,
        routing_key: str,
        events_url: str,
        client_kwargs: dict[str, Any] | None = None,
        timeout_seconds: float = 10.0,
    ) -> None:
        if not routing_key:
            raise ValueError("PagerDuty change events need a routing key (PAGERDUTY_ROUTING_KEY)")
        import pagerduty  # see TYPE_CHECKING above

        try:
            client = pagerduty.EventsApiV2Client(
                routing_key, base_url=events_url or None, **(client_kwargs or {})
            )
        except pagerduty.UrlError as exc:
            raise ValueError(f"PAGERDUTY_EVENTS_URL {events_url!r}: {exc}") from exc
        _disable_client_retries(client, timeout_seconds)
        self._client = client
        self._timeout = timeout_seconds

    def close(self) -> None:
        """Close the HTTP connections (at shutdown)."""
        self._client.close()

    async def send(
        self,
        *,
        summary: str,
        source: str,
        timestamp: datetime,
        custom_details: dict[str, Any],
        links: list[dict[str, Any]],
    ) -> None:
        import pagerduty  # loaded by __init__ already

        if timestamp.tzinfo is None:
            raise ValueError("change event timestamps must be tz-aware")
        # pagerduty 7.2.0 builds a default timestamp with a broken expression
        # (datetime.timezone on the datetime class), so it is always passed explicitly.
        payload = {
            "summary": summary,
            "source": source,
            "timestamp": timestamp.astimezone(UTC).isoformat(),
            "custom_details": custom_details,
        }
        try:
            # The worker's own request timeout normally fires first; this bounds the wait
            # even if it does not (the thread may then still finish the request).
            async with asyncio.timeout(self._timeout + 1.0):
                await asyncio.to_thread(self._client.send_change_event, payload=payload, links=links)
        except TimeoutError as exc:
            raise PagerDutyTransient(f"PagerDuty did not answer within {_seconds(self._timeout)}") from exc
        except pagerduty.HttpError as exc:
            response = _response_of(exc)
            status = response.status_code
            detail = response.text[:200]
            if status == 429 or status == 408 or status >= 500:
                raise PagerDutyTransient(
                    f"PagerDuty answered {status}: {detail}", _retry_after(response.headers)
                ) from exc
            if response.is_success:  # e.g. a redirect or an unreadable body
                raise PagerDutyTransient(f"PagerDuty sent an unexpected answer ({exc})") from exc
            raise PagerDutyRejected(f"PagerDuty answered {status}: {detail}") from exc
        except pagerduty.Error as exc:
            problem, timed_out = _network_problem(exc)
            if timed_out:
                raise PagerDutyTransient(
                    f"PagerDuty did not answer within {_seconds(self._timeout)}"
                ) from exc
            raise PagerDutyTransient(f"could not reach PagerDuty: {problem}") from exc
        except pagerduty.UrlError as exc:
            raise PagerDutyRejected(f"PagerDuty request refused by the client: {exc}") from exc
