"""In-memory emulator of the Slack Web API.

The test suite (and the demo mode) point the real ``slack_sdk`` clients at this
server instead of slack.com, so flows can be exercised end to end without a
workspace, and so tests can inspect exactly what the bot sent and inject the
failures (rate limits, 5xx, slowness) that are hard to provoke against Slack.

One concern a module: ``server`` (routing, recording, waiting), ``requests`` (reading
any body encoding), ``faults`` (injected failures and delays), ``workspace`` (the state),
``wire`` (shared identifiers and parameter readers), and the method handlers ``chat``,
``conversations``, ``views``, ``users``, ``files`` and ``socket_mode``.
"""

from tooling.emulator.server import SlackEmulator
from tooling.emulator.wire import APP_ID, BOT_ID, BOT_USER_ID, TEAM_ID, TEAM_NAME, WORKSPACE_URL, Call

__all__ = [
    "APP_ID",
    "BOT_ID",
    "BOT_USER_ID",
    "TEAM_ID",
    "TEAM_NAME",
    "WORKSPACE_URL",
    "Call",
    "SlackEmulator",
]
