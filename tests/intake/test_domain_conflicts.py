"""Conflicts: open changes on the same or a dependent service in an overlapping window."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.conflicts import OPEN_FOR_CONFLICTS, Conflict, find_conflicts, related_services
from domain.enums import Category, Impact, Likelihood, Risk, Status
from domain.model import Change, ChangeDraft, StepSnapshot

FAST = settings(max_examples=150, deadline=None)

T0 = datetime(2026, 6, 9, 10, 0, tzinfo=UTC)
SERVICES = ["api-server", "database", "redis-cache", "kubernetes"]
DEPENDENCIES = {"api-server": ["database", "redis-cache"]}


def hours(n: float) -> datetime:
    return T0 + timedelta(hours=n)


def change(
    change_id: str,
    services: tuple[str, ...] | list[str],
    start: datetime,
    end: datetime,
    status: Status = Status.APPROVED,
    title: str | None = None,
) -> Change:
    draft = ChangeDraft(
        title=title or f"Change {change_id}",
        category=Category.NORMAL,
        impact=Impact.MEDIUM,
        likelihood=Likelihood.LOW,
        services=tuple(services),
        starts_at=start,
        ends_at=end,
        description="A change under test.",
    )
    return Change(
        id=change_id,
        draft=draft,
        risk=Risk.MEDIUM,
        status=status,
        requester="UREQ",
        version=1,
        created_at=T0 - timedelta(days=1),
        updated_at=T0 - timedelta(days=1),
        steps=(StepSnapshot(role="tech_lead", count=1, members=("ULEAD1",)),),
    )


def conflicts(
    services: list[str],
    start: datetime,
    end: datetime,
    others: list[Change],
    dependencies: dict[str, list[str]] | None = None,
    exclude_id: str | None = None,
) -> list[Conflict]:
    return find_conflicts(
        services=services,
        start=start,
        end=end,
        others=others,
        dependencies=DEPENDENCIES if dependencies is None else dependencies,
        exclude_id=exclude_id,
    )


# ── related services ────────────────────────────────────────────────


def test_related_services_both_directions() -> None:
    assert related_services(["api-server"], DEPENDENCIES) == {"api-server", "database", "redis-cache"}
    assert related_services(["database"], DEPENDENCIES) == {"database", "api-server"}
    assert related_services(["redis-cache"], DEPENDENCIES) == {"redis-cache", "api-server"}
    assert related_services(["kubernetes"], DEPENDENCIES) == {"kubernetes"}
    assert related_services(["database", "kubernetes"], DEPENDENCIES) == {
        "database",
        "kubernetes",
        "api-server",
    }
    assert related_services([], DEPENDENCIES) == set()
    assert related_services(["database"], {}) == {"database"}


def test_related_services_are_not_transitive() -> None:
    chain = {"web": ["api-server"], "api-server": ["database"]}
    assert related_services(["web"], chain) == {"web", "api-server"}
    assert related_services(["database"], chain) == {"database", "api-server"}


# ── find_conflicts ──────────────────────────────────────────────────


def test_overlap_on_the_same_service_conflicts() -> None:
    other = change("CR-2026-0001", ["database", "kubernetes"], hours(1), hours(3), title="Upgrade Postgres")
    found = conflicts(["database"], hours(0), hours(2), [other])
    assert found == [Conflict("CR-2026-0001", "Upgrade Postgres", ("database",), hours(1), hours(3))]


@pytest.mark.parametrize(
    ("start", "end", "expected"),
    [
        (hours(2), hours(4), False),  # starts when the other ends
        (hours(-2), hours(0), False),  # ends when the other starts
        (hours(-2), hours(0) + timedelta(minutes=1), True),  # one minute of overlap
        (hours(2) - timedelta(minutes=1), hours(4), True),
        (hours(0.5), hours(1), True),  # inside
        (hours(-1), hours(3), True),  # around
        (hours(0), hours(2), True),  # the same window
        (hours(5), hours(6), False),  # later
    ],
)
def test_overlap_is_half_open(start: datetime, end: datetime, expected: bool) -> None:
    other = change("CR-2026-0001", ["database"], hours(0), hours(2))
    assert bool(conflicts(["database"], start, end, [other])) is expected


def test_unrelated_services_do_not_conflict() -> None:
    other = change("CR-2026-0001", ["kubernetes"], hours(0), hours(2))
    assert conflicts(["database"], hours(0), hours(2), [other]) == []
    # siblings of a shared dependent are not related to each other
    cache = change("CR-2026-0002", ["redis-cache"], hours(0), hours(2))
    assert conflicts(["database"], hours(0), hours(2), [cache]) == []


def test_dependent_services_conflict_both_directions() -> None:
    dependencies = {"api-server": ["database"]}
    api = change("CR-2026-0001", ["api-server"], hours(0), hours(2))
    database = change("CR-2026-0002", ["database"], hours(1), hours(3))
    # a database change sees the api-server change
    found = conflicts(["database"], hours(1), hours(3), [api], dependencies)
    assert [(c.change_id, c.services) for c in found] == [("CR-2026-0001", ("api-server",))]
    # and an api-server change sees the database change
    found = conflicts(["api-server"], hours(0), hours(2), [database], dependencies)
    assert [(c.change_id, c.services) for c in found] == [("CR-2026-0002", ("database",))]
    # without the dependency they are unrelated
    assert conflicts(["database"], hours(1), hours(3), [api], {}) == []


def test_conflict_lists_the_shared_and_dependent_services_of_the_other_change() -> None:
    other = change("CR-2026-0001", ["kubernetes", "redis-cache", "database"], hours(0), hours(2))
    found = conflicts(["api-server"], hours(1), hours(2), [other])
    assert found[0].services == ("redis-cache", "database")  # in the other change's order, unrelated left out


@pytest.mark.parametrize("status", list(Status))
def test_only_open_changes_conflict(status: Status) -> None:
    other = change("CR-2026-0001", ["database"], hours(0), hours(2), status=status)
    found = conflicts(["database"], hours(0), hours(2), [other])
    # a change sent back for changes still holds its window: it goes ahead once edited
    open_ = (Status.PENDING_APPROVAL, Status.APPROVED, Status.IN_PROGRESS, Status.CHANGES_REQUESTED)
    expected = status in open_
    assert bool(found) is expected
    assert (status in OPEN_FOR_CONFLICTS) is expected


def test_closed_rejected_cancelled_completed_are_ignored() -> None:
    others = [
        change(f"CR-2026-000{i}", ["database"], hours(0), hours(2), status=status)
        for i, status in enumerate(
            [Status.CLOSED, Status.REJECTED, Status.CANCELLED, Status.COMPLETED, Status.APPROVED], start=1
        )
    ]
    assert [c.change_id for c in conflicts(["database"], hours(0), hours(2), others)] == ["CR-2026-0005"]


def test_exclude_id_leaves_out_the_change_itself() -> None:
    itself = change("CR-2026-0001", ["database"], hours(0), hours(2))
    other = change("CR-2026-0002", ["database"], hours(1), hours(2))
    found = conflicts(["database"], hours(0), hours(2), [itself, other], exclude_id="CR-2026-0001")
    assert [c.change_id for c in found] == ["CR-2026-0002"]
    assert len(conflicts(["database"], hours(0), hours(2), [itself, other])) == 2


def test_conflicts_are_ordered_by_start_then_id() -> None:
    others = [
        change("CR-2026-0004", ["database"], hours(1), hours(5)),
        change("CR-2026-0001", ["api-server"], hours(3), hours(4)),
        change("CR-2026-0003", ["database"], hours(-1), hours(2)),
        change("CR-2026-0002", ["database"], hours(1), hours(2)),
    ]
    found = conflicts(["database"], hours(0), hours(6), others)
    assert [c.change_id for c in found] == ["CR-2026-0003", "CR-2026-0002", "CR-2026-0004", "CR-2026-0001"]
    assert [c.starts_at for c in found] == sorted(c.starts_at for c in found)


def test_no_others_no_conflicts() -> None:
    assert conflicts(["database"], hours(0), hours(2), []) == []


# ── properties ──────────────────────────────────────────────────────

service_sets = st.lists(st.sampled_from(SERVICES), min_size=1, max_size=3, unique=True)
dependency_maps = st.dictionaries(
    st.sampled_from(SERVICES), st.lists(st.sampled_from(SERVICES), max_size=3, unique=True), max_size=3
)
windows = st.tuples(st.integers(0, 48), st.integers(1, 12)).map(
    lambda w: (hours(w[0] / 4), hours(w[0] / 4 + w[1] / 4))
)
open_statuses = st.sampled_from(OPEN_FOR_CONFLICTS)


@given(
    a=service_sets, b=service_sets, wa=windows, wb=windows, dependencies=dependency_maps, status=open_statuses
)
@FAST
def test_conflicts_are_symmetric(
    a: list[str],
    b: list[str],
    wa: tuple[datetime, datetime],
    wb: tuple[datetime, datetime],
    dependencies: dict[str, list[str]],
    status: Status,
) -> None:
    change_a = change("CR-2026-0001", a, *wa, status=status)
    change_b = change("CR-2026-0002", b, *wb, status=status)
    a_sees_b = bool(
        find_conflicts(services=a, start=wa[0], end=wa[1], others=[change_b], dependencies=dependencies)
    )
    b_sees_a = bool(
        find_conflicts(services=b, start=wb[0], end=wb[1], others=[change_a], dependencies=dependencies)
    )
    assert a_sees_b is b_sees_a


@given(
    mine=service_sets,
    window=windows,
    others=st.lists(st.tuples(service_sets, windows, st.sampled_from(list(Status))), max_size=6),
    dependencies=dependency_maps,
)
@FAST
def test_find_conflicts_matches_a_reference(
    mine: list[str],
    window: tuple[datetime, datetime],
    others: list[tuple[list[str], tuple[datetime, datetime], Status]],
    dependencies: dict[str, list[str]],
) -> None:
    start, end = window
    changes = [change(f"CR-2026-{i:04d}", s, *w, status=st_) for i, (s, w, st_) in enumerate(others, start=1)]

    def related(x: str, y: str) -> bool:
        return x == y or y in dependencies.get(x, ()) or x in dependencies.get(y, ())

    expected = sorted(
        (c.draft.starts_at, c.id)
        for c in changes
        if c.status in OPEN_FOR_CONFLICTS
        and c.draft.starts_at < end
        and start < c.draft.ends_at
        and any(related(m, s) for m in mine for s in c.draft.services)
    )
    found = find_conflicts(services=mine, start=start, end=end, others=changes, dependencies=dependencies)
    assert [(c.starts_at, c.change_id) for c in found] == expected
    for conflict in found:
        assert conflict.services
        assert all(any(related(m, s) for m in mine) for s in conflict.services)
