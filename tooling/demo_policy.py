"""The demo's workspace: a built-in policy and the people and channels it names.

Kept in code (not a packaged YAML file) so `changebot demo` works from any install
without a policy file; it has the same shape as the policy the tests run against.
"""

from __future__ import annotations

DEMO_POLICY = """
timezone: Europe/London
channels:
  changes: CCHANGES
  incidents: CINCIDENTS
roles:
  tech_lead: [UBOB, UCAROL]
  engineering_manager: [SENGMANAGERS]   # a user group: its members are read from Slack
  cto: [UFRANK]
services: [api-server, database, redis-cache, kubernetes]
approvals:
  by_risk:
    low: []
    medium: [{role: tech_lead, count: 1}]
    high: [{role: engineering_manager, count: 1}]
    critical: [{role: cto, count: 1}]
  by_category:
    standard: []
    major: [{role: engineering_manager, count: 1}, {role: cto, count: 1}]
standard_catalog:
  - id: cache-clear
    title: Clear the Redis cache
    services: [redis-cache]
timeline:
  stakeholders:
    normal: [CSUPPORT]
  rollback_triggers: [Error rate > 5%, Database errors]
lead_time: {}                 # pipelines file their changes minutes ahead: no minimum notice here
digest:
  at: "09:00"
  days_ahead: 3
emergency:
  fallback: [UGRACE]          # no PagerDuty in the demo: the fallback responder is on call
  post_approval:
    role: engineering_manager
  escalate_to: cto
"""

# user id -> (name, what they are in the story)
PEOPLE: dict[str, tuple[str, str]] = {
    "UALICE": ("alice", "engineer"),
    "UBOB": ("bob", "tech lead"),
    "UCAROL": ("carol", "tech lead"),
    "UERIN": ("erin", "engineering manager, in the @eng-managers group"),
    "UFRANK": ("frank", "CTO"),
    "UGRACE": ("grace", "on-call fallback"),
}
USER_GROUPS: dict[str, tuple[str, list[str]]] = {"SENGMANAGERS": ("eng-managers", ["UERIN"])}
CHANNELS: dict[str, str] = {"CCHANGES": "changes", "CINCIDENTS": "incidents", "CSUPPORT": "support"}
