"""The `/change new` form and its parser. Pure: the policy and `now` come in as values."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, ValidationError
from slack_sdk.models.blocks import (
    Block,
    CheckboxesElement,
    DateTimePickerElement,
    DividerBlock,
    InputBlock,
    NumberInputElement,
    Option,
    PlainTextInputElement,
    SectionBlock,
    StaticMultiSelectElement,
    StaticSelectElement,
    UserSelectElement,
)
from slack_sdk.models.views import View

from domain.conflicts import Conflict
from domain.enums import Category, Impact, Likelihood
from domain.intake import ChangeForm
from domain.limits import MAX_DOWNTIME_MINUTES, MAX_REASON
from domain.policy import Policy
from modals.ids import CallbackId, Field
from modals.text import clip, clip_md, escaped_clip, join_md, md, section, slack_date

CATEGORY_LABELS = {
    Category.STANDARD: "Standard: pre-approved procedure",
    Category.NORMAL: "Normal: needs approval",
    Category.MAJOR: "Major: high impact, extensive planning",
    Category.EMERGENCY: "Emergency: restore service now",
}
IMPACT_LABELS = {
    Impact.LOW: "Low: one team notices",
    Impact.MEDIUM: "Medium: some users notice",
    Impact.HIGH: "High: many users or revenue",
    Impact.CRITICAL: "Critical: outage or data loss",
}
LIKELIHOOD_LABELS = {
    Likelihood.LOW: "Low: done this many times",
    Likelihood.MEDIUM: "Medium: some unknowns",
    Likelihood.HIGH: "High: new or complex",
}


def _option(value: str, label: str) -> Option:
    return Option(value=value, label=clip(label, 75))


def _text_input(
    field: Field,
    label: str,
    *,
    hint: str | None,
    multiline: bool,
    max_length: int,
    optional: bool,
    placeholder: str | None = None,
) -> InputBlock:
    return InputBlock(
        block_id=field.value,
        label=label,
        hint=hint,
        optional=optional,
        element=PlainTextInputElement(
            action_id=field.value,
            multiline=multiline,
            max_length=max_length,
            placeholder=placeholder,
        ),
    )


def default_window(now: datetime) -> tuple[int, int]:
    """Tomorrow at the next full hour, for an hour: a sensible default to edit."""
    start = (now + timedelta(days=1)).replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    return int(start.timestamp()), int((start + timedelta(hours=1)).timestamp())


class IntakeMetadata(BaseModel):
    """Conflicts the requester has been shown: submitting again with them confirms."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    acknowledged: tuple[str, ...] = ()


def conflict_warning(conflicts: Sequence[Conflict], zone: ZoneInfo) -> SectionBlock:
    lines = [
        md(
            "• *{}* {} ({}), {} → {}",
            c.change_id,
            escaped_clip(c.title, 80),
            ", ".join(c.services),
            slack_date(c.starts_at, zone),
            slack_date(c.ends_at, zone),
        )
        for c in conflicts[:10]
    ]
    if len(conflicts) > 10:
        lines.append(md("… and {} more overlapping changes.", f"{len(conflicts) - 10:,}"))
    text = md(
        ":warning: *This window overlaps open changes on the same or dependent services:*\n{}"
        "\nChange the window, or press Submit again to file it anyway.",
        join_md("\n", lines),
    )
    return section(clip_md(text, 3000), block_id="conflicts")


# (policy id, default start) -> (the policy, kept alive so its id is not reused; the form)
_BLANK_FORMS: dict[tuple[int, int], tuple[Policy, str]] = {}


def new_change_modal(policy: Policy, *, now: datetime, conflicts: Sequence[Conflict] = ()) -> dict[str, Any]:
    """The CR form. The blank form only changes with the policy and the default window's
    hour, so it is built (and validated) once per hour, not on every `/change new`."""
    if conflicts:
        return _build_change_modal(policy, now=now, conflicts=conflicts)
    key = (id(policy), default_window(now)[0])
    cached = _BLANK_FORMS.get(key)
    if cached is None or cached[0] is not policy:
        if len(_BLANK_FORMS) > 32:
            _BLANK_FORMS.clear()
        cached = _BLANK_FORMS[key] = (policy, json.dumps(_build_change_modal(policy, now=now, conflicts=())))
    return json.loads(cached[1])  # a fresh copy, several times cheaper than copy.deepcopy


