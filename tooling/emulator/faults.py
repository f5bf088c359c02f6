"""Injected failures and slowness: the 429s with ``Retry-After``, the 5xx pages and the slow
methods that are hard to provoke against the real Slack."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from aiohttp import web


@dataclass
class Fault:
    """A pending injected failure for one method."""

    status: int
    retry_after: float | None
    error: str
    as_text: bool


class FaultPlan:
    """The failures and delays queued per API method, consumed as calls arrive."""

    def __init__(self) -> None:
        self._faults: dict[str, deque[Fault]] = {}
        self._delays: dict[str, float] = {}

    def fail_next(
        self,
        method: str,
        status: int = 429,
        retry_after: float | None = 1,
        times: int = 1,
        error: str | None = None,
        *,
        as_text: bool | None = None,
    ) -> None:
        """Make the next ``times`` calls to ``method`` fail with HTTP ``status``.

        429 answers JSON ``{"ok": false, "error": "ratelimited"}`` plus ``Retry-After``.
        Other statuses default to a plain-text body (like Slack's edge 5xx pages);
        pass ``as_text=False`` for a JSON body instead.
        """
        if error is None:
            error = "ratelimited" if status == 429 else "internal_error"
        if as_text is None:
            as_text = status >= 500
        fault = Fault(status=status, retry_after=retry_after, error=error, as_text=as_text)
        self._faults.setdefault(method, deque()).extend(fault for _ in range(times))

    def delay(self, method: str, seconds: float) -> None:
        """Make every later call to ``method`` take ``seconds`` (0 to undo)."""
        if seconds > 0:
            self._delays[method] = seconds
        else:
            self._delays.pop(method, None)

    def delay_for(self, method: str) -> float | None:
        """How long a call to ``method`` must wait before it is answered, if at all."""
        return self._delays.get(method)

    def take(self, method: str) -> Fault | None:
        """The next queued failure for ``method``, removed from the queue."""
        faults = self._faults.get(method)
        return faults.popleft() if faults else None

    def clear(self) -> None:
        """Forget every queued failure and delay."""
        self._faults.clear()
        self._delays.clear()


def fault_response(fault: Fault) -> web.Response:
    """The HTTP answer for an injected failure, shaped like Slack's own."""
    headers: dict[str, str] = {}
    if fault.retry_after is not None and fault.status in (429, 503):
        retry = fault.retry_after
        headers["Retry-After"] = str(int(retry) if float(retry).is_integer() else retry)
    if fault.as_text:
        return web.Response(status=fault.status, text=fault.error, headers=headers)
    return web.json_response({"ok": False, "error": fault.error}, status=fault.status, headers=headers)
