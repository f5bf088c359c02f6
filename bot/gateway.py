"""The one door for Slack writes.

Durable writes are outbox rows turned into Web API calls here; calls bound to a
short-lived trigger (views.open) go straight out through the same client. Errors are
classified once: rate limits and server errors are retried, the rest are final.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from adapters.pagerduty import OnCallResult, PagerDutyRejected, PagerDutyTransient
from adapters.prometheus import SlackErrorCounter
from domain.calendar import CalendarRange
from domain.clock import Clock
from domain.intents import Intent, IntentKind
from domain.policy import Policy
from domain.ports import Notifier
from domain.service import ChangeService
from modals.cards import card_fallback, change_card, decided_message, filed_message
from modals.emergency import on_call_text, post_chase_message, post_decided_message, review_requested_message
from modals.home import home_view
from modals.report import report_blocks, report_text
from modals.review import cab_agenda_blocks, review_chase_message, review_request_message
from modals.text import Mrkdwn, clip, escape, escaped_clip, md, mention, reloaded
from modals.timeline import calendar_blocks, notice_message, progress_message, rescheduled_message
from storage.models import OutboxRow
from storage.outbox import OutboxStore
from storage.repository import SqlChangeRepository

log = logging.getLogger(__name__)

TRANSIENT_ERRORS = frozenset(
    {"ratelimited", "internal_error", "fatal_error", "service_unavailable", "request_timeout"}
)


@dataclass(frozen=True)
class Delivered:
    pass


@dataclass(frozen=True)
class RetryLater:
    error: str
    retry_after: float | None = None  # seconds Slack asked us to wait (429)


@dataclass(frozen=True)
class Undeliverable:
    error: str


Outcome = Delivered | RetryLater | Undeliverable


def freeze_message(payload: dict[str, Any]) -> Mrkdwn:
    by = mention(str(payload.get("by")))
    if payload.get("started"):
        reason = md(": {}", escaped_clip(str(payload["reason"]), 500)) if payload.get("reason") else ""
        return md(
            ":no_entry_sign: {} declared a change freeze{}. No changes but emergencies until it is lifted.",
            by,
            reason,
        )
    return md(":white_check_mark: {} lifted the change freeze.", by)


def gated(text: Mrkdwn) -> Mrkdwn:
    """The one gate for a message's top-level `text`, which Slack parses as mrkdwn and
    shows in notifications: anything not built as `Mrkdwn` (mypy flags it) is escaped."""
    if isinstance(text, Mrkdwn):
        return text
    log.warning("a message text was not built as Mrkdwn; it is sent escaped")
    return escape(text)


class OnCallResolver(Protocol):
    async def current(self) -> OnCallResult: ...


class ChangeEventSender(Protocol):
    async def send(
        self,
        *,
        summary: str,
        source: str,
        timestamp: datetime,
        custom_details: dict[str, Any],
        links: list[dict[str, Any]],
    ) -> None: ...


def classify(exc: BaseException) -> RetryLater | Undeliverable:
    if isinstance(exc, PagerDutyTransient):
        return RetryLater(f"PagerDuty: {exc}", exc.retry_after)
    if isinstance(exc, PagerDutyRejected):
        return Undeliverable(f"PagerDuty: {exc}")
    if isinstance(exc, SlackApiError):
        response = exc.response
        status = getattr(response, "status_code", 200)
        error = str(response.get("error") if isinstance(response.data, dict) else response.data)
        if status == 429:
            header = (response.headers or {}).get("Retry-After") or (response.headers or {}).get(
                "retry-after"
            )
            try:
                retry_after = float(header) if header is not None else 1.0
            except ValueError:
                retry_after = 1.0
            return RetryLater(f"429 {error}", retry_after)
        if status >= 500 or error in TRANSIENT_ERRORS:
            return RetryLater(f"{status} {error}")
        return Undeliverable(f"{status} {error}")
    if isinstance(exc, aiohttp.ClientError | asyncio.TimeoutError | OSError):
        return RetryLater(f"{type(exc).__name__}: {exc}")
    return Undeliverable(f"{type(exc).__name__}: {exc}")


def outbox_metadata(row: OutboxRow) -> dict[str, Any]:
    return {"event_type": "changebot_outbox", "event_payload": {"outbox_id": row.id}}


class SlackGateway:
    def __init__(
        self,
        *,
        client: AsyncWebClient,
        repository: SqlChangeRepository,
        outbox: OutboxStore,
        service: ChangeService,
        policy: Policy,
        clock: Clock,
        notifier: Notifier,
        on_call: OnCallResolver,
        change_events: ChangeEventSender | None = None,
    ) -> None:
        self.client = client
        self.errors = SlackErrorCounter()  # exported on /metrics
        self._on_call = on_call
        self._change_events = change_events
        self._clock = clock
        self._notifier = notifier
        self._repo = repository
        self.repository = repository
        self._outbox = outbox
        self._service = service
        self._policy = policy

    # --- immediate path ---------------------------------------------------------
    async def open_view(self, *, trigger_id: str, view: dict[str, Any]) -> bool:
        """Trigger ids expire in 3 s, so there is no outbox row; one quick retry on 429."""
        for attempt in range(2):
            try:
                await self.client.views_open(trigger_id=trigger_id, view=view)
                return True
            except Exception as exc:
                verdict = classify(exc)
                if attempt == 0 and isinstance(verdict, RetryLater) and (verdict.retry_after or 0) <= 1:
                    await asyncio.sleep(min(verdict.retry_after or 0.2, 1.0))
                    continue
                log.warning("views.open failed: %s", getattr(verdict, "error", exc))
                return False
        return False

    async def ephemeral_now(self, *, channel: str, user: str, text: str) -> None:
        """Straight to Slack: for saying the database (so the outbox) is unreachable."""
        try:
            await self.client.chat_postEphemeral(channel=channel, user=user, text=text)
        except Exception as exc:
            log.warning("chat.postEphemeral failed: %s", getattr(classify(exc), "error", exc))

    # --- outbox path ------------------------------------------------------------
    async def ephemeral(self, *, channel: str, user: str, text: Mrkdwn) -> None:
        """A reply only `user` sees, e.g. why a click was refused. A click in App Home or a
        modal comes from no channel: the reply goes to the user's DM with the bot instead."""
        if not channel:
            await self.message(channel=user, text=text)
            return
        payload = {"user": user, "text": gated(text)}
        await self._enqueue(Intent(IntentKind.EPHEMERAL, None, channel, payload))

    async def message(
        self, *, channel: str, text: Mrkdwn, thread_ts: str | None = None, dedupe_key: str | None = None
    ) -> None:
        payload: dict[str, Any] = {"text": gated(text), "thread_ts": thread_ts}
        await self._enqueue(Intent(IntentKind.MESSAGE, None, channel, payload, dedupe_key=dedupe_key))

    async def _enqueue(self, intent: Intent) -> None:
        await self._outbox.add([intent], now=self._clock.now())
        self._notifier.wake()

    async def deliver(self, row: OutboxRow) -> Outcome:
        try:
            await self._deliver(row)
        except Exception as exc:  # every failure is classified, none escapes
            verdict = classify(exc)
            self.errors.record(row.kind, verdict.error.split(":")[0][:80])
            if isinstance(verdict, Undeliverable) and "not_in_channel" in verdict.error and row.channel:
                joined = await self._join(row.channel)
                if joined:
                    return RetryLater("joined channel, retrying", 0.0)
            return verdict
        return Delivered()

    async def _deliver(self, row: OutboxRow) -> None:
        kind = IntentKind(row.kind)
        if kind in (IntentKind.POST_CARD, IntentKind.DM_CARD):
            await self._post_card(row)
        elif kind is IntentKind.DM_APPROVERS:
            await self._fan_out(row)
        elif kind is IntentKind.REFRESH_CARDS:
            await self._refresh(row)
        elif kind is IntentKind.MESSAGE:
            await self._message(row)
        elif kind is IntentKind.ON_CALL:
            await self._hand_to_on_call(row)
        elif kind is IntentKind.DM_POST_APPROVERS:
            assert row.change_id
            users = await self._service.post_approvers_to_notify(change_id=row.change_id)
            await self._fan_out_messages(row, users)
        elif kind is IntentKind.DM_ROLE:
            users = await self._service.role_members(role=str(row.payload["role"]))
            await self._fan_out_messages(row, users)
        elif kind is IntentKind.HOME:
            home = await self._service.home(user=str(row.channel))
            await self.client.views_publish(
                user_id=str(row.channel), view=home_view(home, zone=self._policy.zone)
            )
        elif kind is IntentKind.REPORT:
            await self._report(row)
        elif kind is IntentKind.PD_CHANGE_EVENT:
            await self._change_event(row)
        elif kind is IntentKind.EPHEMERAL:
            await self.client.chat_postEphemeral(
                channel=str(row.channel),
                user=str(row.payload["user"]),
                text=gated(reloaded(str(row.payload["text"]))),  # gated when enqueued
                blocks=row.payload.get("blocks"),
            )

    async def _post_card(self, row: OutboxRow) -> None:
        assert row.change_id and row.channel
        if await self._repo.has_card(change_id=row.change_id, target=row.channel):
            return  # an earlier attempt got through before the crash
        is_dm = row.kind == IntentKind.DM_CARD.value
        posted = await self._already_posted(row)
        if posted is None:
            change = await self._service.get_change(change_id=row.change_id, history=False)
            response = await self.client.chat_postMessage(
                channel=row.channel,
                text=gated(card_fallback(change)),
                blocks=change_card(change, zone=self._policy.zone, for_approver=is_dm),
                metadata=outbox_metadata(row),
                unfurl_links=False,
            )
            posted = (str(response["channel"]), str(response["ts"]))
        await self._repo.remember_card(
            change_id=row.change_id,
            channel=posted[0],
            ts=posted[1],
            user_id=row.channel if row.kind == IntentKind.DM_CARD.value else None,
        )

    async def _already_posted(self, row: OutboxRow) -> tuple[str, str] | None:
        """For a row whose sender died mid-send: did Slack get it? Our posts carry the
        outbox id in message metadata, so the channel history answers (channel, ts)."""
        if not row.recovered or not row.channel:
            return None
        try:
            channel = row.channel
            if channel.startswith(("U", "W")):
                opened = await self.client.conversations_open(users=channel)
                channel = str(opened["channel"]["id"])
            history = await self.client.conversations_history(
                channel=channel,
                oldest=f"{row.created_at.timestamp() - 60:.6f}",
                include_all_metadata=True,
                limit=200,
            )
        except Exception as exc:
            if isinstance(classify(exc), RetryLater):
                raise  # check again later rather than risk posting twice
            log.warning("outbox %s: could not check history of %s: %s", row.id, row.channel, exc)
            return None
        for message in history.get("messages") or []:
            payload = (message.get("metadata") or {}).get("event_payload") or {}
            if payload.get("outbox_id") == row.id:
                return channel, str(message.get("ts"))
        return None

    async def _fan_out(self, row: OutboxRow) -> None:
        assert row.change_id
        users = await self._service.approvers_to_notify(change_id=row.change_id)
        await self._outbox.add(
            [
                Intent(IntentKind.DM_CARD, row.change_id, user, dedupe_key=f"{row.change_id}:dm:{user}")
                for user in users
            ],
            now=row.due_at,
        )
        if row.payload.get("template"):  # e.g. moved: the cards refresh, each approver is told why
            await self._fan_out_messages(row, users)

    async def _fan_out_messages(self, row: OutboxRow, users: list[str]) -> None:
        """One MESSAGE row per user, keyed so a redelivered fan-out adds nothing."""
        await self._outbox.add(
            [
                Intent(
                    IntentKind.MESSAGE,
                    row.change_id,
                    user,
                    dict(row.payload),
                    dedupe_key=f"{row.dedupe_key or row.id}:{user}",
                )
                for user in users
            ],
            now=row.due_at,
        )

    async def _hand_to_on_call(self, row: OutboxRow) -> None:
        assert row.change_id
        result = await self._on_call.current()
        await self._service.assign_on_call(
            change_id=row.change_id, users=result.users, source=result.source, reason=result.reason
        )

    async def _report(self, row: OutboxRow) -> None:
        """The report as a message, its chart uploaded in the message's thread."""
        assert row.channel
        payload = row.payload
        span = CalendarRange(
            datetime.fromisoformat(payload["start"]),
            datetime.fromisoformat(payload["end"]),
            str(payload["title"]),
        )
        report = await self._service.report(span=span)
        posted = await self._already_posted(row)
        if posted is None:
            response = await self.client.chat_postMessage(
                channel=row.channel,
                text=gated(report_text(report.metrics, title=report.title)),
                blocks=report_blocks(report.metrics, title=report.title, zone=self._policy.zone),
                metadata=outbox_metadata(row),
                unfurl_links=False,
            )
            posted = (str(response["channel"]), str(response["ts"]))
        from adapters.charts import render_report_chart  # matplotlib loads on the first report

        chart = await asyncio.to_thread(
            render_report_chart, report.series, title=report.title, zone=self._policy.zone
        )
        await self.client.files_upload_v2(
            channel=posted[0],
            thread_ts=posted[1],
            content=chart,
            filename="change-report.png",
            title=report.title,
        )

    async def _change_event(self, row: OutboxRow) -> None:
        assert row.change_id
        if self._change_events is None:
            return
        change = await self._service.get_change(change_id=row.change_id, history=False)
        status = str(row.payload["status"])
        links = []
        for copy in await self._repo.card_copies(row.change_id):
            if copy.channel == self._policy.channels.changes:
                permalink = await self.client.chat_getPermalink(channel=copy.channel, message_ts=copy.ts)
                links.append({"href": str(permalink["permalink"]), "text": f"{change.id} in Slack"})
        await self._change_events.send(
            summary=clip(f"{change.id} {change.draft.title}: {status.replace('_', ' ')}", 1024),
            source="changebot",
            timestamp=datetime.fromisoformat(str(row.payload["at"])),
            custom_details={
                "change_id": change.id,
                "status": status,
                "category": change.draft.category.value,
                "risk": change.risk.value,
                "services": list(change.draft.services),
                "implementer": change.implementer,
                "by": row.payload.get("by"),
                "notes": row.payload.get("notes") or "",
                "severity": change.draft.severity,
                "incident": change.draft.incident_ref,
            },
            links=links,
        )

    async def _refresh(self, row: OutboxRow) -> None:
        assert row.change_id
        change = await self._service.get_change(change_id=row.change_id, history=False)
        text = gated(card_fallback(change))
        cards: dict[bool, list[dict[str, Any]]] = {}  # one render per kind, not per copy
        for copy in await self._repo.card_copies(row.change_id):
            for_approver = copy.user_id is not None
            if for_approver not in cards:
                cards[for_approver] = change_card(change, zone=self._policy.zone, for_approver=for_approver)
            await self.client.chat_update(
                channel=copy.channel, ts=copy.ts, text=text, blocks=cards[for_approver]
            )
        # Everyone whose App Home shows this change sees it move too.
        viewers = await self._repo.home_viewers(await self._service.users_touched(change_id=row.change_id))
        await self._outbox.add([Intent(IntentKind.HOME, None, user) for user in viewers], now=row.due_at)

    async def _message(self, row: OutboxRow) -> None:
        assert row.channel
        payload = row.payload
        text, blocks = await self._render(row)
        thread_ts = payload.get("thread_ts") or None
        if payload.get("thread") and row.change_id:
            thread_ts = await self._card_ts(row.change_id, row.channel)
        if await self._already_posted(row) is not None:
            return
        await self.client.chat_postMessage(
            channel=row.channel,
            text=gated(text),
            blocks=blocks,
            thread_ts=thread_ts,
            metadata=outbox_metadata(row),
            unfurl_links=False,
        )

    async def _render(self, row: OutboxRow) -> tuple[Mrkdwn, list[dict[str, Any]] | None]:
        """Messages are rendered when sent, from the CR as it is then."""
        payload = row.payload
        template = payload.get("template")
        if template == "digest":
            span = CalendarRange(
                datetime.fromisoformat(payload["start"]),
                datetime.fromisoformat(payload["end"]),
                str(payload.get("title") or "Change calendar"),
            )
            view = await self._service.calendar(span=span)
            return md("{}", span.title), calendar_blocks(view, zone=self._policy.zone)
        if template == "freeze":
            return freeze_message(payload), None
        if template == "cab_agenda":
            agenda = await self._service.cab_agenda()
            return Mrkdwn("CAB agenda"), cab_agenda_blocks(agenda, zone=self._policy.zone)
        if not (row.change_id and template):
            return reloaded(str(payload.get("text") or "")), payload.get("blocks")  # gated when enqueued
        change = await self._service.get_change(change_id=row.change_id, history=False)
        if template == "filed":
            return filed_message(change), None
        if template == "decided":
            return decided_message(change, payload), None
        if template == "progress":
            return progress_message(change, payload), None
        if template == "rescheduled":
            return rescheduled_message(change, payload, self._policy.zone), None
        if template == "review_request":
            return review_request_message(change, self._policy.zone)
        if template == "review_chase":
            return review_chase_message(change, payload, self._policy.zone)
        if template == "review_done":
            by = mention(str(payload.get("by")))
            return md(
                ":memo: {} wrote the review of *{}*: see `/change show {}`.", by, change.id, change.id
            ), None
        if template == "incident_linked":
            incident = escaped_clip(str(payload.get("incident")), 300)
            by = mention(str(payload.get("by")))
            return md(
                ":boom: {} linked *{}* to incident {}: it counts as a change failure.",
                by,
                change.id,
                incident,
            ), None
        if template == "on_call":
            return on_call_text(change, payload), None
        if template == "post_chase":
            return post_chase_message(change, payload, self._policy.zone)
        if template == "post_decided":
            return post_decided_message(change, payload), None
        if template == "review_requested":
            return review_requested_message(change), None
        if template == "notice":
            return notice_message(
                change,
                key=str(payload["key"]),
                late=bool(payload.get("late")),
                due_at=datetime.fromisoformat(str(payload["due_at"])),
                policy=self._policy,
                actions=bool(payload.get("actions")),
            )
        raise ValueError(f"unknown message template {template!r}")

    async def _card_ts(self, change_id: str, channel: str) -> str | None:
        """Timeline messages go in the thread of the CR card in that channel."""
        for copy in await self._repo.card_copies(change_id):
            if copy.channel == channel:
                return copy.ts
        return None

    async def _join(self, channel: str) -> bool:
        if not channel.startswith("C"):
            return False
        try:
            await self.client.conversations_join(channel=channel)
            return True
        except Exception as exc:
            log.warning("could not join %s: %s", channel, exc)
            return False
