"""Messages caused by filing a change."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from domain.enums import Status
from domain.messages.base import ChangeMessage


@dataclass(frozen=True, kw_only=True)
class Filed(ChangeMessage):
    """To the requester: filed and waiting for approval, or approved at once."""

    template: Literal["filed"] = "filed"
    status: Status
