"""The audit trail table: append and read, nothing else (no update, no delete)."""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any, Final, cast

from sqlalchemy import JSON, Connection, bindparam, func, literal_column, or_, select, text
from sqlalchemy import cast as sql_cast

from dstrail.domain.audit_filter import AuditFilter, BucketCount, Cursor, DayCount
from dstrail.domain.timestamps import DAY_MS, day_of
from dstrail.domain.trail import (
    EVENT_COLUMNS,
    EXTENSION_KINDS,
    CheckpointPolicy,
    EventKind,
    EventRow,
    NewAuditEvent,
    StoredEvent,
    stored_columns,
)
from dstrail.store.driver import (
    DriverCursor,
    DriverReads,
    InsertInto,
    Read,
    Statement,
    json_rows,
    plain_rows,
    statement,
)
from dstrail.store.integrity import (
    LOCK_HEAD,
    Head,
    HeadHint,
    TreeGrowth,
    grow_tree,
    store_growth,
)
from dstrail.store.schema import audit_daily_counts, audit_events

_INSERT_EVENTS = InsertInto(audit_events)
_COUNT_DAY = statement(
    "INSERT INTO audit_daily_counts (day, event_kind, count) VALUES (:day, :event_kind, :count) "
    "ON CONFLICT (day, event_kind) DO UPDATE SET count = audit_daily_counts.count + :count"
)

_NOTE_PROJECT_ACCESS = statement(
    "UPDATE data_source_projects SET last_accessed = :ts_ms WHERE data_source_id = "
    ":data_source_id AND project_id = :project_id AND last_accessed < :ts_ms"
)
"""A data source's last access from a run of a project it is in (``ProjectLink``): kept from
the ``AccessDataSource`` events as they are appended, like the daily counts."""


_EVENT_NAMES = ", ".join(column.name for column in audit_events.columns)
_HINTED_HEAD = (
    "WITH moved AS (UPDATE audit_head SET size = :size, frontier = :frontier, "
    "checkpoint_size = :checkpoint_size, checkpoint_ms = :checkpoint_ms WHERE id = 1 AND "
    "size = :was_size AND checkpoint_size = :was_checkpoint_size AND "
    "checkpoint_ms = :was_checkpoint_ms RETURNING 1), "
    f"e AS (INSERT INTO audit_events ({_EVENT_NAMES}) SELECT {_EVENT_NAMES} FROM "
    "json_populate_recordset(CAST(NULL AS audit_events), CAST(:rows AS json)), moved), "
    "c AS (INSERT INTO audit_daily_counts (day, event_kind, count) "
    "SELECT j.day, j.event_kind, j.count FROM json_to_recordset(CAST(:counts AS json)) "
    "AS j(day integer, event_kind varchar, count bigint), moved "
    "ON CONFLICT (day, event_kind) DO UPDATE SET count = audit_daily_counts.count + "
    "EXCLUDED.count)"
)
_HINTED_ACCESSED = (
    ", a AS (UPDATE data_source_projects AS p SET last_accessed = j.ts_ms "
    "FROM json_to_recordset(CAST(:accessed AS json)) "
    "AS j(data_source_id varchar, project_id varchar, ts_ms bigint), moved "
    "WHERE p.data_source_id = j.data_source_id AND p.project_id = j.project_id "
    "AND p.last_accessed < j.ts_ms)"
)
_HINTED_CHECKPOINTS = (
    ", k AS (INSERT INTO audit_checkpoints (tree_size, root_hash, timestamp_ms, key_id, "
    "signature, origin) SELECT r.tree_size, r.root_hash, r.timestamp_ms, r.key_id, "
    "r.signature, r.origin FROM json_populate_recordset(CAST(NULL AS audit_checkpoints), "
    "CAST(:checkpoints AS json)) AS r, moved)"
)


@functools.cache
def _hinted_append(*, accessed: bool, checkpoints: bool) -> Statement:
    """PostgreSQL only (``HeadHint``): one statement whose every write joins ``moved``, the
    head update, which finds no row (and so writes nothing) unless the head is still as
    hinted; waiting for a concurrent appender's lock, it re-reads the row as that one
    committed it. The project-access and checkpoint writes are left out when there are none
    (four statement texts, each prepared once)."""
    sql = _HINTED_HEAD
    if accessed:
        sql += _HINTED_ACCESSED
    if checkpoints:
        sql += _HINTED_CHECKPOINTS
    return statement(sql + " SELECT count(*) FROM moved")


