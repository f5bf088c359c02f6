"""Messages caused by correcting a change: an approver asks for changes, the requester edits."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from domain.messages.base import ChangeMessage, RoleName, UserId


@dataclass(frozen=True, kw_only=True)
class Edited(ChangeMessage):
    """`by` edited the CR: `changes` says what, one line each ("Window: A → B");
    `reapproval`: it waits for approval again; `resubmitted`: it was rejected or sent back."""

    template: Literal["edited"] = "edited"
    by: UserId
    changes: tuple[str, ...] = ()
    reapproval: bool = False
    resubmitted: bool = False


@dataclass(frozen=True, kw_only=True)
class ChangesRequested(ChangeMessage):
    """To the requester: an approver, as `role`, asks for changes before deciding.
    `implementer`: this copy tells the change's implementer, who does not edit it."""

    template: Literal["changes_requested"] = "changes_requested"
    by: UserId
    role: RoleName
    comment: str
    implementer: bool = False
