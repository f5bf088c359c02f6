"""Logging, set up once by the CLI: LOG_LEVEL and LOG_FORMAT, and a quiet idle bot (the
scheduler's per-tick lines stay out unless LOG_LEVEL=DEBUG)."""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# Chatty at INFO about routine work: APScheduler writes two lines per job run (four a
# second with the due-notice and outbox ticks), alembic a few per migration check.
QUIET_LOGGERS = ("apscheduler", "alembic")


class BoltTokenWarning(logging.Filter):
    """Bolt reads SLACK_BOT_TOKEN from the environment although we hand it a client built
    with that very token, then warns at every start that the token goes unused."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("As you gave `client` as well, `token` will be unused")


class JsonFormatter(logging.Formatter):
    """One JSON object per line, for log pipelines: time, level, logger, message, and
    the traceback as `exception` when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry, ensure_ascii=False)


def configure_logging(*, level: str, fmt: str) -> None:
    """Root handler on stderr at `level`; `fmt` is "text" or "json" (validated by the settings)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter(TEXT_FORMAT))
    root = logging.getLogger()
    for old in root.handlers[:]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    bolt = logging.getLogger("slack_bolt.AsyncApp")
    if not any(isinstance(f, BoltTokenWarning) for f in bolt.filters):
        bolt.addFilter(BoltTokenWarning())
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.NOTSET if level == "DEBUG" else logging.WARNING)