def _build_change_modal(policy: Policy, *, now: datetime, conflicts: Sequence[Conflict]) -> dict[str, Any]:
    start, end = default_window(now)
    text_limit = policy.limits.text
    blocks: list[Block] = [conflict_warning(conflicts, policy.zone)] if conflicts else []
    blocks += [
        _text_input(
            Field.TITLE,
            "Title",
            hint=None,
            multiline=False,
            max_length=policy.limits.title,
            optional=False,
            placeholder="Upgrade the API gateway to 2.4",
        ),
        InputBlock(
            block_id=Field.CATEGORY.value,
            label="Category",
            element=StaticSelectElement(
                action_id=Field.CATEGORY.value,
                placeholder="Choose a category",
                options=[_option(c.value, CATEGORY_LABELS[c]) for c in Category],
            ),
        ),
    ]
    if policy.standard_catalog:
        blocks.append(
            InputBlock(
                block_id=Field.CATALOG.value,
                label="Pre-approved procedure",
                hint="Standard changes only: the catalog entry this change follows.",
                optional=True,
                element=StaticSelectElement(
                    action_id=Field.CATALOG.value,
                    placeholder="Choose a procedure",
                    options=[_option(e.id, e.title) for e in policy.standard_catalog],
                ),
            )
        )
    blocks += [
        InputBlock(
            block_id=Field.IMPACT.value,
            label="Impact if it goes wrong",
            optional=True,
            hint="Required except for standard changes.",
            element=StaticSelectElement(
                action_id=Field.IMPACT.value,
                placeholder="Choose the impact",
                options=[_option(i.value, IMPACT_LABELS[i]) for i in Impact],
            ),
        ),
        InputBlock(
            block_id=Field.LIKELIHOOD.value,
            label="Likelihood of problems",
            optional=True,
            hint="Required except for standard changes.",
            element=StaticSelectElement(
                action_id=Field.LIKELIHOOD.value,
                placeholder="Choose the likelihood",
                options=[_option(v.value, LIKELIHOOD_LABELS[v]) for v in Likelihood],
            ),
        ),
        InputBlock(
            block_id=Field.SERVICES.value,
            label="Affected services",
            element=StaticMultiSelectElement(
                action_id=Field.SERVICES.value,
                placeholder="Pick services",
                options=[_option(s, s) for s in policy.services],
            ),
        ),
        InputBlock(
            block_id=Field.IMPLEMENTER.value,
            label="Implementer",
            hint="Who carries it out and gets the timeline reminders. You, if left empty.",
            optional=True,
            element=UserSelectElement(action_id=Field.IMPLEMENTER.value, placeholder="Pick a person"),
        ),
        InputBlock(
            block_id=Field.STARTS_AT.value,
            label="Starts",
            element=DateTimePickerElement(action_id=Field.STARTS_AT.value, initial_date_time=start),
        ),
        InputBlock(
            block_id=Field.ENDS_AT.value,
            label="Ends",
            element=DateTimePickerElement(action_id=Field.ENDS_AT.value, initial_date_time=end),
        ),
        DividerBlock(),
        _text_input(
            Field.DESCRIPTION,
            "What will change",
            hint="Summary and motivation.",
            multiline=True,
            max_length=text_limit,
            optional=True,
        ),
        _text_input(
            Field.JUSTIFICATION, "Why now", hint=None, multiline=True, max_length=text_limit, optional=True
        ),
        _text_input(
            Field.IMPLEMENTATION_PLAN,
            "Implementation plan",
            hint="Required for major changes.",
            multiline=True,
            max_length=text_limit,
            optional=True,
        ),
        _text_input(
            Field.ROLLBACK_PLAN,
            "Rollback plan",
            hint="Required for normal and major changes.",
            multiline=True,
            max_length=text_limit,
            optional=True,
        ),
        _text_input(
            Field.TEST_PLAN,
            "Test plan",
            hint="How you verify it worked.",
            multiline=True,
            max_length=text_limit,
            optional=True,
        ),
        InputBlock(
            block_id=Field.DOWNTIME.value,
            label="Expected downtime (minutes)",
            optional=True,
            element=NumberInputElement(
                action_id=Field.DOWNTIME.value,
                is_decimal_allowed=False,
                min_value=0,
                max_value=MAX_DOWNTIME_MINUTES,
            ),
        ),
        InputBlock(
            block_id=Field.EXCEPTION.value,
            label="Outside the windows or in a blackout?",
            optional=True,
            element=CheckboxesElement(
                action_id=Field.EXCEPTION.value,
                options=[Option(value="requested", label="Request an exception (one more approval)")],
            ),
        ),
        _text_input(
            Field.EXCEPTION_REASON,
            "Why it cannot wait",
            hint="Only with an exception request.",
            multiline=True,
            max_length=MAX_REASON,
            optional=True,
        ),
        section(
            md(
                "Risk is scored from impact × likelihood with the policy's matrix; windows and blackouts "
                "are checked in {}.",
                policy.timezone,
            )
        ),
    ]
    view = View(
        type="modal",
        callback_id=CallbackId.NEW_CHANGE.value,
        title="New change request",
        submit="Submit",
        close="Cancel",
        blocks=blocks,
        private_metadata=IntakeMetadata(acknowledged=tuple(c.change_id for c in conflicts)).model_dump_json(),
    )
    return view.to_dict()


