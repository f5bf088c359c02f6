"""Where a pipeline-filed change came from: validated on filing, shown on the card (a link
only to an http(s) run, always escaped) and printed by `changebot changes show --json`."""

from __future__ import annotations

import json
from dataclasses import replace
from zoneinfo import ZoneInfo

import pytest

from bot.cli import change_as_json
from domain.clock import FakeClock
from domain.intake import IntakeRejected, validate_form
from domain.limits import MAX_SOURCE_KIND, MAX_SOURCE_REF, MAX_SOURCE_URL
from domain.model import Change, ChangeSource
from domain.service import ChangeService
from modals.cards import change_card, source_link
from tests.support.change_forms import REQUESTER, change_form, policy_with

POLICY = policy_with()
RUN = "https://github.com/example-org/api/actions/runs/42"


def source_errors(source: ChangeSource, clock: FakeClock) -> dict[str, str]:
    with pytest.raises(IntakeRejected) as caught:
        validate_form(change_form(clock, source=source), policy=POLICY, now=clock.now())
    return caught.value.errors


def test_a_source_is_trimmed_and_empty_parts_are_none(clock: FakeClock) -> None:
    form = change_form(clock, source=ChangeSource(" GitHub ", f"  {RUN} ", " release/ 2.4 "))
    draft = validate_form(form, policy=POLICY, now=clock.now())
    assert draft.source == ChangeSource("github", RUN, "release/ 2.4")
    bare = validate_form(
        change_form(clock, source=ChangeSource("api", " ", "")), policy=POLICY, now=clock.now()
    )
    assert bare.source == ChangeSource("api", None, None)
    assert validate_form(change_form(clock), policy=POLICY, now=clock.now()).source is None


@pytest.mark.parametrize(
    "source",
    [
        ChangeSource(""),
        ChangeSource("git hub"),
        ChangeSource("x" * (MAX_SOURCE_KIND + 1)),
        ChangeSource("github", "https://example.com/a b"),
        ChangeSource("github", "https://example.com/" + "a" * MAX_SOURCE_URL),
        ChangeSource("github", RUN, "r" * (MAX_SOURCE_REF + 1)),
    ],
)
def test_a_bad_source_is_one_error_on_the_source(source: ChangeSource, clock: FakeClock) -> None:
    assert list(source_errors(source, clock)) == ["source"]


async def filed(service: ChangeService, clock: FakeClock, source: ChangeSource) -> Change:
    return await service.file_change(form=change_form(clock), requester=REQUESTER, source=source)


def card_text(change: Change) -> str:
    return json.dumps(change_card(change, zone=ZoneInfo("UTC")))


async def test_the_card_links_an_http_run(service: ChangeService, clock: FakeClock) -> None:
    change = await filed(service, clock, ChangeSource("github", RUN, "v2.4.0"))
    assert f"*Source*\\n<{RUN}|github v2.4.0>" in card_text(change)


@pytest.mark.parametrize(
    ("source", "shown"),
    [
        (ChangeSource("api"), "api"),
        (ChangeSource("argocd", None, "main"), "argocd main"),
        (ChangeSource("gitlab", "javascript:alert(1)", "main"), "gitlab main javascript:alert(1)"),
        (ChangeSource("api", "ftp://example.com/run", None), "api ftp://example.com/run"),
        (
            ChangeSource("api", "https://example.com/?a=1&b=<@U123>", "<!channel>"),
            "api &lt;!channel&gt; https://example.com/?a=1&amp;b=&lt;@U123&gt;",
        ),
    ],
)
def test_anything_but_a_plain_http_link_is_escaped_text(source: ChangeSource, shown: str) -> None:
    assert source_link(source) == shown


def test_a_link_escapes_its_url_and_label() -> None:
    link = source_link(ChangeSource("github", "https://example.com/run?a=1&b=2", "<!here>"))
    assert link == "<https://example.com/run?a=1&amp;b=2|github &lt;!here&gt;>"


async def test_a_change_filed_by_the_form_shows_no_source(service: ChangeService, clock: FakeClock) -> None:
    change = await service.submit_change(form=change_form(clock), requester=REQUESTER)
    assert "*Source*" not in card_text(change)


async def test_the_cli_json_has_a_source_object_or_null(service: ChangeService, clock: FakeClock) -> None:
    change = await filed(service, clock, ChangeSource("github", RUN, "v2.4.0"))
    data = json.loads(json.dumps(change_as_json(change)))
    assert data["source"] == {"kind": "github", "url": RUN, "ref": "v2.4.0"}
    by_form = replace(change, draft=replace(change.draft, source=None))
    assert json.loads(json.dumps(change_as_json(by_form)))["source"] is None
