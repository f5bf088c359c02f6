"""Messages caused by approving or rejecting a change."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from domain.enums import Decision, Status
from domain.messages.base import ChangeMessage, RoleName, UserId


@dataclass(frozen=True, kw_only=True)
class Decided(ChangeMessage):
    """To the requester: an approver decided, as `role`; the CR is now `status`."""

    template: Literal["decided"] = "decided"
    by: UserId
    decision: Decision
    status: Status
    role: RoleName
    reason: str = ""
