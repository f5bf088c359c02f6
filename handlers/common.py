"""What the listeners share: reading a button click, answering the one who clicked, and
acking a modal's submission with its errors shown inline."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

from pydantic import ValidationError
from slack_bolt.async_app import AsyncAck

from domain.errors import ChangeNotFound, DecisionConflict
from domain.intake import IntakeRejected
from handlers.context import AppContext
from modals.text import Mrkdwn


class Click(NamedTuple):
    """A click on one of a change's buttons: which change, who, where."""

    change_id: str
    user: str
    channel: str
    team: str | None
    trigger_id: str


def clicked(body: dict[str, Any]) -> Click:
    action = (body.get("actions") or [{}])[0]
    channel = (body.get("channel") or {}).get("id") or (body.get("container") or {}).get("channel_id")
    return Click(
        change_id=str(action.get("value", "")),
        user=str(body["user"]["id"]),
        channel=str(channel or ""),
        team=(body.get("team") or {}).get("id"),
        trigger_id=str(body.get("trigger_id")),
    )


async def tell(ctx: AppContext, click: Click, text: Mrkdwn | None) -> None:
    """Say why a click did nothing, to the one who clicked only; nothing when it worked."""
    if text:
        await ctx.gateway.ephemeral(channel=click.channel, user=click.user, text=text)


@dataclass(frozen=True)
class FormErrors:
    """How a modal shows what stopped its submission, under which input (`field`).

    `refused` formats the use case's refusal, and `lost` (default: the same) the change
    vanishing or moving under us (`lost_on`); `stale` answers a form whose hidden metadata
    no longer parses (`stale_on`)."""

    field: str
    refused: str
    stale: str
    lost: str | None = None
    stale_on: tuple[type[Exception], ...] = (ValidationError,)
    lost_on: tuple[type[Exception], ...] = (ChangeNotFound, DecisionConflict)


async def answer_form(ack: AsyncAck, errors: FormErrors, submit: Callable[[], Awaitable[str | None]]) -> None:
    """Run `submit` (parse the form, call the use case, return its refusal) before the ack,
    so the modal closes when it went through and shows the problem inline when not."""
    shown: dict[str, str] | None = None
    try:
        refusal = await submit()
        if refusal:
            shown = {errors.field: errors.refused.format(refusal)}
    except IntakeRejected as exc:
        shown = exc.errors
    except errors.stale_on:
        shown = {errors.field: errors.stale}
    except errors.lost_on as exc:
        shown = {errors.field: (errors.lost or errors.refused).format(exc)}
    await (ack(response_action="errors", errors=shown) if shown else ack())
