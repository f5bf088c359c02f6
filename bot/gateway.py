"""The one door for Slack writes.

Durable writes are outbox rows turned into Web API calls here; calls bound to a
short-lived trigger (views.open) go straight out through the same client. Errors are
classified once: rate limits and server errors are retried, the rest are final.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol, TypeVar

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from adapters.pagerduty import OnCallResult, PagerDutyRejected, PagerDutyTransient, change_event_body
from adapters.prometheus import SlackErrorCounter
from domain.approval_chase import APPROVAL_DEADLINE, APPROVAL_REMINDER
from domain.clock import Clock
from domain.deployments import GateWait
from domain.enums import Category
from domain.gates import is_pipeline_principal
from domain.intents import DM_USER, Intent, IntentKind
from domain.messages import (
    ApprovalChase,
    BoardNews,
    CabAgendaPost,
    CalendarDigest,
    ChangeEvent,
    ChangeMessage,
    ChangeNews,
    Ephemeral,
    Escalating,
    Message,
    PostChase,
    ReportPost,
    Text,
)
from domain.model import Change
from domain.policy import Policy
from domain.ports import Notifier
from domain.quiet_hours import is_reminder
from domain.service import ChangeService
from modals.cards import card_fallback, change_card
from modals.emergency import DmReader
from modals.home import home_view
from modals.messages import SendTime, render_message
from modals.text import Mrkdwn, escape, reloaded
from storage.models import OutboxRow
from storage.outbox import OutboxStore, row_message
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


def gated(text: Mrkdwn) -> Mrkdwn:
    """The one gate for a message's top-level `text`, which Slack parses as mrkdwn and
    shows in notifications: anything not built as `Mrkdwn` (mypy flags it) is escaped."""
    if isinstance(text, Mrkdwn):
        return text
    log.warning("a message text was not built as Mrkdwn; it is sent escaped")
    return escape(text)


M = TypeVar("M")


def expect(row: OutboxRow, message: Message | None, kind: type[M]) -> M:
    """The row's message, which its kind says is a `kind`."""
    if not isinstance(message, kind):
        raise ValueError(f"a {row.kind} row holds {type(message).__name__}, not {kind.__name__}")
    return message


Postable = ChangeNews | BoardNews | Text  # what chat.postMessage sends


def postable(row: OutboxRow, message: Message | None) -> Postable:
    if message is None or isinstance(message, ChangeEvent | Ephemeral):
        raise ValueError(f"a {row.kind} row holds {type(message).__name__}, not a message to post")
    return message


