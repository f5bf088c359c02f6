"""Composition root: wires storage, Slack, the scheduler and the use cases together."""

from __future__ import annotations

import asyncio
import gc
import logging
import os
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import aiohttp
import sqlalchemy as sa
from aiohttp import web
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from slack_bolt.async_app import AsyncApp
from slack_bolt.response import BoltResponse
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from adapters.github import GithubDeployments
from adapters.ics import feed_body
from adapters.pagerduty import PagerDutyChangeEvents, PagerDutyOnCall
from adapters.prometheus import metrics_text
from bot.api import Api
from bot.context import AppContext
from bot.directory import SlackDirectory
from bot.gateway import SlackGateway, WaitingAtGate
from bot.github_webhook import github_webhook_handler
from bot.http import build_web_app
from bot.listener_errors import error_handler
from bot.outage import DatabaseOutage
from bot.outbox import PARALLEL_LANES, DeferredWaker, OutboxDispatcher
from bot.priority import AckFirst
from bot.replay import ReplayGuard
from bot.settings import Settings
from domain.clock import Clock, SystemClock
from domain.policy import Policy
from domain.service import ChangeService
from domain.usecases.deployments import DeploymentGates
from handlers import (
    approvals,
    commands,
    editing,
    emergency,
    events,
    home,
    intake,
    progress,
    reschedule,
    review,
)
from modals.text import use_role_labels
from scheduler.deployments import DeploymentTicker, add_deployment_job
from scheduler.jobs import NoticeTicker, build_scheduler
from storage.api_tokens import ApiTokens
from storage.database import READ_ONLY, create_engine, session_factory
from storage.gate_requests import SqlGateRequests
from storage.migrate import HEAD_REVISION, current_revision, upgrade
from storage.models import ProcessedEventRow
from storage.outbox import OutboxStore
from storage.replays import ProcessedRequests
from storage.repository import SqlChangeRepository, insert_ignoring_conflicts

log = logging.getLogger(__name__)
SLACK_TIMEOUT_SECONDS = 10  # a Slack call that takes longer is retried by the outbox


@dataclass
class Changebot:
    settings: Settings
    policy: Policy
    engine: AsyncEngine
    context: AppContext
    bolt: AsyncApp
    web: web.Application
    scheduler: AsyncIOScheduler
    notices: NoticeTicker
    deployments: DeploymentTicker | None = None  # the GitHub App's deployments, when configured
    _started: bool = field(default=False)

    async def start(self, *, run_scheduler: bool = True) -> None:
        client = self.context.gateway.client
        if client.session is None or client.session.closed:
            # One keep-alive pool for every Web API call; without it each call opens (and
            # against slack.com, TLS-handshakes) a connection of its own.
            client.session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=SLACK_TIMEOUT_SECONDS))
        # What is loaded by now (libraries, policy, templates) lives as long as the process:
        # keep it out of the garbage collector's full passes, which would otherwise walk
        # it all and stall every request in flight for tens of milliseconds. (No collect
        # first: it would cost ~0.1 s of start-up for the little garbage imports leave.)
        gc.freeze()
        gc.enable()  # `changebot serve` starts with the collector off (see bot/cli.py)
        if run_scheduler:
            self.scheduler.start()
        self._started = True
        # Catch up on what came due while the bot was down: notices (late or skipped,
        # as the policy says), a digest, CAB agenda or report whose time passed (none on a
        # new database: nothing was missed), then the outbox.
        await self.context.service.process_due_notices()
        await self.context.service.run_digest(catch_up=True)
        await self.context.service.run_cab_agenda(catch_up=True)
        await self.context.service.run_monthly_report(catch_up=True)
        await self.context.service.run_weekly_report(catch_up=True)
        self.context.dispatcher.wake()
        if self.deployments is not None:
            self.deployments.wake()  # deployments left waiting while the bot was down

    async def stop(self) -> None:
        """Graceful: no new passes; the notice pass and the sends under way finish, and
        claimed rows not yet started go back for another replica or the next start."""
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)
        self.notices.stop()
        await self.notices.drain()
        if self.deployments is not None:
            self.deployments.stop()
            await self.deployments.drain()
        self.context.dispatcher.stop()
        await self.context.dispatcher.drain()
        session = self.context.gateway.client.session
        if session is not None and not session.closed:
            await session.close()
        await self.engine.dispose()

    async def health(self) -> dict[str, bool]:
        try:
            async with asyncio.timeout(2):  # connecting included: a dead host may never answer
                async with self.engine.execution_options(**{READ_ONLY: True}).connect() as connection:
                    await connection.execute(sa.text("SELECT 1"))
            database = True
        except Exception:
            database = False
        return {"database": database, "scheduler": bool(self.scheduler.running)}


