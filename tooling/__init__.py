"""The emulated-Slack tooling: the Slack emulator, the demo and `changebot slack send`.

It sits above `bot/` (it builds the app with the factory); the CLI imports it lazily, inside
the `demo` and `slack` commands, and the tests use its emulator as their one fake Slack.
"""
