"""How long free text and numbers may be: one place, so a form's `max_length` and the
use case's check never disagree."""

from __future__ import annotations

MAX_REASON = 1000  # a reason: exception, rejection, cancel, reschedule, start override
MAX_NOTES = 2500  # notes on a failure or rollback
MAX_ANSWER = 2500  # one review answer
MAX_DOWNTIME_MINUTES = 7 * 24 * 60  # expected downtime: at most a week
MAX_INCIDENT = 300  # an incident id or link
MAX_ACTOR = 40  # who did something, as the audit stores it: a Slack id or a pipeline principal
MAX_SOURCE_KIND = 40  # where a pipeline-filed change came from: github, gitlab, argocd, api
MAX_SOURCE_URL = 500  # the pipeline run's URL
MAX_SOURCE_REF = 200  # the branch, tag or commit it deploys
MAX_LINKS = 10  # links on a change: PRs, tickets, runbooks, dashboards
MAX_LINK = 500  # one link's URL
MAX_STAKEHOLDERS = 20  # people and channels a change's own notices go to
MAX_ROLLBACK_MINUTES = 7 * 24 * 60  # how long a rollback takes: at most a week
