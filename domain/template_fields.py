"""The change request template's further fields (process 002's template): links, success
criteria, dependencies, stakeholders to notify, rollback duration and triggers; and the
fields a policy requires per category. Each check adds one message per bad field, like
the rest of the form's validation, so the modal and the API show every problem at once."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlsplit

from domain.enums import Category
from domain.limits import MAX_LINK, MAX_LINKS, MAX_ROLLBACK_MINUTES, MAX_STAKEHOLDERS
from domain.model import ChangeDraft

# A stakeholder is a Slack user (U…/W…) or a channel (C…/G…): their notices are posted there.
STAKEHOLDER_ID = re.compile(r"^[UWCG][A-Z0-9]{2,}$")
# A link's characters: printable ASCII but the ones Slack's link syntax or a quote would
# read as markup, so a link can never forge another link's label.
_LINK_CHARS = re.compile(r"^[!#-;=?-\[\]-{}~]+$")

# The template's free texts, with the words their messages use.
TEMPLATE_TEXTS = {
    "success_criteria": "The success criteria",
    "dependencies": "The dependencies",
    "rollback_triggers": "The rollback triggers",
}
# What a policy's `required_fields` may name, with the message when it is missing.
REQUIRABLE = {
    "justification": "say why now",
    "implementation_plan": "an implementation plan",
    "rollback_plan": "a rollback plan",
    "test_plan": "a test plan",
    "success_criteria": "success criteria",
    "dependencies": "the dependencies",
    "stakeholders": "the stakeholders to notify",
    "rollback_duration": "how long a rollback takes",
    "rollback_triggers": "when to roll back",
    "links": "at least one link (PR, ticket, runbook or dashboard)",
    "downtime": "the expected downtime",
    "implementer": "an implementer",
}

RequiredField = Literal[
    "justification",
    "implementation_plan",
    "rollback_plan",
    "test_plan",
    "success_criteria",
    "dependencies",
    "stakeholders",
    "rollback_duration",
    "rollback_triggers",
    "links",
    "downtime",
    "implementer",
]


def default_required_fields() -> dict[Category, list[RequiredField]]:
    """003 and 004: normal and major changes document how they are tested."""
    return {Category.NORMAL: ["test_plan"], Category.MAJOR: ["test_plan"]}


@dataclass(frozen=True)
class TemplateValues:
    """The template fields once checked: what the draft stores."""

    links: tuple[str, ...] = ()
    success_criteria: str = ""
    dependencies: str = ""
    stakeholders: tuple[str, ...] = ()
    rollback_minutes: int | None = None
    rollback_triggers: str = ""


def web_link(url: str) -> bool:
    """An http(s) URL with a host, one token of plain characters: safe to store and to
    show as a link (no space, quote, `<`, `>` or `|`, nothing outside ASCII)."""
    if not url.lower().startswith(("https://", "http://")) or len(url) > MAX_LINK:
        return False
    if not _LINK_CHARS.match(url):
        return False
    try:
        parts = urlsplit(url)
        _ = parts.port  # raises on a port that is not a number
    except ValueError:
        return False
    return bool(parts.hostname)


def check_links(raw: Iterable[str], errors: dict[str, str]) -> tuple[str, ...]:
    """One link per line (or list item): http or https only, each bounded, at most
    MAX_LINKS, duplicates dropped."""
    links = tuple(dict.fromkeys(line.strip() for line in raw if line and line.strip()))
    if len(links) > MAX_LINKS:
        errors["links"] = (
            f"Give at most {MAX_LINKS} links (there are {len(links)}); link a page that lists the rest."
        )
        return links
    for number, url in enumerate(links, start=1):
        if len(url) > MAX_LINK:
            errors["links"] = f"Link {number} is {len(url)} characters; keep each link to {MAX_LINK}."
            return links
        if not web_link(url):
            shown = url if len(url) <= 60 else url[:59] + "…"
            errors["links"] = (
                f"Link {number} ({shown}) is not a web address: give one http:// or https:// "
                "URL per line, without spaces or <, >, |, quotes."
            )
            return links
    return links


def check_stakeholders(raw: Iterable[str], errors: dict[str, str]) -> tuple[str, ...]:
    """Slack users and channels, each once, at most MAX_STAKEHOLDERS."""
    chosen = tuple(dict.fromkeys(s.strip() for s in raw if s and s.strip()))
    if len(chosen) > MAX_STAKEHOLDERS:
        errors["stakeholders"] = f"Pick at most {MAX_STAKEHOLDERS} people and channels to notify."
    elif any(not STAKEHOLDER_ID.match(s) for s in chosen):
        errors["stakeholders"] = "Pick the people and channels to notify from the lists (Slack ids)."
    return chosen


def check_minutes(raw: str | None, errors: dict[str, str], *, field: str = "rollback_duration") -> int | None:
    """How long a rollback takes in whole minutes; None when not said."""
    text = (raw or "").strip()
    if not text:
        return None
    try:
        minutes = int(text)
    except ValueError:
        errors[field] = "The rollback duration is a whole number of minutes."
        return None
    if not 0 <= minutes <= MAX_ROLLBACK_MINUTES:
        errors[field] = f"The rollback duration must be between 0 and {MAX_ROLLBACK_MINUTES} minutes."
        return None
    return minutes


def check_texts(raw: Mapping[str, str | None], limit: int, errors: dict[str, str]) -> dict[str, str]:
    """The template's free texts, trimmed, each within the policy's text limit."""
    texts = {name: (raw.get(name) or "").strip() for name in TEMPLATE_TEXTS}
    for name, text in texts.items():
        if len(text) > limit:
            errors[name] = (
                f"{TEMPLATE_TEXTS[name]} is {len(text)} characters; keep it to {limit} "
                "and link to a document for the rest."
            )
    return texts


def missing_required(
    required: Mapping[Category, Sequence[str]],
    category: Category | None,
    present: Mapping[str, bool],
    errors: dict[str, str],
) -> None:
    """The fields the policy requires for the category, each not given gets its message
    (unless the field already has one)."""
    if category is None:
        return
    label = category.value.capitalize()
    for name in required.get(category, ()):
        if not present.get(name, True) and name not in errors:
            errors[name] = f"{label} changes need {REQUIRABLE[name]}."


def stakeholders_of(by_category: Mapping[Category, Sequence[str]], draft: ChangeDraft) -> list[str]:
    """Who a change's stakeholder notices go to: the policy's channels for its category,
    then the people and channels the change names, each once."""
    return list(dict.fromkeys([*by_category.get(draft.category, ()), *draft.stakeholders]))
