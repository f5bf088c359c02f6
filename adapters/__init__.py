"""Adapters to the world outside Slack: PagerDuty, Prometheus, the ICS feed, report charts, audit export.

They import the domain (and storage where they read it); `bot/` wires them in.
"""
