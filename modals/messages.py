"""The messages the use cases cause, rendered to (text, blocks) when they are sent.

Each feature's renderer lives next to its other views (cards.py, timeline.py,
review.py, emergency.py, report.py); this module only picks it by the message's type.
What a message shows is loaded when it is sent (`SendTime`): the CR as it is then, or
the read model of a digest, agenda or report.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, assert_never

from domain.messages import (
    ApprovalChase,
    BoardNews,
    CabAgendaPost,
    CalendarDigest,
    ChangeNews,
    ChangesRequested,
    Decided,
    DelegationNews,
    Edited,
    Filed,
    FreezeChanged,
    FreezeCovers,
    IncidentLinked,
    OnCallFound,
    PostChase,
    PostDecided,
    ProgressUpdate,
    ReportPost,
    Rescheduled,
    ReviewChase,
    ReviewDone,
    ReviewRequest,
    ReviewRequired,
    StakeholderNotice,
    TimelineNotice,
)
from domain.model import Change
from domain.policy import Policy
from domain.read_models import CabAgenda, CalendarView, Report
from modals.cards import decided_message, filed_message
from modals.chase import approval_chase_message, delegation_message
from modals.editing import changes_requested_message, edited_message
from modals.emergency import on_call_text, post_chase_message, post_decided_message, review_requested_message
from modals.report import report_blocks, report_text
from modals.review import (
    cab_agenda_blocks,
    incident_linked_message,
    review_chase_message,
    review_done_message,
    review_request_message,
)
from modals.text import Mrkdwn, md
from modals.timeline import (
    calendar_blocks,
    freeze_covers_message,
    freeze_message,
    notice_message,
    progress_message,
    rescheduled_message,
    stakeholder_message,
)

Rendered = tuple[Mrkdwn, list[dict[str, Any]] | None]


@dataclass(frozen=True)
class SendTime:
    """What a message is rendered from, loaded when it is sent: the CR it is about, or
    the read model it shows."""

    policy: Policy
    change: Change | None = None
    calendar: CalendarView | None = None
    agenda: CabAgenda | None = None
    report: Report | None = None

    def the_change(self) -> Change:
        if self.change is None:
            raise ValueError("a message about a change was sent without its change")
        return self.change


def render_message(message: ChangeNews | BoardNews, at: SendTime) -> Rendered:
    """The text (shown in notifications, mrkdwn) and blocks of `message`."""
    zone = at.policy.zone
    match message:
        case FreezeChanged():
            return freeze_message(message, zone), None
        case DelegationNews():
            return delegation_message(message, zone), None
        case CalendarDigest():
            assert at.calendar is not None, "a digest is sent with its calendar"
            return md("{}", message.span.title), calendar_blocks(at.calendar, zone=zone)
        case CabAgendaPost():
            assert at.agenda is not None, "an agenda is sent with its changes"
            return Mrkdwn("CAB agenda"), cab_agenda_blocks(at.agenda, zone=zone)
        case ReportPost():
            assert at.report is not None, "a report is sent with its metrics"
            report = at.report
            return report_text(report.metrics, title=report.title), report_blocks(
                report.metrics, title=report.title, zone=zone, previous=report.previous
            )
        case _:
            return _change_message(message, at.the_change(), at.policy)


def _change_message(message: ChangeNews, change: Change, policy: Policy) -> Rendered:
    zone = policy.zone
    match message:
        case Filed():
            return filed_message(change), None
        case Decided():
            return decided_message(change, message), None
        case ProgressUpdate():
            return progress_message(change, message), None
        case Rescheduled():
            return rescheduled_message(change, message, zone), None
        case ReviewRequest():
            return review_request_message(change, zone)
        case ReviewChase():
            return review_chase_message(change, message, zone)
        case ReviewDone():
            return review_done_message(change, message), None
        case IncidentLinked():
            return incident_linked_message(change, message), None
        case OnCallFound():
            return on_call_text(change, message), None
        case PostChase():
            return post_chase_message(change, message, zone)
        case PostDecided():
            return post_decided_message(change, message), None
        case ApprovalChase():
            return approval_chase_message(change, message, zone), None
        case ReviewRequired():
            return review_requested_message(change), None
        case Edited():
            return edited_message(change, message), None
        case ChangesRequested():
            return changes_requested_message(change, message)
        case TimelineNotice():
            return notice_message(
                change,
                key=message.key,
                late=message.late,
                due_at=message.due_at,
                policy=policy,
                actions=message.actions,
            )
        case FreezeCovers():
            return freeze_covers_message(change, message, zone), None
        case StakeholderNotice():
            return stakeholder_message(change, message, policy=policy)
        case _:
            assert_never(message)
