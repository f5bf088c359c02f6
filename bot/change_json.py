"""A change as JSON: what `changebot changes show --json` prints and the REST API answers
(one function, so the two never drift apart)."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from enum import Enum
from typing import Any

from domain.model import Change


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


def change_as_json(change: Change) -> dict[str, Any]:
    data = asdict(change)
    draft = data.pop("draft")
    approvals = [
        {
            "user": a["user"],
            "decision": a["decision"],
            "at": a["at"],
            "step": a["step_index"],
            "role": change.steps[a["step_index"]].role,
            "reason": a["reason"],
        }
        for a in data.pop("approvals")
    ]
    return _jsonable({**data, **draft, "approvals": approvals})
