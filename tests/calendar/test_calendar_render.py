"""The calendar's rendering as plain values: each change once, ended ones on their day, what
is late said on the line, a past range without today's open items."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from domain.calendar import CalendarRange
from domain.enums import Category, Impact, Likelihood, Risk, Status
from domain.listing import Counted
from domain.model import Change, ChangeDraft
from domain.read_models import CalendarView
from modals.calendar_days import duration_label, not_listed
from modals.timeline import calendar_blocks

ZONE = ZoneInfo("Europe/London")
NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def change(n: int, status: Status, starts: datetime, *, hours: float = 1, title: str = "") -> Change:
    return Change(
        id=f"CR-2026-{n:04d}",
        draft=ChangeDraft(
            title=title or f"Change {n}",
            category=Category.NORMAL,
            impact=Impact.LOW,
            likelihood=Likelihood.LOW,
            services=("api-server", "database"),
            starts_at=starts,
            ends_at=starts + timedelta(hours=hours),
            description="d",
            implementer="UIMPL",
        ),
        risk=Risk.LOW,
        status=status,
        requester="UREQ",
        version=1,
        created_at=starts - timedelta(days=1),
        updated_at=starts,
        steps=(),
    )


def view(span: CalendarRange, scheduled: list[Change], **sections: list[Change]) -> CalendarView:
    def counted(name: str) -> Counted:
        return Counted.of(sections.get(name, []))

    return CalendarView(
        span,
        NOW,
        Counted.of(scheduled),
        counted("awaiting"),
        counted("in_progress"),
        counted("overdue"),
        counted("post_overdue"),
    )


def text(blocks: list[dict[str, object]]) -> str:
    return json.dumps(blocks, ensure_ascii=False)


def test_each_change_once_on_its_day_with_owner_services_and_duration() -> None:
    today = CalendarRange(datetime(2026, 11, 25, tzinfo=UTC), datetime(2026, 11, 27, tzinfo=UTC), "Two days")
    closed = change(1, Status.CLOSED, datetime(2026, 11, 25, 8, tzinfo=UTC), title="Done <!channel>")
    failed = change(2, Status.FAILED, datetime(2026, 11, 25, 9, tzinfo=UTC), hours=2.5)
    late = change(3, Status.IN_PROGRESS, datetime(2026, 11, 26, 10, tzinfo=UTC))
    elsewhere = change(4, Status.PENDING_APPROVAL, datetime(2026, 12, 3, 10, tzinfo=UTC))
    rendered = text(
        calendar_blocks(
            view(
                today,
                [late, failed, closed],
                awaiting=[elsewhere],
                in_progress=[late],
                overdue=[late],
            ),
            zone=ZONE,
        )
    )
    assert "*Scheduled* (3)" in rendered
    assert rendered.index("*Wed 25 Nov*") < rendered.index("CR-2026-0001") < rendered.index("CR-2026-0002")
    assert rendered.index("CR-2026-0002") < rendered.index("*Thu 26 Nov*") < rendered.index("CR-2026-0003")
    assert ":lock: Closed · owner <@UIMPL> · api-server, database · 1 h · low risk" in rendered
    assert ":x: Failed" in rendered and "· 2 h 30 min ·" in rendered
    assert "Done &lt;!channel&gt;" in rendered and "<!channel>" not in rendered
    assert rendered.count("CR-2026-0003") == 1 and ":rotating_light: overdue" in rendered
    assert "*Also waiting for approval* (1)" in rendered and rendered.count("CR-2026-0004") == 1
    assert "Also in progress" not in rendered and "Also overdue" not in rendered


def test_a_past_day_shows_what_happened_and_not_todays_open_items() -> None:
    day = CalendarRange(datetime(2026, 11, 23, tzinfo=UTC), datetime(2026, 11, 24, tzinfo=UTC), "Mon 23 Nov")
    done = change(1, Status.COMPLETED, datetime(2026, 11, 23, 10, tzinfo=UTC))
    waiting = change(2, Status.PENDING_APPROVAL, datetime(2026, 11, 30, 10, tzinfo=UTC))
    rendered = text(calendar_blocks(view(day, [done], awaiting=[waiting]), zone=ZONE))
    assert "*What happened* (1)" in rendered and ":tada: Completed" in rendered
    assert "CR-2026-0002" not in rendered and "Also" not in rendered
    nothing = text(calendar_blocks(view(day, []), zone=ZONE))
    assert "*What happened*\\nNone." in nothing


def test_durations_and_the_rest_of_a_capped_section() -> None:
    start = datetime(2026, 11, 23, 10, tzinfo=UTC)
    assert duration_label(start, start + timedelta(minutes=45)) == "45 min"
    assert duration_label(start, start + timedelta(hours=2)) == "2 h"
    assert duration_label(start, start + timedelta(days=1, hours=4, minutes=5)) == "1 d 4 h 5 min"
    assert duration_label(start, start) == "0 min"
    a, b, c = (change(n, Status.PENDING_APPROVAL, start) for n in (1, 2, 3))
    seen = {a.id}
    rest = not_listed(Counted((a, b, c), 250), seen)
    assert [x.id for x in rest] == [b.id, c.id] and rest.total == 249 and seen == {a.id, b.id, c.id}
