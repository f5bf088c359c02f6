"""What handlers and jobs are given: the use cases and the Slack door, nothing else."""

from __future__ import annotations

from dataclasses import dataclass

from bot.gateway import SlackGateway
from bot.outbox import OutboxDispatcher
from domain.clock import Clock
from domain.policy import Policy
from domain.service import ChangeService


@dataclass(frozen=True)
class AppContext:
    service: ChangeService
    gateway: SlackGateway
    dispatcher: OutboxDispatcher
    policy: Policy
    clock: Clock
