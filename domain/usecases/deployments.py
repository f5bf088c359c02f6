"""Deployments waiting at a change's gate (GitHub's deployment protection rule): take a
request in (naming a change, or filing the mapped standard change), keep it as a row, and
answer it exactly once through its callback as soon as the gate says go or stop.

Every replica may run a pass: rows are claimed under a lease, the callback is sent, and
the answer is stored only if the claim still holds (a version guard). A callback that
failed (5xx, network) is tried again after `retry`; one GitHub refused (4xx) is closed.

Not on the `ChangeService` facade: it drives the facade (its gate, filing and
progress) through the `GateAsker` port, with its own store and GitHub ports."""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Protocol

from domain.clock import Clock
from domain.deployments import (
    HOW_TO_NAME,
    STATUS_EVENTS,
    CallbackResult,
    DeploymentRequest,
    GateStatus,
    GateWait,
    NewGate,
    PendingGate,
    Verdict,
    asked_by,
    find_change_ref,
)
from domain.errors import ChangeNotFound, ConflictsFound
from domain.gate_policy import GithubIntegration, GithubMapping
from domain.gates import GateAnswer, PipelineEvent
from domain.intake import ChangeForm, IntakeRejected
from domain.intents import Intent, IntentKind
from domain.limits import MAX_ACTOR
from domain.model import SYSTEM_ACTOR, AuditAction, AuditEntry, Change, ChangeSource
from domain.ports import Notifier
from domain.read_models import ActionOutcome

log = logging.getLogger(__name__)


class GateAsker(Protocol):
    """What this needs of the `ChangeService` facade."""

    async def get_change(self, *, change_id: str, history: bool = True) -> Change: ...

    async def gate(self, *, change_id: str, service: str | None = None, asked_by: str) -> GateAnswer: ...

    async def file_change(
        self, *, form: ChangeForm, requester: str, source: ChangeSource, team_id: str | None = None
    ) -> Change: ...

    async def report_event(
        self, *, change_id: str, event: PipelineEvent, notes: str, actor: str
    ) -> ActionOutcome: ...


class GateRequestStore(Protocol):
    async def first_delivery(self, delivery_id: str, *, now: datetime) -> bool:
        """True the first time a webhook delivery id is seen."""
        ...

    async def forget_delivery(self, delivery_id: str) -> None:
        """A delivery that could not be acted on: GitHub's redelivery of it is acted on."""
        ...

    async def open(
        self, gate: NewGate, *, now: datetime, lease: timedelta, intents: list[Intent]
    ) -> int | None:
        """Store the request pending; None if its external id is stored already."""
        ...

    async def filed(self, gate_id: int, *, change_id: str | None, comment: str | None) -> None:
        """The standard change filed for a held request (or why none was), releasing it."""
        ...

    async def claim(self, *, now: datetime, lease: timedelta, limit: int) -> list[PendingGate]: ...

    async def release(self, gate: PendingGate, *, retry_at: datetime | None) -> None: ...

    async def finish(
        self,
        gate: PendingGate,
        *,
        status: GateStatus,
        comment: str,
        now: datetime,
        audit: AuditEntry | None,
        intents: list[Intent],
    ) -> bool:
        """Answered: stored only while our claim holds (same version, still pending)."""
        ...

    async def waiting(self, change_id: str) -> list[GateWait]: ...

    async def change_for(self, external_id: str) -> str | None:
        """The change a stored request was gated on (a mapped deployment names none)."""
        ...


class DeploymentCallbacks(Protocol):
    async def answer(
        self, *, callback_url: str, installation_id: int | None, environment: str, state: str, comment: str
    ) -> tuple[CallbackResult, str]:
        """Send the answer; the result and a short detail ("HTTP 204", "timeout")."""
        ...

    async def commit_message(self, *, repository: str, sha: str, installation_id: int | None) -> str | None:
        """The deployed commit's message, or None if GitHub cannot tell us quickly."""
        ...


class CardLinks(Protocol):
    async def __call__(self, change_id: str) -> str | None:
        """A link to the change's card in Slack, if it can be had."""
        ...