def build_changebot(
    settings: Settings,
    policy: Policy,
    *,
    clock: Clock | None = None,
    pace: timedelta = timedelta(seconds=1),
    tick_seconds: float = 1.0,
    pagerduty_client_kwargs: dict[str, Any] | None = None,
    lanes: int = PARALLEL_LANES,
) -> Changebot:
    """Wire the bot in named steps (stores, the Slack client and the use cases, the Slack
    adapter, the outbox sender, the listeners, the jobs, the HTTP door) so each reads alone."""
    clock = clock or SystemClock()
    use_role_labels(policy.role_labels)  # how cards and messages name roles
    engine = create_engine(settings.database_url)
    stores = _build_stores(engine)
    client = _slack_client(settings)
    waker = DeferredWaker()
    service = ChangeService(
        repository=stores.repository,
        directory=SlackDirectory(client=client, clock=clock, ttl_seconds=policy.group_cache_seconds),
        notifier=waker,
        clock=clock,
        policy=policy,
        change_events=bool(settings.pagerduty_routing_key),
    )
    gateway = _build_gateway(
        settings,
        policy,
        client=client,
        stores=stores,
        service=service,
        clock=clock,
        waker=waker,
        pagerduty_client_kwargs=pagerduty_client_kwargs,
        waiting=stores.gate_requests.waiting if policy.integrations.github else None,
    )
    deployments = _build_deployments(
        policy, service=service, stores=stores, gateway=gateway, clock=clock, waker=waker
    )
    ack_first = AckFirst()
    dispatcher = _build_dispatcher(
        stores,
        gateway=gateway,
        clock=clock,
        pace=pace,
        lanes=lanes,
        tick_seconds=tick_seconds,
        ack_first=ack_first,
    )
    waker.target = dispatcher
    context = AppContext(service=service, gateway=gateway, dispatcher=dispatcher, policy=policy, clock=clock)
    outage = DatabaseOutage(clock=clock)
    bolt = build_bolt(client=client, context=context, sessions_engine=engine, outage=outage)
    scheduler, notices = build_scheduler(
        dispatcher=dispatcher, service=service, policy=policy, tick_seconds=tick_seconds
    )
    if deployments is not None:
        add_deployment_job(scheduler, deployments)
    bot = Changebot(
        settings=settings,
        policy=policy,
        engine=engine,
        context=context,
        bolt=bolt,
        web=web.Application(),
        scheduler=scheduler,
        notices=notices,
        deployments=deployments,
    )
    bot.web = _build_web(bot, stores=stores, ack_first=ack_first, outage=outage)
    if deployments is not None:
        _mount_github(bot, deployments)
    return bot


@dataclass(frozen=True)
class _Stores:
    """The database side: sessions, the change repository and the outbox."""

    sessions: async_sessionmaker[AsyncSession]
    repository: SqlChangeRepository
    outbox: OutboxStore
    gate_requests: SqlGateRequests


def _mount_github(bot: Changebot, deployments: DeploymentTicker) -> None:
    """`POST /github/webhook`, only when the policy configures the GitHub App (else 404)."""
    github = bot.policy.integrations.github
    assert github is not None
    secret = os.environ.get(github.webhook_secret_env, "")
    if not secret:
        log.error("GitHub webhook secret %s is not set: every delivery is refused", github.webhook_secret_env)
    handler = github_webhook_handler(
        secret=secret, gates=deployments.gates, wake=deployments.wake, clock=bot.context.clock
    )
    bot.web.router.add_post("/github/webhook", handler)


