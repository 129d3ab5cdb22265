"""The month partitions of the audit trail on PostgreSQL (SQLite has none: every function here
does nothing there).

``audit_events`` is partitioned by range of ``ts_ms`` (epoch milliseconds, UTC), one partition a
calendar month: ``audit_events_pYYYYMM`` holds [the first millisecond of the month, the first
of the next). ``audit_events_pdefault`` takes an event of a month that has no partition yet, so
that no append ever fails. The server creates months ahead (``ensure_partitions``: when it
opens the store, then daily in ``dstrail serve``); a retention purge drops whole months
(``drop_month_partition``) instead of deleting their rows one by one.

A month is created as a table of its own and then attached: ``ATTACH PARTITION`` lets the
readers and appenders of other months go on (``CREATE TABLE ... PARTITION OF`` would wait for
every one of them, and hold up those after it); it waits only for the transactions that touch
the default partition (lookups by seq among them: short ones). Attaching gives the month the
table's indexes and its row triggers (the append-only one). Dropping a month detaches it,
which locks the whole table until the caller's transaction ends.
"""

from __future__ import annotations

import hashlib
import logging
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Final

from sqlalchemy import Connection, Engine, text

if TYPE_CHECKING:
    from dstrail.store.engine import Store

logger = logging.getLogger("dstrail.partitions")

TABLE: Final = "audit_events"
DEFAULT_PARTITION: Final = "audit_events_pdefault"
APPEND_ONLY_TRIGGER: Final = "audit_events_append_only"
MONTHS_AHEAD: Final = 2
"""Months after the current one that have their partition before any event needs it."""
BACKFILL_MONTHS: Final = 36
"""How far before now the months of existing events get partitions of their own, unless a
caller asks for more (``since_ms``, as bulk loads and the migration do)."""
KEEP_EVERY_SECONDS: Final = 86_400.0
"""How often ``dstrail serve`` creates the months ahead."""
RETRY_SECONDS: Final = 600.0
"""How soon it tries again after a failure (another transaction held a lock too long)."""
LOCK_TIMEOUT: Final = "10s"
"""How long ``keep_partitions`` waits for a lock before it gives up (and is retried)."""

_LOCK_KEY: Final = int.from_bytes(
    hashlib.sha256(b"dstrail.partitions").digest()[:8], "big", signed=True
)
"""The transaction-level advisory lock partition makers take: two servers create a month once."""

_BOUND = re.compile(r"FOR VALUES FROM \('?(-?\d+)'?\) TO \('?(-?\d+)'?\)")
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_MS: Final = timedelta(milliseconds=1)
_LAST_MONTH: Final = 9999 * 12 + 10
"""November 9999, the last month whose end (December 9999) a ``datetime`` still states."""


@dataclass(frozen=True, slots=True)
class MonthPartition:
    """One range partition of ``audit_events``, with its bounds as the catalog states them."""

    name: str
    start_ms: int
    """The first millisecond it holds (epoch ms, UTC)."""
    end_ms: int
    """The first millisecond it no longer holds."""


def month_partitions(connection: Connection) -> list[MonthPartition]:
    """The range partitions of ``audit_events`` (the default one aside), earliest first, with
    their bounds read from the catalog; none on SQLite."""
    if connection.dialect.name != "postgresql":
        return []
    rows = connection.execute(
        text(
            "SELECT c.relname, pg_get_expr(c.relpartbound, c.oid) FROM pg_inherits i "
            "JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = to_regclass(:table)"
        ),
        {"table": TABLE},
    ).all()
    found = []
    for name, bound in rows:
        match = _BOUND.fullmatch(str(bound))
        if match is not None:
            found.append(MonthPartition(str(name), int(match[1]), int(match[2])))
    return sorted(found, key=lambda partition: partition.start_ms)


def ensure_partitions(
    connection: Connection,
    *,
    now_ms: int,
    months_ahead: int = MONTHS_AHEAD,
    since_ms: int | None = None,
) -> list[str]:
    """Create, in the caller's transaction, the default partition if it is missing and the
    missing month partitions from the earliest of: the month of the oldest event (at most
    ``BACKFILL_MONTHS`` before now), of ``now_ms``, of ``since_ms`` (a bulk load of older
    events about to be written); through ``months_ahead`` months after the month of
    ``now_ms``. Returns the names created.

    The events of a new month that wait in the default partition move into it, in the same
    transaction. A month that overlaps an existing partition is left alone. Two servers may
    call it at once (an advisory lock orders them, until the end of the caller's
    transaction). Nothing on SQLite, or before the table is partitioned."""
    if months_ahead < 0:
        raise ValueError(f"months_ahead must be 0 or more, not {months_ahead}")
    if connection.dialect.name != "postgresql" or not _is_partitioned(connection):
        return []
    connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _LOCK_KEY})
    created: list[str] = []
    if not _default_exists(connection):
        connection.execute(text(f"CREATE TABLE {DEFAULT_PARTITION} PARTITION OF {TABLE} DEFAULT"))
        created.append(DEFAULT_PARTITION)
    oldest = connection.execute(text(f"SELECT min(ts_ms) FROM {TABLE}")).scalar()
    if oldest is not None:
        # A stray event from a bad clock (1970) must not make hundreds of months: older
        # ones stay in the default partition, stored and read like any other.
        oldest = max(int(oldest), _start_of(_month_of(now_ms) - BACKFILL_MONTHS))
    earliest = min(ms for ms in (now_ms, oldest, since_ms) if ms is not None)
    existing = month_partitions(connection)
    last = min(_month_of(now_ms) + months_ahead, _LAST_MONTH)
    for month in range(_month_of(earliest), last + 1):
        start_ms, end_ms = _start_of(month), _start_of(month + 1)
        if any(p.start_ms < end_ms and start_ms < p.end_ms for p in existing):
            continue
        name = _name_of(month)
        _create_month(connection, name, start_ms, end_ms)
        created.append(name)
    if created:
        logger.info("audit partitions created: %s", ", ".join(created))
    return created


