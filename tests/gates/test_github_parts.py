"""The GitHub side's parts as plain values: finding a change id, reading an event, the
signature, which callback URLs get the installation token, the policy's new fields."""

from __future__ import annotations

import hashlib
import hmac
from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from adapters.github import GithubDeployments
from bot.github_webhook import Malformed, deployment_request, signature_valid
from domain.deployments import find_change_ref
from domain.policy import PolicyError
from domain.policy_loader import parse_policy
from tests.support.github_fake import app_private_key
from tests.support.policy_fixture import TEST_POLICY


@pytest.mark.parametrize(
    ("texts", "found"),
    [
        (["release/CR-2026-0042"], "CR-2026-0042"),
        (["main", "Fix the gateway (cr-2026-0007)"], "CR-2026-0007"),
        (["XCR-2026-0042", "CR-2026-00423"], "CR-2026-00423"),
        (["CR-2026-004", "CR-26-0042", "", None], None),
        (["first CR-2026-0001 then CR-2026-0002"], "CR-2026-0001"),
    ],
)
def test_a_change_id_is_found_where_people_write_it(texts: list[str | None], found: str | None) -> None:
    assert find_change_ref(texts) == found


@given(st.text(max_size=200))
def test_finding_a_change_id_never_raises(text: str) -> None:
    found = find_change_ref([text])
    assert found is None or found.startswith("CR-")


def event(**overrides: object) -> dict[str, object]:
    base: dict[str, object] = {
        "action": "requested",
        "environment": "production",
        "deployment_callback_url": "https://api.github.com/repos/o/r/actions/runs/12/deployment_protection_rule",
        "deployment": {"id": 5, "ref": "main", "payload": {"inputs": {"change": "CR-2026-0003"}}},
        "repository": {"full_name": "o/r", "html_url": "https://github.com/o/r"},
        "installation": {"id": 9},
    }
    return {**base, **overrides}


def test_an_event_is_read_with_its_texts_in_order() -> None:
    request = deployment_request(
        event(
            head_commit={"message": "Bump (CR-2026-0002)"},
            pull_requests=[{"title": "CR-2026-0001 gateway"}],
        )
    )
    assert (request.external_id, request.repository, request.environment) == (
        "5:production",
        "o/r",
        "production",
    )
    assert request.run_url == "https://github.com/o/r/actions/runs/12"
    assert request.installation_id == 9 and request.ref == "main"
    assert find_change_ref(request.texts) == "CR-2026-0002"  # the commit before the PR title
    assert find_change_ref(deployment_request(event()).texts) == "CR-2026-0003"  # a workflow input


@pytest.mark.parametrize(
    "bad",
    [
        {"deployment": "nope"},
        {"repository": {"full_name": "not a repo"}},
        {"environment": "", "deployment": {"id": 5}},
        {"deployment_callback_url": None},
    ],
)
def test_a_malformed_event_is_refused(bad: dict[str, object]) -> None:
    with pytest.raises((Malformed, KeyError, TypeError, ValueError)):
        deployment_request(event(**bad))


def test_the_signature_is_the_hmac_of_the_raw_body() -> None:
    body = b'{"a": 1}'
    good = "sha256=" + hmac.new(b"s3cret", body, hashlib.sha256).hexdigest()
    assert signature_valid(secret="s3cret", body=body, signature=good)
    assert not signature_valid(secret="s3cret", body=body + b" ", signature=good)
    assert not signature_valid(secret="other", body=body, signature=good)
    assert not signature_valid(secret="", body=body, signature="sha256=")
    assert not signature_valid(secret="s3cret", body=body, signature=good.replace("sha256=", "sha1="))
    assert not signature_valid(secret="s3cret", body=body, signature=None)
    assert not signature_valid(secret="s3cret", body=body, signature="sha256=é")


def test_only_https_urls_on_the_configured_api_host_get_the_token() -> None:
    github = GithubDeployments(
        app_id=1, private_key=app_private_key(), api_url="https://ghe.example.com/api/v3"
    )
    assert github.allowed(
        "https://ghe.example.com/api/v3/repos/o/r/actions/runs/1/deployment_protection_rule"
    )
    for url in (
        "http://ghe.example.com/api/v3/repos/o/r/actions/runs/1/deployment_protection_rule",
        "https://evil.example.com/api/v3/repos/o/r/actions/runs/1/deployment_protection_rule",
        "https://ghe.example.com:8443/api/v3/repos/o/r/actions/runs/1/deployment_protection_rule",
        "https://user@ghe.example.com/api/v3/repos/o/r",
        "https://ghe.example.com/other/repos/o/r",
        "not a url",
    ):
        assert not github.allowed(url), url


GITHUB = """integrations:
  github:
    app_id: 1
    private_key_file: /run/secrets/github-app.pem
    api_url: {api_url}
    mappings:
      - repository: example-org/api
        environment: production
        standard: security-patch
        window: {window}
"""


def test_the_api_url_and_a_mapping_window_are_read() -> None:
    policy = parse_policy(TEST_POLICY + GITHUB.format(api_url="https://ghe.example.com/api/v3", window="2h"))
    github = policy.integrations.github
    assert github is not None and github.api_url == "https://ghe.example.com/api/v3"
    assert github.mappings[0].window == timedelta(hours=2)


@pytest.mark.parametrize(
    ("api_url", "window"), [("http://api.github.com", "1h"), ("https://api.github.com", "0"), ("x", "1h")]
)
def test_a_plain_http_api_or_an_empty_window_is_refused(api_url: str, window: str) -> None:
    with pytest.raises(PolicyError):
        parse_policy(TEST_POLICY + GITHUB.format(api_url=api_url, window=window))


def test_a_missing_or_broken_key_file_is_refused_at_start(tmp_path: Path) -> None:
    broken = tmp_path / "broken.pem"
    broken.write_text("-----BEGIN PRIVATE KEY-----\nnope\n-----END PRIVATE KEY-----\n")
    for path in (tmp_path / "missing.pem", broken):
        with pytest.raises(ValueError, match="private key"):
            GithubDeployments.from_key_file(
                app_id=1, private_key_file=str(path), api_url="https://api.github.com"
            )
    good = tmp_path / "good.pem"
    good.write_text(app_private_key())
    GithubDeployments.from_key_file(app_id=1, private_key_file=str(good), api_url="https://api.github.com")
