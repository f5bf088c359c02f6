"""While the database is unreachable: count what was answered "try again", say so in
/metrics and /healthz, and log it once a minute rather than once a request."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import datetime

from bot.log_limit import LogLimiter
from domain.clock import Clock
from storage.health import is_unavailable

log = logging.getLogger(__name__)
OUTAGE_TEXT = "changebot cannot reach its database; nothing was changed, try again in a minute"
OUTAGE_FIELD_TEXT = "changebot cannot reach its database; nothing was saved. Submit again in a minute."


class DatabaseOutage:
    """Per process. Learns of an outage from a request that failed on it, and of its end
    from the next health probe or metrics scrape that reached the database."""

    def __init__(self, *, clock: Clock) -> None:
        self._clock = clock
        self._lines = LogLimiter(log, clock=clock)
        self.answered = 0  # requests answered "try again", since the process started
        self.since: datetime | None = None

    def answered_during(self, error: BaseException, what: str) -> None:
        self.answered += 1
        self.since = self.since or self._clock.now()
        self._lines.log(
            logging.WARNING, "database unreachable (%s); answered %s 'try again'", _short(error), what
        )

    def probed(self, *, up: bool) -> None:
        if up and self.since is not None:
            seconds = (self._clock.now() - self.since).total_seconds()
            log.warning("database reachable again after %.1f s of failures", seconds)
            self.since = None
        elif not up and self.since is None:
            self.since = self._clock.now()
            log.warning("database unreachable (found by a health probe)")

    async def metrics(self, read: Callable[[], Awaitable[str]]) -> str:
        """The usual families when the database answers; the outage ones always."""
        try:
            text, up = await read(), True
        except Exception as error:
            if not is_unavailable(error):
                raise
            text, up = "", False
        self.probed(up=up)
        return text + (
            "# HELP changebot_database_up 1 if this scrape could read the database, else 0.\n"
            "# TYPE changebot_database_up gauge\n"
            f"changebot_database_up {1 if up else 0}\n"
            "# HELP changebot_database_outage_answers_total Slack requests answered "
            "'cannot reach the database, try again', since this process started.\n"
            "# TYPE changebot_database_outage_answers_total counter\n"
            f"changebot_database_outage_answers_total {self.answered}\n"
        )


def _short(error: BaseException) -> str:
    text = str(error).splitlines()[0][:120] if str(error) else ""
    return f"{type(error).__name__}: {text}" if text else type(error).__name__