def drop_month_partition(connection: Connection, name: str) -> None:
    """Detach the month partition ``name`` and drop it with its events, in the caller's
    transaction (which then holds an exclusive lock on ``audit_events`` until it ends).
    ``ValueError`` unless ``name`` is one of ``month_partitions``."""
    if name not in {partition.name for partition in month_partitions(connection)}:
        raise ValueError(f"{name!r} is not a month partition of {TABLE}")
    # ``name`` is now a partition's name as the catalog spells it: quoted, not interpolated raw.
    quoted = connection.dialect.identifier_preparer.quote(name)
    connection.execute(text(f"ALTER TABLE {TABLE} DETACH PARTITION {quoted}"))
    connection.execute(text(f"DROP TABLE {quoted}"))


def keep_partitions(engine: Engine, *, now_ms: int) -> list[str]:
    """``ensure_partitions`` in a transaction of its own, which waits at most ``LOCK_TIMEOUT``
    for a lock (a long transaction on the default partition); the names created."""
    if engine.dialect.name != "postgresql":
        return []
    with engine.begin() as connection:
        connection.execute(text(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'"))
        return ensure_partitions(connection, now_ms=now_ms)


def start_partition_keeper(
    store: Store, *, clock: Callable[[], int], every_seconds: float = KEEP_EVERY_SECONDS
) -> threading.Event:
    """``dstrail serve``'s daemon thread that keeps the months ahead (``keep_partitions``)
    every ``every_seconds``, and again after ``RETRY_SECONDS`` when that failed. Set the
    returned event to stop it. On SQLite no thread is started."""
    stop = threading.Event()
    if store.dialect != "postgresql":
        return stop

    def keep() -> None:
        wait = every_seconds
        while not stop.wait(wait):
            try:
                keep_partitions(store.engine, now_ms=clock())
                wait = every_seconds
            except Exception:  # the next round retries; the default partition takes events
                logger.exception("creating the audit partitions ahead failed")
                wait = min(RETRY_SECONDS, every_seconds)

    threading.Thread(target=keep, name="dstrail-partitions", daemon=True).start()
    return stop


def _is_partitioned(connection: Connection) -> bool:
    kind = connection.execute(
        text("SELECT relkind FROM pg_class WHERE oid = to_regclass(:table)"), {"table": TABLE}
    ).scalar()
    return kind == "p"


def _default_exists(connection: Connection) -> bool:
    return bool(
        connection.execute(
            text(
                "SELECT EXISTS (SELECT 1 FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                "WHERE i.inhparent = to_regclass(:table) "
                "AND pg_get_expr(c.relpartbound, c.oid) = 'DEFAULT')"
            ),
            {"table": TABLE},
        ).scalar()
    )


def _create_month(connection: Connection, name: str, start_ms: int, end_ms: int) -> None:
    """Create and attach the partition ``name`` for [start_ms, end_ms), moving into it the
    events of that range the default partition holds (PostgreSQL refuses a partition while the
    default one holds rows of its range). ``name`` and the bounds are made here, not input."""
    connection.execute(
        text(f"CREATE TABLE {name} (LIKE {TABLE} INCLUDING DEFAULTS INCLUDING CONSTRAINTS)")
    )
    in_range = f"ts_ms >= {start_ms} AND ts_ms < {end_ms}"
    waiting = connection.execute(
        text(f"SELECT EXISTS (SELECT 1 FROM {DEFAULT_PARTITION} WHERE {in_range})")
    ).scalar()
    if waiting:
        # The one removal from the default partition its append-only trigger must let through.
        # Disabling it is transactional and locks the partition against writes until the
        # commit: no append slips in, and a failure rolls the trigger back on with the rest.
        connection.execute(
            text(f"ALTER TABLE {DEFAULT_PARTITION} DISABLE TRIGGER {APPEND_ONLY_TRIGGER}")
        )
        moved = connection.execute(
            text(
                f"WITH moved AS (DELETE FROM {DEFAULT_PARTITION} WHERE {in_range} RETURNING *) "
                f"INSERT INTO {name} SELECT * FROM moved"
            )
        ).rowcount
        connection.execute(
            text(f"ALTER TABLE {DEFAULT_PARTITION} ENABLE TRIGGER {APPEND_ONLY_TRIGGER}")
        )
        logger.info("%d audit events moved from %s into %s", moved, DEFAULT_PARTITION, name)
    connection.execute(
        text(
            f"ALTER TABLE {TABLE} ATTACH PARTITION {name} "
            f"FOR VALUES FROM ({start_ms}) TO ({end_ms})"
        )
    )


def _month_of(ms: int) -> int:
    """The month of an instant (UTC) as ``year * 12 + month - 1``; instants before 1970 count
    as January 1970, later ones than ``_LAST_MONTH`` as that month."""
    if ms <= 0:
        return 1970 * 12
    try:
        moment = _EPOCH + ms * _MS
    except OverflowError:
        return _LAST_MONTH
    return min(moment.year * 12 + moment.month - 1, _LAST_MONTH)


def _start_of(month: int) -> int:
    """The first millisecond (epoch, UTC) of ``month`` (as ``_month_of`` numbers them)."""
    year, index = divmod(month, 12)
    return (datetime(year, index + 1, 1, tzinfo=UTC) - _EPOCH) // _MS


def _name_of(month: int) -> str:
    year, index = divmod(month, 12)
    return f"{TABLE}_p{year:04d}{index + 1:02d}"
