"""What `/change` reads from the words Slack sends with escaping on (manifest.yml): a link
as the URL typed, a mention as the user id the sub-commands that name people read."""

from __future__ import annotations

from handlers.commands import parse_command


def test_an_escaped_link_is_the_url_typed_and_a_mention_is_kept() -> None:
    command = parse_command(
        {
            "text": "incident CR-2026-0001 <https://acme.pagerduty.com/incidents/P1|P1>",
            "user_id": "UREQ",
            "trigger_id": "t-1",
        }
    )
    assert (command.name, command.args) == (
        "incident",
        ("CR-2026-0001", "https://acme.pagerduty.com/incidents/P1"),
    )
    delegate = parse_command({"text": "delegate <@ULEAD2|carol> until 2026-12-24", "user_id": "ULEAD1"})
    assert delegate.args == ("<@ULEAD2|carol>", "until", "2026-12-24")


def test_text_that_only_looks_like_a_link_is_left_alone() -> None:
    command = parse_command({"text": "freeze start <!channel> <javascript:alert(1)|x>", "user_id": "UCTO"})
    assert command.args == ("start", "<!channel>", "<javascript:alert(1)|x>")
