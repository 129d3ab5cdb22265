"""The reads the console's trail page makes, on SQLite and PostgreSQL: a data source id filter,
object key patterns, oldest-first keyset pages and the page before a cursor, counts and
positions, events recorded after a sequence number, counts by time bucket, and every name the
trail holds (one index seek a name)."""

from __future__ import annotations

from dstrail.audit.query import (
    bucket_counts,
    count_ahead,
    count_matching,
    data_source_names,
    events_since,
    names_in_trail,
    read_page,
    read_page_before,
)
from dstrail.context import Dstrail
from dstrail.domain.audit_filter import AuditFilter, Cursor
from dstrail.domain.trail import SEQ, TS_MS, EventKind
from tests.support import new_event

T0 = 1_700_000_000_000
HOUR = 3_600_000


def _append(dstrail: Dstrail, *events: tuple[int, dict[str, object]]) -> None:
    with dstrail.store.write() as tx:
        for ts, fields in events:
            tx.audit.record(new_event(ts, **fields))


def _seqs(rows: list[tuple[object, ...]]) -> list[int]:
    return [int(str(row[SEQ])) for row in rows]


def test_a_data_source_id_keeps_a_reused_names_histories_apart(dstrail: Dstrail) -> None:
    first, second = "1" * 24, "2" * 24
    _append(
        dstrail,
        (T0, {"data_source_id": first, "data_source_name": "reused"}),
        (T0 + 1, {"data_source_id": first, "data_source_name": "reused"}),
        (T0 + 2, {"data_source_id": second, "data_source_name": "reused"}),
    )
    window = AuditFilter(start_ms=T0, end_ms=T0 + 10)
    with dstrail.store.read() as tx:
        by_name = tx.audit.page(AuditFilter(T0, T0 + 10, data_source_names=("reused",)))
        by_first = tx.audit.page(AuditFilter(T0, T0 + 10, data_source_ids=(first,)))
        by_second = tx.audit.page(AuditFilter(T0, T0 + 10, data_source_ids=(second,)))
        counted = count_matching(tx, AuditFilter(T0, T0 + 10, data_source_ids=(first,)))
        assert count_matching(tx, window) == 3
    assert _seqs(by_name) == [3, 2, 1]
    assert _seqs(by_first) == [2, 1] and _seqs(by_second) == [3] and counted == 2


def test_object_key_patterns_match_keys_and_prefixes_letter_case_ignored(
    dstrail: Dstrail,
) -> None:
    _append(
        dstrail,
        (T0, {"metadata": {"objectKey": "reports/2024/Q1.csv"}}),
        (T0 + 1, {"metadata": {"prefix": "reports/"}}),
        (T0 + 2, {"metadata": {"objectKey": "raw/reports.csv"}}),
        (T0 + 3, {"metadata": {"objectKey": "a_b%c.csv"}}),
        (T0 + 4, {"metadata": {"objectKey": "axbyc.csv"}}),
        (T0 + 5, {"metadata": {"operation": "getDataSource"}}),
    )

    def keys(*patterns: str) -> list[int]:
        with dstrail.store.read() as tx:
            rows = tx.audit.page(AuditFilter(T0, T0 + 10, object_keys=patterns))
            assert count_matching(tx, AuditFilter(T0, T0 + 10, object_keys=patterns)) == len(rows)
        return sorted(_seqs(rows))

    assert keys("reports/*") == [1, 2]
    assert keys("REPORTS/*") == [1, 2]
    assert keys("*reports*") == [1, 2, 3]
    assert keys("reports/2024/q1.csv") == [1]
    assert keys("reports") == []  # no *: the whole key
    assert keys("a_b%c.csv") == [4]  # % and _ are characters, not wildcards
    assert keys("a*c.csv") == [4, 5]
    assert keys("raw/*", "reports/2024/*") == [1, 3]


def test_pages_oldest_first_and_the_page_before_a_cursor(dstrail: Dstrail) -> None:
    _append(dstrail, *((T0 + i // 3, {}) for i in range(20)))  # three events a millisecond
    window = AuditFilter(start_ms=T0, end_ms=T0 + 100)
    with dstrail.store.read() as tx:
        newest = tx.audit.page(window, limit=100)
        oldest = read_page(tx, window, after=None, size=7, oldest_first=True)
        second = read_page(tx, window, after=oldest.next, size=7, oldest_first=True)
        back = read_page_before(tx, window, before=Cursor.after(second.rows[0]), size=7,
                                oldest_first=True)  # fmt: skip
        last = read_page_before(tx, window, before=None, size=7)
        ahead = count_ahead(tx, window, second.rows[0], oldest_first=True)
        ahead_newest = count_ahead(tx, window, newest[8])
    assert _seqs(newest) == list(range(20, 0, -1))
    assert _seqs(oldest.rows) == list(range(1, 8)) and _seqs(second.rows) == list(range(8, 15))
    assert back == oldest.rows
    assert _seqs(last) == list(range(7, 0, -1))  # the oldest seven, newest first
    assert (ahead, ahead_newest) == (7, 8)
    assert all(row[TS_MS] >= T0 for row in second.rows)


def test_events_after_a_sequence_number_in_the_order_recorded(dstrail: Dstrail) -> None:
    _append(dstrail, (T0 + 5, {}), (T0 + 1, {"data_source_name": "other"}), (T0 + 2, {}))
    window = AuditFilter(start_ms=T0, end_ms=T0 + 10, data_source_names=("ds",))
    with dstrail.store.read() as tx:
        assert _seqs(events_since(tx, window, after_seq=0, limit=10)) == [1, 3]
        assert _seqs(events_since(tx, window, after_seq=1, limit=10)) == [3]
        assert events_since(tx, window, after_seq=3, limit=10) == []


def test_counts_by_time_bucket_are_exactly_the_filter(dstrail: Dstrail) -> None:
    _append(
        dstrail,
        (T0, {}),
        (T0 + 10, {}),
        (T0 + HOUR, {"event_kind": EventKind.DELETE_DATA_SOURCE}),
        (T0 + HOUR + 1, {"data_source_name": "other"}),
    )
    window = AuditFilter(start_ms=T0, end_ms=T0 + 2 * HOUR, data_source_names=("ds",))
    with dstrail.store.read() as tx:
        counts = bucket_counts(tx, window, bucket_ms=HOUR)
    first = T0 // HOUR
    assert sorted(counts) == [
        (first, "AccessDataSource", 2),
        (first + 1, "DeleteDataSource", 1),
    ]


def test_every_name_the_trail_holds_is_found_case_and_part_ignored(dstrail: Dstrail) -> None:
    names = ["Snow-A", "snow-b", "lake", "a_b", "zeta"]
    _append(dstrail, *((T0 + i, {"data_source_name": n}) for i, n in enumerate(names * 3)))
    _append(dstrail, (T0, {"data_source_name": "", "event_kind": EventKind.USER_CREATED}))
    with dstrail.store.read() as tx:
        assert data_source_names(tx) == sorted(names)
        assert tx.audit.names_seen("snow", limit=None) == ["snow-b"]
        assert names_in_trail(tx, "SNOW", limit=10) == ["Snow-A", "snow-b"]
        assert names_in_trail(tx, "a", limit=10) == ["a_b", "Snow-A", "lake", "zeta"]
        assert names_in_trail(tx, "_", limit=10) == ["a_b"]
