"""Correcting a filed change: who may, in which states, and what an edit changed.

An approval binds to what the approvers judged: the window, the services, the category,
impact and likelihood (hence the risk), the plans, the expected downtime, the procedure
and the implementer. Editing any of those after an approval voids it and asks again; a fix
of the title, the description or the justification does not. Pure: the use case reads,
resolves roles and writes."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from domain.enums import Category, Status
from domain.intake import ChangeForm
from domain.model import AuditAction, Change, ChangeDraft

# A change not started may be corrected; a rejected one or one sent back is resubmitted by it.
EDITABLE = frozenset({Status.PENDING_APPROVAL, Status.APPROVED, Status.REJECTED, Status.CHANGES_REQUESTED})
RESUBMITTED = frozenset({Status.REJECTED, Status.CHANGES_REQUESTED})
# The policy role whose members may edit anyone's change, when the policy names it.
CHANGE_MANAGER_ROLE = "change_manager"


@dataclass(frozen=True)
class FieldChange:
    """One field an edit changed: its label, before and after as people read them, and
    whether the approvers judged it. Long texts say "changed" (the audit keeps both)."""

    field: str
    label: str
    before: str
    after: str
    judged: bool
    long: bool = False

    def line(self) -> str:
        if self.long:
            verb = "added" if not self.before else "removed" if not self.after else "changed"
            return f"{self.label} {verb}"
        return f"{self.label}: {self.before or 'none'} → {self.after or 'none'}"


def edit_refusal(change: Change, user: str, *, manager: bool, has_manager_role: bool) -> str | None:
    """Why `user` may not edit `change` (None: they may). Only its requester may, or a
    change manager when the policy has that role; only before it started; never an
    emergency (its post-approval judges what was done)."""
    if user != change.requester and not manager:
        who = "the requester or a change manager" if has_manager_role else "the requester"
        return f"only {who} can edit {change.id}"
    if change.draft.category is Category.EMERGENCY:
        return (
            f"{change.id} is an emergency change: its post-approval judges what was done, so it is not edited"
        )
    if change.status not in EDITABLE:
        state = change.status.value.replace("_", " ")
        if change.status is Status.CANCELLED:
            return f"{change.id} is cancelled: file a new change instead"
        return f"{change.id} is {state}: a change can only be edited before it starts"
    return None


def standing_exception(change: Change) -> str | None:
    """The reason of the exception its steps carry, if the change is outside its windows."""
    if not any(step.purpose == "exception" for step in change.steps):
        return None
    asked = [e for e in change.audit if e.action is AuditAction.EXCEPTION_REQUESTED]
    return str(asked[-1].details.get("reason", "")) if asked else None


def form_of(change: Change) -> ChangeForm:
    """The form as the change was filed (or last edited): what the edit form shows first."""
    draft = change.draft
    exception_reason = standing_exception(change)
    return ChangeForm(
        title=draft.title,
        category=draft.category.value,
        catalog=draft.catalog_id,
        impact=draft.impact.value,
        likelihood=draft.likelihood.value,
        services=list(draft.services),
        starts_at=int(draft.starts_at.timestamp()),
        ends_at=int(draft.ends_at.timestamp()),
        description=draft.description,
        justification=draft.justification,
        implementation_plan=draft.implementation_plan,
        rollback_plan=draft.rollback_plan,
        test_plan=draft.test_plan,
        downtime=str(draft.downtime_minutes) if draft.downtime_minutes else None,
        implementer=draft.implementer,
        exception_requested=exception_reason is not None,
        exception_reason=exception_reason,
        links=draft.links,
        success_criteria=draft.success_criteria,
        dependencies=draft.dependencies,
        stakeholders=list(draft.stakeholders),
        rollback_duration=str(draft.rollback_minutes) if draft.rollback_minutes else None,
        rollback_triggers=draft.rollback_triggers,
    )


def window_text(starts_at: datetime, ends_at: datetime, zone: ZoneInfo) -> str:
    """ "2026-11-25 09:00–10:00 CET" (the end's date too when it is another day)."""
    start, end = starts_at.astimezone(zone), ends_at.astimezone(zone)
    until = f"{end:%H:%M}" if end.date() == start.date() else f"{end:%Y-%m-%d %H:%M}"
    return f"{start:%Y-%m-%d %H:%M}–{until} {end:%Z}"


_SHORT = (  # field, label, judged
    ("title", "Title", False),
    ("category", "Category", True),
    ("catalog_id", "Procedure", True),
    ("impact", "Impact", True),
    ("likelihood", "Likelihood", True),
    ("downtime_minutes", "Downtime (minutes)", True),
    ("rollback_minutes", "Rollback takes (minutes)", True),
)
_LONG = (
    ("description", "Description", False),
    ("justification", "Justification", False),
    ("implementation_plan", "Implementation plan", True),
    ("rollback_plan", "Rollback plan", True),
    ("test_plan", "Test plan", True),
    ("success_criteria", "Success criteria", True),
    ("dependencies", "Dependencies", True),
    ("rollback_triggers", "Rollback triggers", True),
)


def _text(value: object) -> str:
    return str(getattr(value, "value", value)) if value is not None else ""


def draft_changes(
    old: ChangeDraft, new: ChangeDraft, *, old_risk: str, new_risk: str, zone: ZoneInfo
) -> list[FieldChange]:
    """What an edit changed, in the form's order."""
    changes = [
        FieldChange(name, label, _text(getattr(old, name)), _text(getattr(new, name)), judged)
        for name, label, judged in _SHORT
        if getattr(old, name) != getattr(new, name)
    ]
    if old_risk != new_risk:
        changes.append(FieldChange("risk", "Risk", old_risk, new_risk, judged=True))
    if old.services != new.services:
        changes.append(
            FieldChange("services", "Services", ", ".join(old.services), ", ".join(new.services), judged=True)
        )
    if (old.starts_at, old.ends_at) != (new.starts_at, new.ends_at):
        before = window_text(old.starts_at, old.ends_at, zone)
        changes.append(
            FieldChange(
                "window", "Window", before, window_text(new.starts_at, new.ends_at, zone), judged=True
            )
        )
    if old.implementer != new.implementer:
        before, after = old.implementer or "", new.implementer or ""
        changes.append(FieldChange("implementer", "Implementer", before, after, judged=True, long=True))
    changes += [
        FieldChange(name, label, getattr(old, name) or "", getattr(new, name) or "", judged, long=True)
        for name, label, judged in _LONG
        if getattr(old, name) != getattr(new, name)
    ]
    changes += [  # who is told and where to read more: not what the approvers judged
        FieldChange(
            name, label, "\n".join(getattr(old, name)), "\n".join(getattr(new, name)), False, long=True
        )
        for name, label in (("links", "Links"), ("stakeholders", "People and channels to notify"))
        if getattr(old, name) != getattr(new, name)
    ]
    return changes
