"""How a policy role reads to people: the policy's own label ("CTO", "SRE lead") when it
gives one, else the role's words with known acronyms upper-cased.

Kept apart from `domain/policy.py` so the policy model stays one screenful per section."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Annotated, Any

from pydantic import Field, StringConstraints

ROLE_LABEL_MAX = 40  # a label sits inside card lines and buttons' neighbours, so it stays short

# A label as the policy gives it: one short line, never blank.
RoleLabel = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=ROLE_LABEL_MAX, pattern=r"^[^\n\r]*$"),
]


def role_labels_field() -> Any:
    """The policy's `role_labels` key: optional, at most one label per role."""
    return Field(default_factory=dict, max_length=100)


# Role-name words that are acronyms: `cto` reads "CTO", `sre_lead` "SRE lead".
ROLE_ACRONYMS = frozenset(
    {
        "cab",
        "ceo",
        "cfo",
        "cio",
        "ciso",
        "coo",
        "cpo",
        "cto",
        "dba",
        "hr",
        "it",
        "noc",
        "qa",
        "soc",
        "sre",
        "vp",
    }
)


def role_label(role: str, labels: Mapping[str, str] | None = None) -> str:
    """The policy's label for `role` if it has one; else `engineering_manager` ->
    "Engineering manager", `cto` -> "CTO" (known acronyms upper-case, the first word capitalised)."""
    if labels and role in labels:
        return labels[role]
    words = role.replace("_", " ").replace("-", " ").split()
    shown = [w.upper() if w.lower() in ROLE_ACRONYMS else w.lower() for w in words]
    if shown and shown[0].islower():
        shown[0] = shown[0].capitalize()
    return " ".join(shown)


def role_label_problems(
    labels: Mapping[str, str], *, roles: Iterable[str]
) -> Iterable[tuple[tuple[Any, ...], str]]:
    """A label for a role the policy does not define is a typo: say so at its key."""
    known = sorted(roles)
    for role in labels:
        if role not in known:
            yield ("role_labels", role), f"unknown role '{role}' (roles: {', '.join(known)})"
