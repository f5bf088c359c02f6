"""The policy the tests run against: every role shape (users and a user group)."""

TEST_POLICY = """
timezone: Europe/London
channels:
  changes: CCHANGES
  incidents: CINCIDENTS
roles:
  tech_lead: [ULEAD1, ULEAD2]
  engineering_manager: [SMANAGERS]
  cto: [UCTO]
services: [api-server, database, redis-cache, kubernetes]
approvals:
  by_risk:
    low: []
    medium: [{role: tech_lead, count: 1}]
    high: [{role: tech_lead, count: 2}, {role: engineering_manager, count: 1}]
    critical: [{role: cto, count: 1}]
  by_category:
    standard: []
    major: [{role: engineering_manager, count: 1}, {role: cto, count: 1}]
standard_catalog:
  - id: security-patch
    title: Security patch
    description: Apply a vendor security patch via the CI pipeline.
    services: [api-server, kubernetes]
  - id: cache-clear
    title: Clear the cache
timeline:
  stakeholders:
    normal: [CSTAKE]
  rollback_triggers: [Error rate > 5%]
emergency:
  fallback: [UFALLBACK]
"""

MANAGERS = ["UMGR1", "UMGR2"]