class WaitingAtGate(Protocol):
    """The deployments waiting at a change's gate (GitHub), for its card."""

    async def __call__(self, change_id: str) -> Sequence[GateWait]: ...


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
        waiting: WaitingAtGate | None = None,
    ) -> None:
        self.client = client
        self._waiting = waiting
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
        reply = Ephemeral(user=user, text=gated(text))
        await self._enqueue(Intent(IntentKind.EPHEMERAL, None, channel, reply))

    async def message(
        self, *, channel: str, text: Mrkdwn, thread_ts: str | None = None, dedupe_key: str | None = None
    ) -> None:
        said = Text(text=gated(text), thread_ts=thread_ts)
        await self._enqueue(Intent(IntentKind.MESSAGE, None, channel, said, dedupe_key=dedupe_key))

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
        if row.channel and is_pipeline_principal(row.channel):
            return  # a pipeline (github:…, api:…) filed or moved it: nobody in Slack to tell
        message = row_message(row)
        if kind in (IntentKind.POST_CARD, IntentKind.DM_CARD):
            await self._post_card(row)
        elif kind is IntentKind.DM_APPROVERS:
            await self._fan_out(row, message)
        elif kind is IntentKind.REFRESH_CARDS:
            await self._refresh(row)
        elif kind is IntentKind.MESSAGE:
            if await self._still_asked(row, message):
                await self._message(row, postable(row, message))
        elif kind is IntentKind.ON_CALL:
            await self._hand_to_on_call(row)
        elif kind is IntentKind.DM_POST_APPROVERS:
            assert row.change_id
            users = await self._service.post_approvers_to_notify(change_id=row.change_id)
            if message is None:  # declared: each post-approver gets the card at once
                await self._fan_out_cards(row, users)
            else:
                await self._fan_out_messages(row, postable(row, message), users)
        elif kind is IntentKind.DM_ROLE:
            role = expect(row, message, Escalating).role
            if role is None:
                raise ValueError(f"a {row.kind} row names no role")
            users = await self._service.role_members(role=role)
            await self._fan_out_messages(row, postable(row, message), users)
        elif kind is IntentKind.HOME:
            home = await self._service.home(user=str(row.channel))
            await self.client.views_publish(
                user_id=str(row.channel), view=home_view(home, zone=self._policy.zone)
            )
        elif kind is IntentKind.REPORT:
            await self._report(row, expect(row, message, ReportPost))
        elif kind is IntentKind.PD_CHANGE_EVENT:
            await self._change_event(row, expect(row, message, ChangeEvent))
        elif kind is IntentKind.EPHEMERAL:
            reply = expect(row, message, Ephemeral)
            await self.client.chat_postEphemeral(
                channel=str(row.channel),
                user=reply.user,
                text=gated(reloaded(reply.text)),  # gated when enqueued
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
                blocks=change_card(
                    change,
                    zone=self._policy.zone,
                    for_approver=is_dm,
                    waiting=await self._gate_waits(change.id),
                    reader=(await self._readers(change))(row.channel if is_dm else None),
                    approvers=await self._service.who_can_approve(change=change),
                    viewer=row.channel if is_dm else None,
                    freezes=await self._service.card_freezes(change=change),
                ),
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

    async def _fan_out(self, row: OutboxRow, message: Message | None) -> None:
        assert row.change_id
        users = await self._service.approvers_to_notify(change_id=row.change_id)
        await self._fan_out_cards(row, users)
        if message is not None:  # e.g. moved: the cards refresh, each approver is told why
            await self._fan_out_messages(row, postable(row, message), users)

    async def _fan_out_cards(self, row: OutboxRow, users: list[str]) -> None:
        """One DM_CARD row per user, keyed so each person gets one copy of the card."""
        assert row.change_id
        await self._outbox.add(
            [
                Intent(IntentKind.DM_CARD, row.change_id, user, dedupe_key=f"{row.change_id}:dm:{user}")
                for user in users
            ],
            now=row.due_at,
        )

    async def _fan_out_messages(self, row: OutboxRow, message: Postable, users: list[str]) -> None:
        """One MESSAGE row per user, keyed so a redelivered fan-out adds nothing; a chase
        (not a first request) waits for each reader in quiet hours, as the domain decides."""
        holds: dict[str, datetime] = {}
        if row.change_id and is_reminder(message):
            holds = await self._service.quiet_holds(change_id=row.change_id, users=users)
        await self._outbox.add(
            [
                Intent(
                    IntentKind.MESSAGE,
                    row.change_id,
                    user,
                    message,
                    dedupe_key=f"{row.dedupe_key or row.id}:{user}",
                    not_before=holds.get(user),
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

    async def _report(self, row: OutboxRow, message: ReportPost) -> None:
        """The report as a message, its chart uploaded in the message's thread."""
        assert row.channel
        report = await self._service.report(span=message.span, previous=message.previous)
        posted = await self._already_posted(row)
        if posted is None:
            text, blocks = render_message(message, SendTime(self._policy, report=report))
            response = await self.client.chat_postMessage(
                channel=row.channel,
                text=gated(text),
                blocks=blocks,
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

    async def _change_event(self, row: OutboxRow, event: ChangeEvent) -> None:
        assert row.change_id
        if self._change_events is None:
            return
        change = await self._service.get_change(change_id=row.change_id, history=False)
        body = change_event_body(change, event)
        links = []
        for copy in await self._repo.card_copies(row.change_id):
            if copy.channel == self._policy.channels.changes:
                permalink = await self.client.chat_getPermalink(channel=copy.channel, message_ts=copy.ts)
                links.append({"href": str(permalink["permalink"]), "text": f"{change.id} in Slack"})
        await self._change_events.send(
            summary=body.summary,
            source="changebot",
            timestamp=body.timestamp,
            custom_details=body.custom_details,
            links=links,
        )

    async def _refresh(self, row: OutboxRow) -> None:
        assert row.change_id
        change = await self._service.get_change(change_id=row.change_id, history=False)
        text = gated(card_fallback(change))
        # One render per kind of copy, not per copy: the channel's, the approvers', for an
        # emergency each reader's own (it carries only the buttons they may use), and each
        # approver's who decided (their decision instead of the buttons).
        cards: dict[tuple[bool, DmReader | None, str | None], list[dict[str, Any]]] = {}
        waiting = await self._gate_waits(change.id)
        readers = await self._readers(change)
        approvers = await self._service.who_can_approve(change=change)
        freezes = await self._service.card_freezes(change=change)
        deciders = {entry.user for entry in (*change.approvals, *change.post_approvals)}
        for copy in await self._repo.card_copies(row.change_id):
            for_approver = copy.user_id is not None
            viewer = copy.user_id if copy.user_id in deciders else None
            key = (for_approver, readers(copy.user_id), viewer)
            if key not in cards:
                cards[key] = change_card(
                    change,
                    zone=self._policy.zone,
                    for_approver=for_approver,
                    waiting=waiting,
                    reader=key[1],
                    approvers=approvers,
                    viewer=viewer,
                    freezes=freezes,
                )
            await self.client.chat_update(channel=copy.channel, ts=copy.ts, text=text, blocks=cards[key])
        # Everyone whose App Home shows this change sees it move too.
        viewers = await self._repo.home_viewers(await self._service.users_touched(change_id=row.change_id))
        await self._outbox.add([Intent(IntentKind.HOME, None, user) for user in viewers], now=row.due_at)

    async def _readers(self, change: Change) -> Callable[[str | None], DmReader | None]:
        """Who reads an emergency's DM copy and what they may still decide; None for the
        channel's copy and for other changes (their DM copies are drawn alike)."""
        if change.draft.category is not Category.EMERGENCY:
            return lambda user: None
        deciders = set(await self._service.approvers_to_notify(change_id=change.id))
        post = set(await self._service.post_approvers_to_notify(change_id=change.id))
        return lambda user: None if user is None else DmReader(user, user in deciders, user in post)

    async def card_permalink(self, change_id: str) -> str | None:
        """The link to the change's card in the changes channel (a Slack read, no write)."""
        for copy in await self._repo.card_copies(change_id):
            if copy.channel == self._policy.channels.changes:
                found = await self.client.chat_getPermalink(channel=copy.channel, message_ts=copy.ts)
                return str(found["permalink"])
        return None

    async def _gate_waits(self, change_id: str) -> Sequence[GateWait]:
        return await self._waiting(change_id) if self._waiting is not None else ()

    async def _still_asked(self, row: OutboxRow, message: object) -> bool:
        """A reminder to one approver (held for their morning, or sent late) goes only if they
        can still sign: one who decided meanwhile is not asked again."""
        if not row.change_id or not isinstance(message, ApprovalChase | PostChase) or message.role:
            return True
        if not DM_USER.match(row.channel or ""):
            return True  # the change's thread in a channel: told whoever has signed
        if isinstance(message, ApprovalChase):
            if message.key not in (APPROVAL_REMINDER, APPROVAL_DEADLINE):
                return True  # the requester told the window opened unapproved
            asked = await self._service.approvers_to_notify(change_id=row.change_id)
        else:
            asked = await self._service.post_approvers_to_notify(change_id=row.change_id)
        return row.channel in asked

    async def _message(self, row: OutboxRow, message: Postable) -> None:
        assert row.channel
        if isinstance(message, Text):
            text, blocks, thread_ts = reloaded(message.text), None, message.thread_ts  # gated when enqueued
        else:
            text, blocks = render_message(message, await self._send_time(row, message))
            thread_ts = None
        if isinstance(message, ChangeMessage) and message.thread and row.change_id:
            thread_ts = await self._card_ts(row.change_id, row.channel)
        if await self._already_posted(row) is not None:
            return
        await self.client.chat_postMessage(
            channel=row.channel,
            text=gated(text),
            blocks=blocks,
            thread_ts=thread_ts or None,
            metadata=outbox_metadata(row),
            unfurl_links=False,
        )

    async def _send_time(self, row: OutboxRow, message: ChangeNews | BoardNews) -> SendTime:
        """Messages are rendered when sent, from the CR (or the calendar, the agenda) as it is then."""
        if isinstance(message, CalendarDigest):
            return SendTime(self._policy, calendar=await self._service.calendar(span=message.span))
        if isinstance(message, CabAgendaPost):
            return SendTime(self._policy, agenda=await self._service.cab_agenda())
        if isinstance(message, ReportPost):
            return SendTime(
                self._policy, report=await self._service.report(span=message.span, previous=message.previous)
            )
        if isinstance(message, ChangeMessage) and row.change_id:
            change = await self._service.get_change(change_id=row.change_id, history=False)
            return SendTime(self._policy, change=change)
        return SendTime(self._policy)

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
