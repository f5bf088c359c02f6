"""The context the composition root builds; listeners see it as handlers.context.AppContext."""

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
