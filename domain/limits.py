"""How long free text and numbers may be: one place, so a form's `max_length` and the
use case's check never disagree."""

from __future__ import annotations

MAX_REASON = 1000  # a reason: exception, rejection, cancel, reschedule, start override
MAX_NOTES = 2500  # notes on a failure or rollback
MAX_ANSWER = 2500  # one review answer
MAX_DOWNTIME_MINUTES = 7 * 24 * 60  # expected downtime: at most a week
MAX_INCIDENT = 300  # an incident id or link
