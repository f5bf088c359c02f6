"""Deploy pipelines and a change: filing one as the form does, answering its gate
(go, wait, stop) and moving it as the implementation buttons do when the pipeline
reports started, completed, failed or rolled back."""

from __future__ import annotations

from dataclasses import replace

from domain.gates import (
    EVENT_ACTIONS,
    GateAnswer,
    PipelineEvent,
    decide_gate,
    is_pipeline_principal,
)
from domain.intake import ChangeForm
from domain.limits import MAX_ACTOR
from domain.model import SYSTEM_ACTOR, AuditAction, AuditEntry, Change, ChangeSource
from domain.read_models import ActionOutcome
from domain.start_rules import INSTANT
from domain.usecases.base import Deps, UseCase
from domain.usecases.intake import Intake
from domain.usecases.progress import Progress


class Gates(UseCase):
    def __init__(self, deps: Deps, *, intake: Intake, progress: Progress) -> None:
        super().__init__(deps)
        self._intake = intake
        self._progress = progress

    async def gate(self, *, change_id: str, service: str | None = None, asked_by: str) -> GateAnswer:
        """May a deploy (of `service`) go now? Each answer that differs from the last one
        `asked_by` got for that service is audited, so polling does not flood the trail."""
        change = await self._require(change_id, history=True)
        now = self._clock.now()
        service = (service or "").strip() or None
        freezes = await self._repo.freezes(start=now, end=now + INSTANT)
        answer = decide_gate(change=change, service=service, now=now, policy=self.policy, freezes=freezes)
        if _last_answer(change, service=service, asked_by=asked_by) != (answer.decision.value, answer.reason):
            details = {
                "service": service,
                "decision": answer.decision.value,
                "reason": answer.reason,
                "asked_by": asked_by,
            }
            await self._repo.append_audit(
                change.id, AuditEntry(SYSTEM_ACTOR, AuditAction.GATE_ANSWERED, now, details)
            )
        return answer

    async def file_change(
        self, *, form: ChangeForm, requester: str, source: ChangeSource, team_id: str | None = None
    ) -> Change:
        """File a CR exactly as the form does, saying which pipeline run filed it."""
        return await self._intake.submit_change(
            form=replace(form, source=source), requester=requester, team_id=team_id
        )

    async def report_event(
        self, *, change_id: str, event: PipelineEvent, notes: str, actor: str
    ) -> ActionOutcome:
        """Move the change as the card's button for `event` does, the pipeline `actor`
        ("api:NAME", "github:…") acting as its implementer may."""
        if not is_pipeline_principal(actor) or len(actor) > MAX_ACTOR:
            raise ValueError(
                f"'{actor}' is not a pipeline (api:NAME or github:…, at most {MAX_ACTOR} characters)"
            )
        return await self._progress.record_progress(
            change_id=change_id, user=actor, action=EVENT_ACTIONS[event], notes=notes, pipeline=True
        )


def _last_answer(change: Change, *, service: str | None, asked_by: str) -> tuple[str, str] | None:
    """(decision, reason) of the last gate answer audited for this service and asker."""
    for entry in reversed(change.audit):
        details = entry.details
        if (
            entry.action is AuditAction.GATE_ANSWERED
            and details.get("service") == service
            and details.get("asked_by") == asked_by
        ):
            return str(details.get("decision")), str(details.get("reason"))
    return None