def _value(state: dict[str, Any], field: Field) -> dict[str, Any]:
    block = state.get(field.value) or {}
    value = block.get(field.value)
    if value is None and block:
        value = next(iter(block.values()))
    return value if isinstance(value, dict) else {}


def parse_change_form(view: dict[str, Any]) -> ChangeForm:
    """Read the submitted state; tolerant of missing blocks so validation can explain."""
    state = (view.get("state") or {}).get("values") or {}

    def text(field: Field) -> str | None:
        value = _value(state, field).get("value")
        return value if isinstance(value, str) else None

    def selected(field: Field) -> str | None:
        option = _value(state, field).get("selected_option") or {}
        value = option.get("value") if isinstance(option, dict) else None
        return value if isinstance(value, str) else None

    def moment(field: Field) -> int | None:
        value = _value(state, field).get("selected_date_time")
        try:
            return int(value) if value is not None else None
        except (TypeError, ValueError):
            return None

    options = _value(state, Field.SERVICES).get("selected_options") or []
    return ChangeForm(
        title=text(Field.TITLE),
        category=selected(Field.CATEGORY),
        catalog=selected(Field.CATALOG),
        impact=selected(Field.IMPACT),
        likelihood=selected(Field.LIKELIHOOD),
        services=[str(o.get("value")) for o in options if isinstance(o, dict) and o.get("value")],
        starts_at=moment(Field.STARTS_AT),
        ends_at=moment(Field.ENDS_AT),
        description=text(Field.DESCRIPTION),
        justification=text(Field.JUSTIFICATION),
        implementation_plan=text(Field.IMPLEMENTATION_PLAN),
        rollback_plan=text(Field.ROLLBACK_PLAN),
        test_plan=text(Field.TEST_PLAN),
        downtime=text(Field.DOWNTIME),
        implementer=_value(state, Field.IMPLEMENTER).get("selected_user"),
        exception_requested=bool(_value(state, Field.EXCEPTION).get("selected_options")),
        exception_reason=text(Field.EXCEPTION_REASON),
        acknowledged_conflicts=_acknowledged(view),
    )


def _acknowledged(view: dict[str, Any]) -> tuple[str, ...]:
    try:
        return IntakeMetadata.model_validate_json(view.get("private_metadata") or "{}").acknowledged
    except ValidationError:
        return ()


def inline_errors(errors: dict[str, str], view: dict[str, Any]) -> dict[str, str]:
    """Slack rejects errors for block ids the view lacks: fold those onto the title."""
    present = {block.get("block_id") for block in view.get("blocks") or []}
    out: dict[str, str] = {}
    for key, message in errors.items():
        target = key if key in present else Field.TITLE.value
        out[target] = f"{out[target]} {message}" if target in out else message
    return {key: clip(message, 2000) for key, message in out.items()}
