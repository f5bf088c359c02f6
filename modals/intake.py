"""The `/change new` form and its parser. Pure: the policy and `now` come in as values."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, ValidationError
from slack_sdk.models.blocks import (
    Block,
    CheckboxesElement,
    ConversationFilter,
    ConversationMultiSelectElement,
    DateTimePickerElement,
    DividerBlock,
    InputBlock,
    InputInteractiveElement,
    NumberInputElement,
    Option,
    PlainTextInputElement,
    SectionBlock,
    StaticMultiSelectElement,
    StaticSelectElement,
    UserMultiSelectElement,
    UserSelectElement,
)

from domain.conflicts import Conflict
from domain.enums import Category, Impact, Likelihood
from domain.intake import ChangeForm
from domain.limits import (
    MAX_DOWNTIME_MINUTES,
    MAX_LINK,
    MAX_LINKS,
    MAX_REASON,
    MAX_ROLLBACK_MINUTES,
    MAX_STAKEHOLDERS,
)
from domain.policy import Policy
from modals.blocks import modal
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
_T = TypeVar("_T")

LIKELIHOOD_LABELS = {
    Likelihood.LOW: "Low: done this many times",
    Likelihood.MEDIUM: "Medium: some unknowns",
    Likelihood.HIGH: "High: new or complex",
}


def _option(value: str, label: str) -> Option:
    return Option(value=value, label=clip(label, 75))


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


class _Kind(Enum):
    """The input element a field is filled in with."""

    TEXT = "one line of text"
    LONG_TEXT = "several lines of text"
    SELECT = "one option"
    MULTI_SELECT = "several options"
    USER = "a person"
    DATETIME = "a date and time"
    NUMBER = "a whole number"
    CHECKBOX = "a box to tick"
    PEOPLE = "several people"
    CHANNELS = "several channels"


@dataclass(frozen=True)
class _Form:
    """What a field's getters read: the policy, and the default window's bounds."""

    policy: Policy
    starts: int
    ends: int


@dataclass(frozen=True)
class _Spec:
    """One input of the form. ``optional`` None leaves it out of the block (Slack: required)."""

    field: Field
    label: str
    kind: _Kind
    optional: bool | None = None
    hint: str | None = None
    placeholder: str | None = None
    limit: Callable[[_Form], int] | None = None  # max_length, or a number's max_value
    options: Callable[[_Form], list[Option]] | None = None
    initial: Callable[[_Form], int] | None = None
    shown: Callable[[_Form], bool] | None = None  # None: always
    divider_before: bool = False


def _title_limit(form: _Form) -> int:
    return form.policy.limits.title


def _text_limit(form: _Form) -> int:
    return form.policy.limits.text


def _reason_limit(form: _Form) -> int:
    return MAX_REASON


def _downtime_limit(form: _Form) -> int:
    return MAX_DOWNTIME_MINUTES


def _rollback_limit(form: _Form) -> int:
    return MAX_ROLLBACK_MINUTES


def _links_limit(form: _Form) -> int:
    return min(3000, MAX_LINKS * (MAX_LINK + 1))  # Slack's own cap on a text input


def _stakeholders_limit(form: _Form) -> int:
    return MAX_STAKEHOLDERS


def _categories(form: _Form) -> list[Option]:
    return [_option(c.value, CATEGORY_LABELS[c]) for c in Category]


def _catalog(form: _Form) -> list[Option]:
    return [_option(e.id, e.title) for e in form.policy.standard_catalog]


def _has_catalog(form: _Form) -> bool:
    return bool(form.policy.standard_catalog)


def _impacts(form: _Form) -> list[Option]:
    return [_option(i.value, IMPACT_LABELS[i]) for i in Impact]


def _likelihoods(form: _Form) -> list[Option]:
    return [_option(v.value, LIKELIHOOD_LABELS[v]) for v in Likelihood]


def _services(form: _Form) -> list[Option]:
    return [_option(s, s) for s in form.policy.services]


def _exception_request(form: _Form) -> list[Option]:
    return [Option(value="requested", label="Request an exception (one more approval)")]


def _window_start(form: _Form) -> int:
    return form.starts


def _window_end(form: _Form) -> int:
    return form.ends


_NOT_FOR_STANDARD = "Required except for standard changes."

# The `/change new` form, top to bottom.
_FIELDS: tuple[_Spec, ...] = (
    _Spec(Field.TITLE, "Title", _Kind.TEXT, optional=False, limit=_title_limit,
          placeholder="Upgrade the API gateway to 2.4"),
    _Spec(Field.CATEGORY, "Category", _Kind.SELECT, placeholder="Choose a category", options=_categories),
    _Spec(Field.CATALOG, "Pre-approved procedure", _Kind.SELECT, optional=True,
          hint="Standard changes only: the catalog entry this change follows.",
          placeholder="Choose a procedure", options=_catalog, shown=_has_catalog),
    _Spec(Field.IMPACT, "Impact if it goes wrong", _Kind.SELECT, optional=True, hint=_NOT_FOR_STANDARD,
          placeholder="Choose the impact", options=_impacts),
    _Spec(Field.LIKELIHOOD, "Likelihood of problems", _Kind.SELECT, optional=True, hint=_NOT_FOR_STANDARD,
          placeholder="Choose the likelihood", options=_likelihoods),
    _Spec(Field.SERVICES, "Affected services", _Kind.MULTI_SELECT, placeholder="Pick services",
          options=_services),
    _Spec(Field.IMPLEMENTER, "Implementer", _Kind.USER, optional=True, placeholder="Pick a person",
          hint="Who carries it out and gets the timeline reminders. You, if left empty."),
    _Spec(Field.STARTS_AT, "Starts", _Kind.DATETIME, initial=_window_start),
    _Spec(Field.ENDS_AT, "Ends", _Kind.DATETIME, initial=_window_end),
    _Spec(Field.DESCRIPTION, "What will change", _Kind.LONG_TEXT, optional=True,
          hint="Summary and motivation.", limit=_text_limit, divider_before=True),
    _Spec(Field.JUSTIFICATION, "Why now", _Kind.LONG_TEXT, optional=True, limit=_text_limit),
    _Spec(Field.IMPLEMENTATION_PLAN, "Implementation plan", _Kind.LONG_TEXT, optional=True,
          hint="Required for major changes.", limit=_text_limit),
    _Spec(Field.DEPENDENCIES, "Dependencies", _Kind.LONG_TEXT, optional=True,
          hint="Other systems, teams or changes this one needs.", limit=_text_limit),
    _Spec(Field.ROLLBACK_PLAN, "Rollback plan", _Kind.LONG_TEXT, optional=True,
          hint="Required for normal and major changes.", limit=_text_limit),
    _Spec(Field.ROLLBACK_DURATION, "Rollback takes (minutes)", _Kind.NUMBER, optional=True,
          limit=_rollback_limit),
    _Spec(Field.ROLLBACK_TRIGGERS, "Roll back if", _Kind.LONG_TEXT, optional=True,
          hint="This change's own triggers, besides the policy's.", limit=_text_limit),
    _Spec(Field.TEST_PLAN, "Test plan", _Kind.LONG_TEXT, optional=True,
          hint="How you verify it worked.", limit=_text_limit),
    _Spec(Field.SUCCESS_CRITERIA, "Success criteria", _Kind.LONG_TEXT, optional=True,
          hint="How you know it succeeded.", limit=_text_limit),
    _Spec(Field.DOWNTIME, "Expected downtime (minutes)", _Kind.NUMBER, optional=True, limit=_downtime_limit),
    _Spec(Field.LINKS, "Links", _Kind.LONG_TEXT, optional=True, limit=_links_limit,
          hint=f"PRs, tickets, runbooks, dashboards: one http(s) link per line, at most {MAX_LINKS}.",
          placeholder="https://github.com/org/repo/pull/123"),
    _Spec(Field.STAKEHOLDERS, "People to notify", _Kind.PEOPLE, optional=True, limit=_stakeholders_limit,
          hint="Told at T-24h and when the change completes.", placeholder="Pick people"),
    _Spec(Field.STAKEHOLDER_CHANNELS, "Channels to notify", _Kind.CHANNELS, optional=True,
          limit=_stakeholders_limit, hint="Told at T-24h and when the change completes.",
          placeholder="Pick channels"),
    _Spec(Field.EXCEPTION, "Outside the windows or in a blackout?", _Kind.CHECKBOX, optional=True,
          options=_exception_request),
    _Spec(Field.EXCEPTION_REASON, "Why it cannot wait", _Kind.LONG_TEXT, optional=True,
          hint="Only with an exception request.", limit=_reason_limit),
)  # fmt: skip


def _got(getter: Callable[[_Form], _T] | None, form: _Form, spec: _Spec) -> _T:
    if getter is None:
        raise ValueError(f"{spec.field.value}: a {spec.kind.name} field needs its value")
    return getter(form)


def _element(spec: _Spec, form: _Form) -> InputInteractiveElement:
    """The input element for one field, by its kind."""
    action_id = spec.field.value
    match spec.kind:
        case _Kind.TEXT | _Kind.LONG_TEXT:
            return PlainTextInputElement(
                action_id=action_id,
                multiline=spec.kind is _Kind.LONG_TEXT,
                max_length=_got(spec.limit, form, spec),
                placeholder=spec.placeholder,
            )
        case _Kind.SELECT:
            options = _got(spec.options, form, spec)
            return StaticSelectElement(action_id=action_id, placeholder=spec.placeholder, options=options)
        case _Kind.MULTI_SELECT:
            options = _got(spec.options, form, spec)
            return StaticMultiSelectElement(
                action_id=action_id, placeholder=spec.placeholder, options=options
            )
        case _Kind.USER:
            return UserSelectElement(action_id=action_id, placeholder=spec.placeholder)
        case _Kind.DATETIME:
            return DateTimePickerElement(
                action_id=action_id, initial_date_time=_got(spec.initial, form, spec)
            )
        case _Kind.NUMBER:
            limit = _got(spec.limit, form, spec)
            return NumberInputElement(
                action_id=action_id, is_decimal_allowed=False, min_value=0, max_value=limit
            )
        case _Kind.CHECKBOX:
            return CheckboxesElement(action_id=action_id, options=_got(spec.options, form, spec))
        case _Kind.PEOPLE:
            return UserMultiSelectElement(
                action_id=action_id,
                placeholder=spec.placeholder,
                max_selected_items=_got(spec.limit, form, spec),
            )
        case _Kind.CHANNELS:
            return ConversationMultiSelectElement(
                action_id=action_id,
                placeholder=spec.placeholder,
                max_selected_items=_got(spec.limit, form, spec),
                filter=ConversationFilter(include=["public", "private"], exclude_bot_users=True),
            )


def _field_blocks(spec: _Spec, form: _Form) -> list[Block]:
    """One row of the table as Block Kit: its input, after a divider if it opens a part."""
    if spec.shown is not None and not spec.shown(form):
        return []
    block = InputBlock(
        block_id=spec.field.value,
        label=spec.label,
        hint=_hint(spec, form),
        optional=spec.optional,
        element=_element(spec, form),
    )
    return [DividerBlock(), block] if spec.divider_before else [block]


def _hint(spec: _Spec, form: _Form) -> str | None:
    """The field's hint, saying which categories the policy requires it for (unless the
    hint says what is required already)."""
    if spec.hint and spec.hint.startswith("Required"):
        return spec.hint
    needed = [c.value for c in Category if spec.field.value in form.policy.required_fields.get(c, ())]
    if not needed:
        return spec.hint
    which = needed[0] if len(needed) == 1 else f"{', '.join(needed[:-1])} and {needed[-1]}"
    return f"{spec.hint + ' ' if spec.hint else ''}Required for {which} changes."


def _build_change_modal(policy: Policy, *, now: datetime, conflicts: Sequence[Conflict]) -> dict[str, Any]:
    start, end = default_window(now)
    form = _Form(policy=policy, starts=start, ends=end)
    blocks: list[Block] = [conflict_warning(conflicts, policy.zone)] if conflicts else []
    for spec in _FIELDS:
        blocks += _field_blocks(spec, form)
    footnote = md(
        "Risk is scored from impact × likelihood with the policy's matrix; windows and blackouts "
        "are checked in {}.",
        policy.timezone,
    )
    blocks.append(section(footnote))
    return modal(
        CallbackId.NEW_CHANGE,
        title="New change request",
        submit="Submit",
        metadata=IntakeMetadata(acknowledged=tuple(c.change_id for c in conflicts)),
        blocks=blocks,
    )


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

    def chosen(field: Field, key: str) -> list[str]:
        values = _value(state, field).get(key) or []
        return [v for v in values if isinstance(v, str)] if isinstance(values, list) else []

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
        links=tuple((text(Field.LINKS) or "").splitlines()),
        success_criteria=text(Field.SUCCESS_CRITERIA),
        dependencies=text(Field.DEPENDENCIES),
        stakeholders=chosen(Field.STAKEHOLDERS, "selected_users")
        + chosen(Field.STAKEHOLDER_CHANNELS, "selected_conversations"),
        rollback_duration=text(Field.ROLLBACK_DURATION),
        rollback_triggers=text(Field.ROLLBACK_TRIGGERS),
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
