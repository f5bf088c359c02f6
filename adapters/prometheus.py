"""The /metrics text for Prometheus, read from the database at scrape time.

Figures come from the tables rather than in-process counters so every replica reports the
same truth and a restart loses nothing; only Slack API errors are per process (they never
reach the database), fed in by the gateway through a SlackErrorCounter.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from storage import reports
from storage.reports import Sessions

if TYPE_CHECKING:
    # prometheus_client is imported inside the functions a scrape runs: start-up (which
    # needs SlackErrorCounter from here) need not load it.
    from prometheus_client.core import HistogramMetricFamily, Metric

NOTICE_WINDOW = timedelta(hours=24)
# Seconds. Approvals take minutes to days; notices should go out within seconds of due.
APPROVAL_BUCKETS = (60.0, 300.0, 900.0, 1800.0, 3600.0, 7200.0, 14400.0, 28800.0, 86400.0, 172800.0, 604800.0)
NOTICE_BUCKETS = (1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0)

SlackErrors = Mapping[tuple[str, str], int]  # (API method, Slack error code) -> count


class SlackErrorCounter:
    """Counts failed Slack Web API calls per (method, error) for the life of the process.
    Thread-safe: the Socket Mode client calls from its own threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: dict[tuple[str, str], int] = {}

    def record(self, method: str, error: str) -> None:
        with self._lock:
            key = (method, error)
            self._counts[key] = self._counts.get(key, 0) + 1

    def snapshot(self) -> dict[tuple[str, str], int]:
        with self._lock:
            return dict(self._counts)


def histogram(
    name: str, documentation: str, values: Sequence[float], buckets: Sequence[float]
) -> HistogramMetricFamily:
    """Cumulative buckets (le) from raw observations, ending with +Inf as the format requires."""
    from prometheus_client.core import HistogramMetricFamily

    cumulative = [(_le(bound), sum(1 for v in values if v <= bound)) for bound in buckets]
    cumulative.append(("+Inf", len(values)))
    return HistogramMetricFamily(
        name, documentation, buckets=cumulative, sum_value=float(sum(values)) if values else 0.0
    )


def _le(bound: float) -> str:
    return repr(float(bound))


class _Snapshot:
    """Hands a finished set of families to the registry: the async reads happen first.
    (A prometheus_client Collector, which is a Protocol: no base class needed.)"""

    def __init__(self, families: Iterable[Metric]) -> None:
        self._families = list(families)

    def collect(self) -> Iterator[Metric]:
        yield from self._families


async def collect_families(
    sessions: Sessions, *, slack_errors: SlackErrors, now: datetime, notice_window: timedelta = NOTICE_WINDOW
) -> list[Metric]:
    """Every changebot family, read now; split from `metrics_text` so tests and other
    exporters can use the values without parsing text."""
    from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

    changes = GaugeMetricFamily(
        "changebot_change_total",
        "Change requests by category and current status.",
        labels=["category", "status"],
    )
    for (category, status), count in sorted((await reports.status_counts(sessions)).items()):
        changes.add_metric([category.value, status.value], count)
    outcomes = GaugeMetricFamily(
        "changebot_change_outcomes",
        "Changes whose implementation ended, by latest outcome (closed ones included).",
        labels=["outcome"],
    )
    for outcome, count in (await reports.outcome_counts(sessions)).items():
        outcomes.add_metric([outcome.value], count)
    rollbacks = CounterMetricFamily(
        "changebot_rollbacks", "Change requests ever rolled back (closed ones included)."
    )
    rollbacks.add_metric([], await reports.rollback_count(sessions))
    approval = histogram(
        "changebot_approval_latency_seconds",
        "Time from filing to approval, for changes that people approved.",
        await reports.approval_latencies(sessions),
        APPROVAL_BUCKETS,
    )
    # A sliding window, not a running total: graph its buckets directly, never with rate().
    lag = histogram(
        "changebot_notice_lag_seconds",
        f"Time from due to sent, for timeline notices sent in the last {notice_window} (sliding window).",
        await reports.notice_lags(sessions, since=now - notice_window, until=now),
        NOTICE_BUCKETS,
    )
    outbox = GaugeMetricFamily("changebot_outbox_depth", "Outbox rows by state.", labels=["state"])
    for state, count in (await reports.outbox_depth(sessions)).items():
        outbox.add_metric([state], count)
    errors = CounterMetricFamily(
        "changebot_slack_api_errors",
        "Failed Slack Web API calls by method and error, since this process started.",
        labels=["method", "error"],
    )
    for (method, error), count in sorted(slack_errors.items()):
        errors.add_metric([method, error], count)
    return [changes, outcomes, rollbacks, approval, lag, outbox, errors]


async def metrics_text(
    sessions: Sessions, *, slack_errors: SlackErrors, now: datetime, notice_window: timedelta = NOTICE_WINDOW
) -> str:
    """The Prometheus text exposition (bot.http serves it with METRICS_CONTENT_TYPE)."""
    from prometheus_client import CollectorRegistry, generate_latest

    registry = CollectorRegistry(auto_describe=False)
    registry.register(
        _Snapshot(
            await collect_families(sessions, slack_errors=slack_errors, now=now, notice_window=notice_window)
        )
    )
    return generate_latest(registry).decode("utf-8")