def _build_deployments(
    policy: Policy,
    *,
    service: ChangeService,
    stores: _Stores,
    gateway: SlackGateway,
    clock: Clock,
    waker: DeferredWaker,
) -> DeploymentTicker | None:
    """The GitHub App's deployments waiting at a change's gate, if the policy configures
    it; a change that moves wakes their pass."""
    github = policy.integrations.github
    if github is None:
        return None
    callbacks = GithubDeployments.from_key_file(
        app_id=github.app_id, private_key_file=github.private_key_file, api_url=github.api_url
    )
    gates = DeploymentGates(
        service=service,
        store=stores.gate_requests,
        callbacks=callbacks,
        github=github,
        clock=clock,
        notifier=waker,
        card_link=gateway.card_permalink,
    )
    ticker = DeploymentTicker(gates=gates)
    waker.also.append(ticker.wake)
    return ticker


def _build_stores(engine: AsyncEngine) -> _Stores:
    sessions = session_factory(engine)
    return _Stores(
        sessions=sessions,
        repository=SqlChangeRepository(sessions),
        outbox=OutboxStore(sessions),
        gate_requests=SqlGateRequests(sessions),
    )


def _slack_client(settings: Settings) -> AsyncWebClient:
    return AsyncWebClient(
        token=settings.slack_bot_token,
        base_url=settings.slack_api_url,
        retry_handlers=[],  # the outbox retries, with Retry-After and backoff
        timeout=SLACK_TIMEOUT_SECONDS,
    )


def _build_dispatcher(
    stores: _Stores,
    *,
    gateway: SlackGateway,
    clock: Clock,
    pace: timedelta,
    lanes: int,
    tick_seconds: float,
    ack_first: AckFirst,
) -> OutboxDispatcher:
    """The outbox's sender: paced lanes per channel, each send within Slack's timeout."""
    return OutboxDispatcher(
        store=stores.outbox,
        gateway=gateway,
        clock=clock,
        pace=pace,
        lanes=lanes,
        tick=timedelta(seconds=tick_seconds),
        ack_first=ack_first,
        send_budget=timedelta(seconds=SLACK_TIMEOUT_SECONDS),
    )


def _build_gateway(
    settings: Settings,
    policy: Policy,
    *,
    client: AsyncWebClient,
    stores: _Stores,
    service: ChangeService,
    clock: Clock,
    waker: DeferredWaker,
    pagerduty_client_kwargs: dict[str, Any] | None,
    waiting: WaitingAtGate | None = None,
) -> SlackGateway:
    """The Slack adapter, with PagerDuty beside it: on-call for emergencies, and change
    events when a routing key is set."""
    on_call = PagerDutyOnCall(
        api_token=settings.pagerduty_api_token,
        api_url=settings.pagerduty_api_url,
        escalation_policy_ids=policy.oncall.escalation_policy_ids,
        schedule_ids=policy.oncall.schedule_ids,
        fallback_users=policy.emergency.fallback,
        slack_client=client,
        clock=clock,
        cache_seconds=policy.oncall.cache_seconds,
        client_kwargs=pagerduty_client_kwargs,
    )
    change_events = (
        PagerDutyChangeEvents(
            routing_key=settings.pagerduty_routing_key,
            events_url=settings.pagerduty_events_url,
            client_kwargs=pagerduty_client_kwargs,
        )
        if settings.pagerduty_routing_key
        else None
    )
    return SlackGateway(
        client=client,
        repository=stores.repository,
        outbox=stores.outbox,
        service=service,
        policy=policy,
        clock=clock,
        notifier=waker,
        on_call=on_call,
        change_events=change_events,
        waiting=waiting,
    )


