"""One view of the trail, read: a page of events in the order asked, where it sits in the view
("151-200 of 200,062", counted with the same filter), the chart of the window, and what the
read asked for (to record it).

Pages are keyset pages (``cursor``: the page past an event, ``before``: the page before one,
``last``: the far end); they keep the window as it was asked, so a preset (the last 24 hours)
keeps moving with the clock and "Newest" is the live window again.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from dstrail.audit.query import (
    bucket_counts,
    count_ahead,
    read_page,
    read_page_before,
    trail_size,
    window_counts,
)
from dstrail.domain.audit_filter import AuditFilter, Cursor
from dstrail.domain.trail import EventRow
from dstrail.errors import InvalidInput
from dstrail.services.names import names_for
from dstrail.services.trail_reads import filter_document
from dstrail.store import Repositories
from dstrail.web.audit_views import EventView, event_view
from dstrail.web.chart import Chart, build_chart, choose_scale
from dstrail.web.filters import ConsoleFilter, Problem


@dataclass(frozen=True, slots=True)
class Paging:
    """Which page of a view: the first, the one past an event (``after``), the one before
    an event (``before``), or the last."""

    after: Cursor | None = None
    before: Cursor | None = None
    last: bool = False

    @property
    def first(self) -> bool:
        """Whether this is the first page (the newest events, newest first)."""
        return self.after is None and self.before is None and not self.last


def read_paging(params: Mapping[str, Sequence[str]]) -> tuple[Paging, list[Problem]]:
    """The page asked for by ``cursor``, ``before`` or ``last``, and a problem for a page
    link that has been changed."""
    cursors: dict[str, Cursor] = {}
    problems: list[Problem] = []
    for key in ("cursor", "before"):
        values = params.get(key, ())
        if values and values[-1]:
            try:
                cursors[key] = Cursor.decode(values[-1], field=key)
            except InvalidInput:
                problems.append(
                    Problem(
                        "cursor",
                        "Page: this page's link was changed and does not say where the page "
                        "starts; go to the first page and page on from there.",
                    )
                )
    last = params.get("last", [""])[-1] == "1"
    return Paging(after=cursors.get("cursor"), before=cursors.get("before"), last=last), problems


@dataclass(frozen=True, slots=True)
class TrailView:
    """A page of a view, where it sits, the chart of its window, and what was asked."""

    filter: ConsoleFilter
    events: list[EventView]
    total: int
    offset: int
    """How many events of the view come before the first one shown."""
    chart: Chart
    window: tuple[int, int]
    has_previous: bool
    has_next: bool
    live_seq: int | None
    """For the first page of a moving window, newest first: the trail's size when it was
    read (the live view asks for the events after it); None otherwise."""
    asked: dict[str, object] = field(default_factory=dict)

    @property
    def first_shown(self) -> int:
        """The position of the first event shown (1 for the first)."""
        return self.offset + 1 if self.events else 0

    @property
    def last_shown(self) -> int:
        """The position of the last event shown."""
        return self.offset + len(self.events)

    @property
    def previous_cursor(self) -> str:
        """The ``before`` of the previous page: the first event shown."""
        return Cursor.after(self.events[0]).encode() if self.events else ""

    @property
    def next_cursor(self) -> str:
        """The ``cursor`` of the next page: the last event shown."""
        return Cursor.after(self.events[-1]).encode() if self.events else ""


def _rows(
    tx: Repositories, audit_filter: AuditFilter, paging: Paging, console: ConsoleFilter, total: int
) -> tuple[list[EventRow], int, bool]:
    """The page's rows, how many events come before them, and whether more come after."""
    size, oldest = console.size, console.oldest_first
    if paging.last:
        rows = read_page_before(tx, audit_filter, before=None, size=size, oldest_first=oldest)
        return rows, max(total - len(rows), 0), False
    if paging.before is not None:
        rows = read_page_before(
            tx, audit_filter, before=paging.before, size=size, oldest_first=oldest
        )
        ahead = count_ahead(tx, audit_filter, rows[0], oldest_first=oldest) if rows else 0
        return rows, ahead, True
    page = read_page(tx, audit_filter, after=paging.after, size=size, oldest_first=oldest)
    if paging.after is None:
        return page.rows, 0, page.next is not None
    ahead = count_ahead(tx, audit_filter, page.rows[0], oldest_first=oldest) if page.rows else total
    return page.rows, ahead, page.next is not None


def read_view(
    tx: Repositories, console: ConsoleFilter, audit_filter: AuditFilter, paging: Paging
) -> TrailView:
    """The page of ``console`` that ``paging`` asks for, read with ``audit_filter``."""
    live = paging.first and console.moving and not console.oldest_first
    # Read before the page: an event recorded meanwhile is then shown twice (the live view
    # skips it), never lost.
    live_seq = trail_size(tx) if live else None
    start_ms, end_ms = audit_filter.start_ms, audit_filter.end_ms
    scale = choose_scale(start_ms, end_ms)
    if scale.from_events:
        counts: Sequence[tuple[int, str, int]] = bucket_counts(
            tx, audit_filter, bucket_ms=scale.step_ms
        )
    else:
        counts = window_counts(tx, audit_filter)
    chart = build_chart(
        counts, scale=scale, start_ms=start_ms, end_ms=end_ms,
        kinds={kind.value for kind in audit_filter.event_kinds},
    )  # fmt: skip
    rows, offset, has_next = _rows(tx, audit_filter, paging, console, chart.total)
    names = names_for(tx, rows)
    asked = filter_document(audit_filter, limit=console.size, cursor=paging.after)
    if paging.before is not None:
        asked["before"] = paging.before.encode()
    if paging.last:
        asked["page"] = "last"
    if console.oldest_first:
        asked["order"] = "oldest first"
    return TrailView(
        filter=console,
        events=[event_view(row, names) for row in rows],
        total=chart.total,
        offset=min(offset, max(chart.total - len(rows), 0)),
        chart=chart,
        window=(start_ms, end_ms),
        has_previous=offset > 0,
        has_next=has_next,
        live_seq=live_seq,
        asked=asked,
    )