@dataclass(frozen=True, slots=True)
class _Append:
    """An append worked out on a head: the rows, the tree's growth, the daily counts to add
    and the last access of each (data source, project) pair."""

    rows: list[dict[str, Any]]
    growth: TreeGrowth
    counts: dict[tuple[int, str], int]
    accessed: dict[tuple[str, str], int]


EVENT_SELECT = tuple(audit_events.c[name] for name in EVENT_COLUMNS)
"""What every event read selects: ``EVENT_COLUMNS``, by name."""


class AuditRepository:
    """Appends events in the caller's transaction and reads them back."""

    def __init__(
        self,
        connection: Connection,
        checkpoints: CheckpointPolicy | None = None,
        *,
        reads: DriverReads,
        defer_appends: bool = False,
        head_hint: HeadHint | None = None,
    ) -> None:
        self._db = connection
        self._reads = reads
        self._hint = head_hint
        self._checkpoints = checkpoints
        self._deferred: list[NewAuditEvent] | None = [] if defer_appends else None
        self.recorded = 0
        """How many events ``record`` took in this transaction."""

    def record(self, event: NewAuditEvent) -> None:
        """Append ``event`` in this transaction: now, or, in a transaction opened with
        ``defer_appends`` (``Store.write`` and group commits), with the others recorded in it
        when ``append_deferred`` runs before its commit (one lock and one round trip for all)."""
        self.recorded += 1
        if self._deferred is None:
            self.append(event)
        else:
            self._deferred.append(event)

    def append_deferred(self, *, then: Callable[[], None] | None = None) -> None:
        """Append, in the order recorded, the events ``record`` deferred; then call ``then``
        (the commit), in the same round trip on PostgreSQL."""
        if not self._deferred:
            if then is not None:
                then()
            return
        events, self._deferred = self._deferred, []
        with DriverCursor(self._db) as cursor:
            self._append(cursor, events, then=then)

    def drop_deferred(self) -> None:
        """Forget the deferred events (the work that recorded them was rolled back)."""
        if self._deferred:
            self._deferred = []

    @property
    def defers_appends(self) -> bool:
        """Whether ``record`` defers appends to ``append_deferred``."""
        return self._deferred is not None

    @staticmethod
    def read_head() -> Read:
        """The read that locks the head row before appends, for ``Repositories.read_ahead``."""
        return LOCK_HEAD, {}

    def append(self, event: NewAuditEvent) -> int:
        """Append one event now; its dense sequence number, in commit order, is returned."""
        return self.append_all([event])[0]

    def append_all(self, events: Sequence[NewAuditEvent]) -> range:
        """Append events now, together (one head read, one write); their sequence numbers."""
        if not events:
            return range(0)
        with DriverCursor(self._db) as cursor:
            last = self._append(cursor, events)
        return range(last - len(events) + 1, last + 1)

    def _append(
        self,
        cursor: DriverCursor,
        events: Sequence[NewAuditEvent],
        *,
        then: Callable[[], None] | None = None,
    ) -> int:
        """Append events; the sequence number of the last.

        Locking the head row serialises appenders (FOR UPDATE on PostgreSQL, the single
        writer on SQLite), so sequence numbers have no gaps and follow commit order. Under
        that lock each event also becomes leaf ``seq`` of the Merkle tree (its leaf hash, the
        subtrees it completes, the new frontier) and, when due, a signed checkpoint is kept.
        On PostgreSQL, an append that ends its transaction (``then``, the commit) may start
        from the head this process last committed (``HeadHint``) instead of reading it: its
        one statement then takes the lock by updating the head only if it is as hinted.
        """
        grown: Head | None = None
        hints = self._hint if then is not None else None  # kept only for a known commit
        hint = hints.take() if hints is not None else None
        if hints is not None and hint is not None and not self._reads.holds(self.read_head()):
            grown = self._write_hinted(cursor, hint, events)
            if grown is None:
                hints.missed()
        if grown is None:
            head = Head.of(self._reads.first(*self.read_head()))
            grown = self._write(cursor, head, events)
        if then is not None:
            then()
            if hints is not None:
                hints.keep(grown)
        return grown.size

    def _columns(self, head: Head, events: Sequence[NewAuditEvent]) -> _Append:
        rows = [stored_columns(seq, event) for seq, event in enumerate(events, start=head.size + 1)]
        growth = grow_tree(
            head, [(row["leaf_hash"], row["ts_ms"]) for row in rows], self._checkpoints
        )
        for row, subtree_hashes in zip(rows, growth.subtrees, strict=True):
            row["subtree_hashes"] = subtree_hashes
        counts: dict[tuple[int, str], int] = {}
        accessed: dict[tuple[str, str], int] = {}
        for event in events:
            day_and_kind = (day_of(event.timestamp_ms), event.event_kind.value)
            counts[day_and_kind] = counts.get(day_and_kind, 0) + 1
            if event.event_kind is EventKind.ACCESS_DATA_SOURCE and event.project_id:
                pair = (event.data_source_id, event.project_id)
                accessed[pair] = max(accessed.get(pair, 0), event.timestamp_ms)
        return _Append(rows=rows, growth=growth, counts=counts, accessed=accessed)

    def _write(self, cursor: DriverCursor, head: Head, events: Sequence[NewAuditEvent]) -> Head:
        """Write the events onto ``head``, whose row this transaction holds locked."""
        planned = self._columns(head, events)
        # Under the head lock: everything in one statement on PostgreSQL.
        writes = cursor.batch()
        store_growth(writes, planned.growth)
        writes.insert(_INSERT_EVENTS, planned.rows)
        for (day, kind), count in planned.counts.items():
            writes.execute(_COUNT_DAY, {"day": day, "event_kind": kind, "count": count})
        for (data_source_id, project_id), ts_ms in planned.accessed.items():
            writes.execute(
                _NOTE_PROJECT_ACCESS,
                {"data_source_id": data_source_id, "project_id": project_id, "ts_ms": ts_ms},
            )
        cursor.write_all(writes)
        return planned.growth.head

    def _write_hinted(
        self, cursor: DriverCursor, hint: Head, events: Sequence[NewAuditEvent]
    ) -> Head | None:
        """Write the events onto the hinted head in one statement that changes nothing unless
        the head is still as hinted; the new head, or None when it was not."""
        planned = self._columns(hint, events)
        growth = planned.growth
        params: dict[str, Any] = {
            **growth.head_values(),
            "was_size": hint.size,
            "was_checkpoint_size": hint.checkpoint_size,
            "was_checkpoint_ms": hint.checkpoint_ms,
            "rows": json_rows(planned.rows),
            "counts": json_rows(
                [{"day": d, "event_kind": k, "count": n} for (d, k), n in planned.counts.items()]
            ),
        }
        if planned.accessed:
            params["accessed"] = json_rows(
                [
                    {"data_source_id": ds, "project_id": project, "ts_ms": ts_ms}
                    for (ds, project), ts_ms in planned.accessed.items()
                ]
            )
        if growth.checkpoints:
            params["checkpoints"] = json_rows([asdict(cp) for cp in growth.checkpoints])
        sql = _hinted_append(accessed=bool(planned.accessed), checkpoints=bool(growth.checkpoints))
        moved = cursor.first(sql, params)
        return planned.growth.head if moved is not None and moved[0] == 1 else None

    def size(self) -> int:
        """How many events the trail holds."""
        return int(self._db.execute(text("SELECT size FROM audit_head WHERE id = 1")).scalar_one())

    def page(
        self,
        audit_filter: AuditFilter,
        *,
        after: Cursor | None = None,
        limit: int = 1000,
        oldest_first: bool = False,
    ) -> list[EventRow]:
        """Up to ``limit`` events, newest first (``oldest_first``: oldest first), strictly
        past ``after`` in that order when given.

        After a cursor the window's bound on that side becomes the cursor's time, so the index
        range scanned starts at the cursor (``ts < t OR (ts = t AND seq < s)`` alone bounds it
        on neither database: every page would walk the window again from its end)."""
        ts, seq = audit_events.c.ts_ms, audit_events.c.seq
        if after is not None and oldest_first:
            audit_filter = replace(audit_filter, start_ms=max(audit_filter.start_ms, after.ts_ms))
        elif after is not None:
            audit_filter = replace(audit_filter, end_ms=min(audit_filter.end_ms, after.ts_ms))
        query = select(*EVENT_SELECT).where(*self._conditions(audit_filter))
        if after is not None and oldest_first:
            query = query.where(or_(ts > after.ts_ms, seq > after.seq))
        elif after is not None:
            query = query.where(or_(ts < after.ts_ms, seq < after.seq))
        order = (ts.asc(), seq.asc()) if oldest_first else (ts.desc(), seq.desc())
        query = query.order_by(*order).limit(limit)
        return cast_rows(plain_rows(self._db.execute(query)))

    def since(self, audit_filter: AuditFilter, *, after_seq: int, limit: int) -> list[EventRow]:
        """Up to ``limit`` events matching the filter recorded after event ``after_seq``, in
        the order they were recorded (the sequence's index: new events are few)."""
        query = (
            select(*EVENT_SELECT)
            .where(audit_events.c.seq > after_seq, *self._conditions(audit_filter))
            .order_by(audit_events.c.seq)
            .limit(limit)
        )
        return cast_rows(plain_rows(self._db.execute(query)))

    def by_sequence(self, seq: int) -> StoredEvent | None:
        """One event by its sequence number."""
        row = self._db.execute(select(*EVENT_SELECT).where(audit_events.c.seq == seq)).first()
        return StoredEvent._make(row) if row else None

    def daily_counts(self, *, first_day: int, last_day: int) -> list[DayCount]:
        """(day, kind, count) from the rollup, for days in the inclusive range."""
        rows = self._db.execute(
            select(
                audit_daily_counts.c.day,
                audit_daily_counts.c.event_kind,
                audit_daily_counts.c.count,
            )
            .where(audit_daily_counts.c.day.between(first_day, last_day))
            .order_by(audit_daily_counts.c.day, audit_daily_counts.c.event_kind)
        )
        return [
            DayCount(day=int(day), event_kind=str(kind), events=int(n)) for day, kind, n in rows
        ]

    def counts_by_kind(self) -> dict[str, int]:
        """How many events of each kind the trail holds (from the daily rollup)."""
        rows = self._db.execute(
            select(audit_daily_counts.c.event_kind, func.sum(audit_daily_counts.c.count)).group_by(
                audit_daily_counts.c.event_kind
            )
        )
        return {str(kind): int(total) for kind, total in rows}

    def count(self, audit_filter: AuditFilter) -> int:
        """How many events match a filter."""
        query = (
            select(func.count()).select_from(audit_events).where(*self._conditions(audit_filter))
        )
        return int(self._db.execute(query).scalar_one())

    def daily_counts_matching(self, audit_filter: AuditFilter) -> list[DayCount]:
        """(UTC day, kind, count) of the events matching a filter (a GROUP BY, for narrowed
        views the rollup cannot answer)."""
        return [DayCount(*count) for count in self.bucket_counts(audit_filter, bucket_ms=DAY_MS)]

    def bucket_counts(self, audit_filter: AuditFilter, *, bucket_ms: int) -> list[BucketCount]:
        """(bucket, kind, count) of the events matching a filter, a bucket being ``ts_ms //
        bucket_ms`` (one bounded GROUP BY)."""
        size: Any = literal_column(str(int(bucket_ms)))  # the same text in SELECT and GROUP BY
        bucket = (audit_events.c.ts_ms // size).label("bucket")
        rows = self._db.execute(
            select(bucket, audit_events.c.event_kind, func.count())
            .where(*self._conditions(audit_filter))
            .group_by(bucket, audit_events.c.event_kind)
            .order_by(bucket, audit_events.c.event_kind)
        )
        return [
            BucketCount(bucket=int(b), event_kind=str(kind), events=int(n)) for b, kind, n in rows
        ]

    def first_seq_from(self, ts_ms: int) -> int | None:
        """The first event at or after ``ts_ms`` (``ix_audit_ts``), None when there is none."""
        seq: int | None = self._db.execute(
            select(audit_events.c.seq)
            .where(audit_events.c.ts_ms >= ts_ms)
            .order_by(audit_events.c.ts_ms, audit_events.c.seq)
            .limit(1)
        ).scalar()
        return seq

    def timestamp_of(self, seq: int) -> int | None:
        """When event ``seq`` was recorded (epoch ms), None when there is no such event."""
        ts: int | None = self._db.execute(
            select(audit_events.c.ts_ms).where(audit_events.c.seq == seq)
        ).scalar()
        return ts

    def last_event_ms_of_projects(self, project_ids: Sequence[str]) -> dict[str, int | None]:
        """The time of the newest event naming each project (its last activity), None for a
        project the trail never names; one index seek each (``ix_audit_project_ts``)."""
        newest = (
            select(audit_events.c.ts_ms)
            .where(audit_events.c.project_id == bindparam("project_id"))
            .order_by(audit_events.c.ts_ms.desc(), audit_events.c.seq.desc())
            .limit(1)
        )
        return {
            project_id: self._db.execute(newest, {"project_id": project_id}).scalar()
            for project_id in project_ids
        }

    def names_seen(self, prefix: str = "", limit: int | None = 20) -> list[str]:
        """Data source names that appear in the trail (deleted ones included), sorted; those
        starting with ``prefix``. One index seek a name (a loose scan of ``ix_audit_name_ts``),
        not a walk of every event."""
        names = [
            name
            for name in self._db.scalars(_DISTINCT_NAMES)
            if name is not None and name.startswith(prefix)
        ]
        names.sort()
        return names if limit is None else names[:limit]

    def _conditions(self, audit_filter: AuditFilter) -> list[Any]:
        conditions = _conditions(audit_filter)
        if audit_filter.object_keys:
            conditions.append(self._object_key_condition(audit_filter.object_keys))
        return conditions

    def _object_key_condition(self, patterns: Sequence[str]) -> Any:
        """An access's ``objectKey`` or ``prefix`` (from its metadata) like any of the
        patterns, letter case ignored."""
        if self._db.dialect.name == "postgresql":
            document = sql_cast(audit_events.c.metadata, JSON)
            values = [func.json_extract_path_text(document, key) for key in _KEY_FIELDS]
        else:
            values = [func.json_extract(audit_events.c.metadata, f"$.{key}") for key in _KEY_FIELDS]
        return or_(
            *(
                func.lower(value).like(like_pattern(pattern), escape="\\")
                for pattern in patterns
                for value in values
            )
        )


_KEY_FIELDS: Final = ("objectKey", "prefix")

_DISTINCT_NAMES: Final = text(
    "WITH RECURSIVE n(name) AS ("
    "SELECT (SELECT min(data_source_name) FROM audit_events WHERE data_source_name > '') "
    "UNION ALL SELECT (SELECT min(e.data_source_name) FROM audit_events AS e "
    "WHERE e.data_source_name > n.name) FROM n WHERE n.name IS NOT NULL"
    ") SELECT name FROM n"
)
"""Every distinct data source name, one ``min`` seek each (platform events name none)."""


def like_pattern(glob: str) -> str:
    """A ``*`` pattern as a lower-case LIKE pattern (``\\`` escapes ``%``, ``_`` and itself)."""
    escaped = glob.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped.replace("*", "%")


def cast_rows(rows: list[Any]) -> list[EventRow]:
    """Rows read with ``EVENT_SELECT``, as event rows."""
    return cast(list[EventRow], rows)


def _conditions(f: AuditFilter) -> list[Any]:
    conditions: list[Any] = [audit_events.c.ts_ms.between(f.start_ms, f.end_ms)]
    if f.event_kinds:
        conditions.append(audit_events.c.event_kind.in_([k.value for k in f.event_kinds]))
    elif EXTENSION_KINDS:
        # Domino's seven only: said as "not an extension" so the (ts) index stays usable.
        conditions.append(audit_events.c.event_kind.not_in(sorted(EXTENSION_KINDS)))
    _in(conditions, audit_events.c.data_source_name, f.data_source_names)
    _in(conditions, audit_events.c.data_source_id, f.data_source_ids)
    _in(conditions, audit_events.c.performed_by, f.performed_by)
    _in(conditions, audit_events.c.project_id, f.project_ids)
    _in(conditions, audit_events.c.run_id, f.run_ids)
    return conditions


def _in(conditions: list[Any], column: Any, values: Sequence[str]) -> None:
    if values:
        conditions.append(column.in_(list(values)))
