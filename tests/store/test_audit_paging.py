"""Keyset paging over the trail: every page after a cursor reads from the cursor on, not the
whole window again, and pages together are exactly the window."""

from __future__ import annotations

from typing import Any

from sqlalchemy import event

from dstrail.audit.query import iter_chunks
from dstrail.context import Dstrail
from dstrail.domain.audit_filter import AuditFilter, Cursor
from dstrail.domain.trail import SEQ, TS_MS
from tests.support import new_event

T0 = 1_700_000_000_000


def _fill(dstrail: Dstrail, count: int) -> None:
    with dstrail.store.write() as tx:
        for i in range(count):
            tx.audit.record(new_event(T0 + i // 3))  # three events share each millisecond


def test_chunks_together_are_the_window_in_order(dstrail: Dstrail) -> None:
    _fill(dstrail, 50)
    window = AuditFilter(start_ms=T0, end_ms=T0 + 100)
    with dstrail.store.read() as tx:
        whole = tx.audit.page(window, limit=1000)
    chunked = [row for chunk in iter_chunks(dstrail.store, window, chunk_rows=7) for row in chunk]
    assert chunked == whole and len(whole) == 50
    assert [(row[TS_MS], row[SEQ]) for row in whole] == sorted(
        ((row[TS_MS], row[SEQ]) for row in whole), reverse=True
    )


def test_a_page_after_a_cursor_bounds_the_window_by_the_cursor(dstrail: Dstrail) -> None:
    _fill(dstrail, 30)
    window = AuditFilter(start_ms=T0, end_ms=T0 + 100)
    cursor = Cursor(ts_ms=T0 + 5, seq=17)
    seen: list[Any] = []

    def capture(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if "FROM audit_events" in statement:
            seen.append(parameters)

    event.listen(dstrail.store.engine, "before_cursor_execute", capture)
    try:
        with dstrail.store.read() as tx:
            rows = tx.audit.page(window, after=cursor, limit=100)
    finally:
        event.remove(dstrail.store.engine, "before_cursor_execute", capture)
    assert [row[SEQ] for row in rows] == list(range(16, 0, -1))
    values = list(seen[-1].values()) if isinstance(seen[-1], dict) else list(seen[-1])
    # the range scanned is [window start, cursor time]; the window's own end is not used
    assert T0 + 5 in values and T0 + 100 not in values