def _build_web(
    bot: Changebot, *, stores: _Stores, ack_first: AckFirst, outage: DatabaseOutage
) -> web.Application:
    """The HTTP door: Slack's events, the REST API for pipelines, the calendar feed,
    metrics and health."""
    context, policy, clock = bot.context, bot.policy, bot.context.clock
    web_app = build_web_app(
        feed=lambda token: calendar_feed(context.service, stores.repository, policy, token),
        metrics=lambda: metrics_text(
            stores.sessions, slack_errors=context.gateway.errors.snapshot(), now=clock.now()
        ),
        bolt=bot.bolt,
        signing_secret=bot.settings.slack_signing_secret,
        clock=clock,
        health=bot.health,
        ack_first=ack_first,
        replays=ReplayGuard(store=ProcessedRequests(stores.sessions), clock=clock),
        outage=outage,
    )
    client, settings = context.gateway.client, bot.settings
    Api(
        service=context.service,
        policy=policy,
        tokens=ApiTokens(stores.sessions),
        repository=stores.repository,
        directory=SlackDirectory(client=client, clock=clock, ttl_seconds=policy.group_cache_seconds),
        client=client,
        clock=clock,
        changes_channel=policy.channels.changes,
        slack_secrets=(settings.slack_bot_token, settings.slack_signing_secret, settings.slack_app_token),
    ).routes(web_app)
    return web_app


def build_bolt(
    *, client: AsyncWebClient, context: AppContext, sessions_engine: AsyncEngine, outage: DatabaseOutage
) -> AsyncApp:
    bolt = AsyncApp(
        client=client,
        request_verification_enabled=False,  # done in front of Bolt, where bad headers get a 401
        process_before_response=False,
        raise_error_for_unhandled_request=True,  # to the error handler: one short line, not Bolt's essay
    )
    sessions = session_factory(sessions_engine)

    @bolt.middleware
    async def once_per_event(body: dict[str, Any], next: Any, resp: BoltResponse) -> BoltResponse | None:
        """Slack redelivers events it thinks we missed (X-Slack-Retry-Num); act on each once."""
        event_id = body.get("event_id") if body.get("type") == "event_callback" else None
        if event_id:
            async with sessions() as session, session.begin():
                inserted = await session.execute(
                    insert_ignoring_conflicts(
                        session,
                        ProcessedEventRow,
                        {"event_id": str(event_id), "received_at": context.clock.now()},
                    )
                )
            if inserted.rowcount == 0:  # type: ignore[attr-defined]
                log.info("event %s already handled; ignoring the retry", event_id)
                return BoltResponse(status=200, body="")
        return await next()

    bolt.error(error_handler(gateway=context.gateway, outage=outage, clock=context.clock))
    for module in (
        commands,
        approvals,
        editing,
        intake,
        events,
        progress,
        reschedule,
        emergency,
        home,
        review,
    ):
        module.register(bolt, context)
    return bolt


async def calendar_feed(
    service: ChangeService, repository: SqlChangeRepository, policy: Policy, token: str
) -> bytes | None:
    """The ICS feed for a valid token, else None."""
    if not await repository.feed_token_valid(token):
        return None
    return await feed_body(service, policy)


class SchemaOutOfDate(Exception):
    """The database is behind the code and auto-migration is off."""


async def migrate(settings: Settings) -> None:
    """Upgrade the schema, or with CHANGEBOT_AUTO_MIGRATE=false check that it is current.
    A current schema (every restart but the first after an upgrade) costs one query."""
    engine = create_engine(settings.database_url)
    try:
        current = await current_revision(engine)
    finally:
        await engine.dispose()
    if current == HEAD_REVISION:
        return
    if settings.changebot_auto_migrate:
        await asyncio.to_thread(upgrade, settings.database_url)
        return
    raise SchemaOutOfDate(
        f"changebot cannot start: the database schema is at {current or 'nothing'}, "
        f"the code needs {HEAD_REVISION}; "
        "run `changebot db upgrade` (or set CHANGEBOT_AUTO_MIGRATE=true)"
    )
