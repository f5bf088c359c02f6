"""The policy the tests run against: every role shape (users and a user group)."""

# The suite's changes are filed without a test plan and at any notice: the policy's
# default required fields and lead times (the documents') are off in the test policy, and
# on in the tests of them, which drop these lines: TEST_POLICY.replace(RULES_OFF, "").
RULES_OFF = "required_fields: {}\nlead_time: {}\n"

TEST_POLICY = (
    """
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
    + RULES_OFF
)

MANAGERS = ["UMGR1", "UMGR2"]