class DeploymentGates:
    def __init__(
        self,
        *,
        service: GateAsker,
        store: GateRequestStore,
        callbacks: DeploymentCallbacks,
        github: GithubIntegration,
        clock: Clock,
        notifier: Notifier,
        card_link: CardLinks | None = None,
        lease: timedelta = timedelta(seconds=60),
        retry: timedelta = timedelta(seconds=30),
        batch: int = 50,
    ) -> None:
        self._service = service
        self._store = store
        self._callbacks = callbacks
        self._github = github
        self._clock = clock
        self._notifier = notifier
        self._card_link = card_link
        self._lease = lease
        self._retry = retry
        self._batch = batch

    async def first_delivery(self, delivery_id: str) -> bool:
        """A webhook delivery GitHub sends again (same id) is acted on once."""
        return await self._store.first_delivery(delivery_id, now=self._clock.now())

    async def forget_delivery(self, delivery_id: str) -> None:
        """Acting on the delivery failed (e.g. the database went away): its redelivery counts."""
        await self._store.forget_delivery(delivery_id)

    async def requested(self, request: DeploymentRequest) -> None:
        """A deployment asks to pass: keep it (once per deployment and environment) and
        file the mapped standard change if it names none; a pass answers it."""
        mapping = self._github.mapping_for(repository=request.repository, environment=request.environment)
        service = mapping.services[0] if mapping and len(mapping.services) == 1 else None
        change_id, comment = await self._named_change(request)
        hold = change_id is None and comment is None and mapping is not None
        if change_id is None and comment is None and mapping is None:
            comment = f"No change named in this deployment. {HOW_TO_NAME}."
        gate = NewGate(request=request, change_id=change_id, service=service, comment=comment, hold=hold)
        intents = [Intent(IntentKind.REFRESH_CARDS, change_id)] if change_id else []
        gate_id = await self._store.open(gate, now=self._clock.now(), lease=self._lease, intents=intents)
        if intents:
            self._notifier.wake()
        if gate_id is not None and hold and mapping is not None:
            filed, why = await self._file_standard(request, mapping)
            await self._store.filed(gate_id, change_id=filed, comment=why)
            if filed:
                self._notifier.wake()

    async def _named_change(self, request: DeploymentRequest) -> tuple[str | None, str | None]:
        """The change the deployment names, or why the one it names cannot be used."""
        ref = find_change_ref(request.texts)
        if ref is None and request.sha:  # the event carries no commit message: ask for it
            message = await self._callbacks.commit_message(
                repository=request.repository, sha=request.sha, installation_id=request.installation_id
            )
            ref = find_change_ref([message])
        if ref is None:
            return None, None
        try:
            change = await self._service.get_change(change_id=ref, history=False)
        except ChangeNotFound:
            return None, f"{ref} is not a change changebot knows. {HOW_TO_NAME}."
        return change.id, None

    async def _file_standard(
        self, request: DeploymentRequest, mapping: GithubMapping
    ) -> tuple[str | None, str | None]:
        """File the mapping's standard change for a window starting now."""
        now = int(self._clock.now().timestamp())
        form = ChangeForm(
            title=f"Deploy {request.repository} to {request.environment}"[:75],
            category="standard",
            catalog=mapping.standard,
            impact="low",
            likelihood="low",
            services=list(mapping.services),
            starts_at=now,
            ends_at=now + int(mapping.window.total_seconds()),
            description=f"Filed by the GitHub deployment of {request.ref or 'a ref'} {request.run_url or ''}",
        )
        source = ChangeSource(kind="github", url=request.run_url, ref=(request.ref or None))
        requester = f"github:{request.repository}"[:MAX_ACTOR]
        try:
            try:
                change = await self._service.file_change(form=form, requester=requester, source=source)
            except ConflictsFound as found:  # a pipeline cannot read the warning: listed on the card
                seen = tuple(c.change_id for c in found.conflicts)
                form = replace(form, acknowledged_conflicts=seen)
                change = await self._service.file_change(form=form, requester=requester, source=source)
        except IntakeRejected as refused:
            return None, f"The standard change '{mapping.standard}' could not be filed: {refused}"
        return change.id, None

    async def answer_pending(self) -> int:
        """One pass: claim the requests due, ask each one's gate, send go or stop. The
        number answered (or closed)."""
        answered = 0
        while True:
            claimed = await self._store.claim(now=self._clock.now(), lease=self._lease, limit=self._batch)
            for gate in claimed:
                try:
                    answered += await self._answer(gate)
                except Exception as error:  # one request's trouble must not hold the others
                    log.warning(
                        "answering a deployment failed (%s); trying again later", type(error).__name__
                    )
                    await self._store.release(gate, retry_at=self._clock.now() + self._retry)
            if len(claimed) < self._batch:
                return answered

    async def _answer(self, gate: PendingGate) -> int:
        verdict = await self._verdict(gate)
        if verdict is None:
            await self._store.release(gate, retry_at=None)
            return 0
        result, detail = await self._callbacks.answer(
            callback_url=gate.callback_url,
            installation_id=gate.installation_id,
            environment=gate.environment,
            state=verdict.state.value,
            comment=verdict.comment,
        )
        now = self._clock.now()
        if result is CallbackResult.FAILED:
            log.warning(
                "answering the deployment of %s to %s failed (%s); trying again later",
                gate.repository,
                gate.environment,
                detail,
            )
            await self._store.release(gate, retry_at=now + self._retry)
            return 0
        status = verdict.state if result is CallbackResult.SENT else GateStatus.CLOSED
        details = {
            "repository": gate.repository,
            "environment": gate.environment,
            "state": verdict.state.value,
            "callback": result.value,
            "detail": detail,
        }
        audit = AuditEntry(SYSTEM_ACTOR, AuditAction.GATE_CALLBACK, now, details)
        intents = [Intent(IntentKind.REFRESH_CARDS, gate.change_id)] if gate.change_id else []
        done = await self._store.finish(
            gate, status=status, comment=verdict.comment, now=now, audit=audit, intents=intents
        )
        if done and intents:
            self._notifier.wake()
        return int(done)

    async def _verdict(self, gate: PendingGate) -> Verdict | None:
        if gate.change_id is None:
            return Verdict(GateStatus.REJECTED, gate.comment or self._unfiled(gate))
        try:
            answer = await self._service.gate(
                change_id=gate.change_id,
                service=gate.service,
                asked_by=asked_by(gate.repository, gate.environment)[:200],
            )
        except ChangeNotFound:
            return Verdict(GateStatus.REJECTED, f"{gate.change_id} does not exist. {HOW_TO_NAME}.")
        verdict = Verdict.of(answer.decision, answer.reason)
        link = await self._link(gate.change_id) if verdict else None
        return Verdict(verdict.state, f"{verdict.comment}. Card: {link}") if verdict and link else verdict

    async def _link(self, change_id: str) -> str | None:
        if self._card_link is None:
            return None
        try:
            return await self._card_link(change_id)
        except Exception:  # a link is a courtesy: the answer goes without it
            log.warning("no link to %s's card for its deployment answer", change_id)
            return None

    def _unfiled(self, gate: PendingGate) -> str:
        """A held request whose filing never finished (the bot stopped meanwhile)."""
        mapping = self._github.mapping_for(repository=gate.repository, environment=gate.environment)
        if mapping is None:
            return f"No change for this deployment. {HOW_TO_NAME}."
        return f"The standard change '{mapping.standard}' was not filed (interrupted); re-run the deployment."

    async def status(
        self, *, repository: str, environment: str, state: str, external_id: str, texts: tuple[str, ...]
    ) -> str:
        """A deployment status moves the change it was gated on (or names) as the card's
        buttons do; what happened, for the log."""
        event = STATUS_EVENTS.get(state)
        if event is None:
            return "ignored"
        change_id = await self._store.change_for(external_id) or find_change_ref(texts)
        if change_id is None:
            return "ignored"
        try:
            outcome = await self._service.report_event(
                change_id=change_id,
                event=event,
                notes=f"GitHub deployment to {environment}: {state}",
                actor=f"github:{repository}"[:MAX_ACTOR],
            )
        except ChangeNotFound:
            return "unknown change"
        return outcome.refusal or event.value

    async def waiting(self, change_id: str) -> list[GateWait]:
        return await self._store.waiting(change_id)
