"""Emergency rules as plain values."""

from __future__ import annotations

from domain.emergency import required_declaration_channel
from domain.policy_loader import parse_policy
from tests.support.policy_fixture import TEST_POLICY


def test_an_emergency_is_declared_from_the_incidents_channel_when_one_is_set() -> None:
    policy = parse_policy(TEST_POLICY)
    incidents = policy.channels.incidents
    assert incidents
    assert required_declaration_channel(policy, channel=incidents) is None
    assert required_declaration_channel(policy, channel="CELSEWHERE") == incidents
    anywhere = policy.model_copy(update={"channels": policy.channels.model_copy(update={"incidents": ""})})
    assert required_declaration_channel(anywhere, channel="CELSEWHERE") is None
