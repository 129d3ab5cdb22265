"""The audit table partitioned by month on PostgreSQL (``store/partitions.py``, migration 0008):
months created ahead, events of any time stored, reads that scan only their months, a new
month taking its events from the default partition, whole months dropped, the append-only
trigger on every partition, and existing stores migrated with every event and a verifying
trail. On SQLite nothing is partitioned and every function does nothing."""

from __future__ import annotations

import re
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import psycopg
import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import event as sa_event
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from dstrail.audit.query import AuditParameters, iter_chunks
from dstrail.audit.verify import verify_store
from dstrail.context import Dstrail, open_dstrail
from dstrail.domain.audit_filter import AuditFilter
from dstrail.domain.timestamps import DAY_MS
from dstrail.domain.trail import EventKind, merkle
from dstrail.settings import Settings
from dstrail.store.engine import MIGRATIONS_DIR
from dstrail.store.partitions import (
    MonthPartition,
    drop_month_partition,
    ensure_partitions,
    keep_partitions,
    month_partitions,
    start_partition_keeper,
)
from tests.cli.test_cli import run_cli
from tests.conftest import _pg_admin, _pg_url
from tests.support import new_event

postgresql_only = pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
sqlite_only = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)

PARTITION = re.compile(r"audit_events_p(?:\d{6}|default)\b")


# -- months, computed here independently of the code under test --------------------------------


def month_of(ms: int, offset: int = 0) -> tuple[int, int]:
    """(year, month) of ``ms`` (UTC), ``offset`` months later."""
    moment = datetime.fromtimestamp(ms / 1000, tz=UTC)
    year, index = divmod(moment.year * 12 + moment.month - 1 + offset, 12)
    return year, index + 1


def start_ms(year: int, month: int) -> int:
    return int(datetime(year, month, 1, tzinfo=UTC).timestamp()) * 1000


def month_start(ms: int, offset: int = 0) -> int:
    """The first millisecond of the month ``offset`` months after that of ``ms``."""
    return start_ms(*month_of(ms, offset))


def name_of(ms: int, offset: int = 0) -> str:
    year, month = month_of(ms, offset)
    return f"audit_events_p{year:04d}{month:02d}"


def months(first_ms: int, count: int) -> list[str]:
    return [name_of(first_ms, i) for i in range(count)]


# -- helpers -------------------------------------------------------------------------------------


def append(dstrail: Dstrail, *stamps: int) -> list[int]:
    """One event at each of ``stamps`` through the audited path; their seqs."""
    seqs = []
    with dstrail.store.write() as tx:
        for i, ts in enumerate(stamps):
            seqs.append(
                tx.audit.append(
                    new_event(
                        ts, data_source_id=f"{ts % 10**12:012x}{i:012x}", data_source_name="p"
                    )
                )
            )
    return seqs


def placement(dstrail: Dstrail) -> dict[int, str]:
    """Each event's seq: the partition that holds it."""
    with dstrail.store.engine.connect() as connection:
        rows = connection.execute(
            text("SELECT seq, tableoid::regclass::text FROM audit_events")
        ).all()
    return {int(seq): str(table) for seq, table in rows}


def partition_names(dstrail: Dstrail) -> list[str]:
    with dstrail.store.engine.connect() as connection:
        return [p.name for p in month_partitions(connection)]


def from_now(dstrail: Dstrail, now: int) -> list[str]:
    """The month partitions from the month of ``now`` on."""
    return [name for name in partition_names(dstrail) if name >= name_of(now)]


def ensure(dstrail: Dstrail, **arguments: Any) -> list[str]:
    with dstrail.store.engine.begin() as connection:
        return ensure_partitions(connection, **arguments)


def events(dstrail: Dstrail, *seqs: int) -> list[Any]:
    with dstrail.store.read() as tx:
        return [tx.audit.by_sequence(seq) for seq in seqs]


def verifies(dstrail: Dstrail) -> int:
    with dstrail.store.write() as tx:
        tx.integrity.checkpoint(now_ms=dstrail.clock())
    report = verify_store(dstrail.store, public_key=dstrail.signer.public_raw)
    assert report.ok, report.text()
    return report.events


# -- SQLite --------------------------------------------------------------------------------------


@sqlite_only
def test_on_sqlite_nothing_is_partitioned(dstrail: Dstrail) -> None:
    append(dstrail, dstrail.clock(), dstrail.clock() + 400 * DAY_MS)
    with dstrail.store.engine.begin() as connection:
        assert ensure_partitions(connection, now_ms=dstrail.clock(), since_ms=0) == []
        assert month_partitions(connection) == []
        with pytest.raises(ValueError, match="not a month partition"):
            drop_month_partition(connection, "audit_events")
        tables = connection.execute(
            text(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE 'audit_events%'"
            )
        ).scalars()
        assert list(tables) == ["audit_events"]
        key = connection.execute(
            text("SELECT name FROM pragma_table_info('audit_events') WHERE pk > 0")
        ).scalars()
        assert list(key) == ["seq"]
    assert keep_partitions(dstrail.store.engine, now_ms=dstrail.clock()) == []
    stop = start_partition_keeper(dstrail.store, clock=dstrail.clock, every_seconds=0.01)
    assert "dstrail-partitions" not in {t.name for t in threading.enumerate()}
    stop.set()


# -- months ahead, events of any time --------------------------------------------------------


@postgresql_only
def test_the_months_through_two_ahead_exist_with_their_bounds(dstrail: Dstrail) -> None:
    now = dstrail.clock()
    with dstrail.store.engine.connect() as connection:
        found = month_partitions(connection)
        default = connection.execute(
            text(
                "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                "WHERE i.inhparent = 'audit_events'::regclass "
                "AND pg_get_expr(c.relpartbound, c.oid) = 'DEFAULT'"
            )
        ).scalars()
        assert list(default) == ["audit_events_pdefault"]
    # (A test session that began last month made that month too.)
    assert [p for p in found if p.start_ms >= month_start(now)] == [
        MonthPartition(name_of(now, i), month_start(now, i), month_start(now, i + 1))
        for i in range(3)
    ]
    assert ensure(dstrail, now_ms=now) == []  # nothing missing
    # A month later one more month is due; months_ahead asks for more.
    assert ensure(dstrail, now_ms=month_start(now, 1) + DAY_MS) == [name_of(now, 3)]
    assert ensure(dstrail, now_ms=now, months_ahead=5) == months(month_start(now, 4), 2)
    assert from_now(dstrail, now) == months(now, 6)


@pytest.mark.parametrize("database_url", ["sqlite", "postgresql"], indirect=True)
def test_an_event_of_any_time_is_stored_and_read_back(dstrail: Dstrail) -> None:
    now = dstrail.clock()
    stamps = (now - 400 * DAY_MS, now + 200 * DAY_MS, now, month_start(now, 2) + 5)
    seqs = append(dstrail, *stamps)
    read = events(dstrail, *seqs)
    assert [e.ts_ms for e in read] == list(stamps)
    assert [e.seq for e in read] == seqs
    window = AuditFilter(start_ms=now - 500 * DAY_MS, end_ms=now + 300 * DAY_MS)
    with dstrail.store.read() as tx:
        page = tx.audit.page(window)
    assert sorted(row[7] for row in page) == seqs
    assert verifies(dstrail) == 4
    if dstrail.store.dialect == "postgresql":
        # Before the first month and after the last: the default partition.
        assert [placement(dstrail)[seq] for seq in seqs] == [
            "audit_events_pdefault", "audit_events_pdefault", name_of(now), name_of(now, 2)
        ]  # fmt: skip


@postgresql_only
def test_the_default_24_hour_read_scans_only_the_months_it_covers(dstrail: Dstrail) -> None:
    now = dstrail.clock()
    created = ensure(dstrail, now_ms=now, since_ms=month_start(now, -4))
    assert created == months(month_start(now, -4), 4)
    in_each_month = [month_start(now, offset) + DAY_MS for offset in range(-4, 3)]
    latest = append(dstrail, *in_each_month, now + 400 * DAY_MS, now - DAY_MS // 2)[-1]
    default = AuditParameters().to_filter(now_ms=now)
    assert (default.start_ms, default.end_ms) == (now - DAY_MS, now)
    captured: list[tuple[str, Any]] = []

    def capture(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if "audit_events" in statement and not captured:
            captured.append((statement, parameters))

    sa_event.listen(dstrail.store.engine, "before_cursor_execute", capture)
    try:
        chunk = next(iter_chunks(dstrail.store, default))
    finally:
        sa_event.remove(dstrail.store.engine, "before_cursor_execute", capture)
    assert latest in {row[7] for row in chunk}
    statement, parameters = captured[0]
    with dstrail.store.engine.connect() as connection:
        plan = "\n".join(connection.exec_driver_sql(f"EXPLAIN {statement}", parameters).scalars())
    scanned = set(PARTITION.findall(plan))
    expected = {
        name_of(now, offset)
        for offset in (-1, 0)
        if month_start(now, offset) <= default.end_ms
        and default.start_ms < month_start(now, offset + 1)
    }
    assert scanned == expected, plan
    assert "audit_events_pdefault" not in plan
    # A window across the months scans them all, not the default beyond them.
    wide = AuditFilter(start_ms=month_start(now, -4), end_ms=month_start(now, 3) - 1)
    with dstrail.store.read() as tx:
        assert len(tx.audit.page(wide)) == len(in_each_month) + 1


# -- the default partition, dropped months -----------------------------------------------------


@postgresql_only
def test_a_new_month_takes_its_events_from_the_default_partition(dstrail: Dstrail) -> None:
    now = dstrail.clock()
    in_four = month_start(now, 4)
    seqs = append(dstrail, in_four + 1, now, in_four + 10 * DAY_MS, month_start(now, 9))
    before = events(dstrail, *seqs)
    assert [placement(dstrail)[s] for s in seqs] == [
        "audit_events_pdefault", name_of(now), "audit_events_pdefault", "audit_events_pdefault"
    ]  # fmt: skip
    created = ensure(dstrail, now_ms=month_start(now, 3))
    assert created == months(month_start(now, 3), 3)
    where = placement(dstrail)
    assert [where[s] for s in seqs] == [
        name_of(now, 4), name_of(now), name_of(now, 4), "audit_events_pdefault"
    ]  # fmt: skip
    assert events(dstrail, *seqs) == before
    assert verifies(dstrail) == 4
    # The moved events are append-only in their new partition too.
    with pytest.raises(DBAPIError, match="append-only"), dstrail.store.engine.begin() as c:
        c.execute(text(f"DELETE FROM {name_of(now, 4)}"))


@postgresql_only
def test_dropping_a_month_removes_exactly_its_events(dstrail: Dstrail) -> None:
    now = dstrail.clock()
    ensure(dstrail, now_ms=now, since_ms=month_start(now, -3))
    seqs = append(
        dstrail,
        *(
            month_start(now, offset) + hour * 3_600_000
            for offset in (-3, -2, -1)
            for hour in (0, 5)
        ),
        now + 400 * DAY_MS,
    )
    names = partition_names(dstrail)
    dropped = name_of(now, -2)
    refused = [
        "audit_events_pdefault",
        "audit_events",
        f"{name_of(now, -1)}; DROP TABLE users",
        f'"{dropped}"',
        name_of(now, 30),
        "",
    ]
    with dstrail.store.engine.begin() as connection:
        for name in refused:
            with pytest.raises(ValueError, match="not a month partition"):
                drop_month_partition(connection, name)
        drop_month_partition(connection, dropped)
    assert partition_names(dstrail) == [n for n in names if n != dropped]
    with dstrail.store.engine.connect() as connection:
        assert connection.execute(text(f"SELECT to_regclass('{dropped}')")).scalar() is None
        assert connection.execute(text("SELECT to_regclass('users')")).scalar() == "users"
    remaining = placement(dstrail)
    assert sorted(remaining) == [seqs[0], seqs[1], seqs[4], seqs[5], seqs[6]]
    assert {remaining[s] for s in seqs[:2]} == {name_of(now, -3)}
    assert remaining[seqs[6]] == "audit_events_pdefault"


# -- append-only -----------------------------------------------------------------------------


@pytest.mark.parametrize("database_url", ["sqlite", "postgresql"], indirect=True)
def test_updates_and_deletes_of_events_are_still_refused(dstrail: Dstrail) -> None:
    now = dstrail.clock()
    append(dstrail, now, now + 400 * DAY_MS)
    tables = ["audit_events"]
    if dstrail.store.dialect == "postgresql":
        tables += [name_of(now), "audit_events_pdefault"]
    for table in tables:
        for statement in (
            f"UPDATE {table} SET data_source_name = 'innocent'",
            f"UPDATE {table} SET ts_ms = ts_ms + 1",
            f"DELETE FROM {table}",
        ):
            with (
                pytest.raises(DBAPIError, match="append-only"),
                dstrail.store.engine.begin() as connection,
            ):
                connection.execute(text(statement))
    with dstrail.store.read() as tx:
        assert [e.data_source_name for e in (tx.audit.by_sequence(1), tx.audit.by_sequence(2))] == [
            "p",
            "p",
        ]
    if dstrail.store.dialect == "postgresql":
        with dstrail.store.engine.connect() as connection:
            without = connection.execute(
                text(
                    "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                    "WHERE i.inhparent = 'audit_events'::regclass AND NOT EXISTS (SELECT 1 "
                    "FROM pg_trigger t WHERE t.tgrelid = c.oid "
                    "AND t.tgname = 'audit_events_append_only' AND t.tgenabled = 'O')"
                )
            ).scalars()
            assert list(without) == []


# -- concurrency and the serve loop ------------------------------------------------------------


@postgresql_only
def test_two_servers_create_each_month_once(dstrail: Dstrail) -> None:
    now = dstrail.clock()
    append(dstrail, now)  # months from this event's on
    later = month_start(now, 12)
    start = threading.Barrier(2)
    results: list[list[str]] = []
    errors: list[BaseException] = []

    def keep() -> None:
        try:
            start.wait()
            results.append(keep_partitions(dstrail.store.engine, now_ms=later))
        except BaseException as error:  # reported below, on the test's thread
            errors.append(error)

    threads = [threading.Thread(target=keep) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sorted(results, key=len) == [[], months(month_start(now, 3), 12)]
    assert from_now(dstrail, now) == months(now, 15)


@postgresql_only
def test_the_serve_loop_keeps_months_ahead(dstrail: Dstrail) -> None:
    now = dstrail.clock()
    append(dstrail, now)
    moved_on = month_start(now, 6)
    stop = start_partition_keeper(dstrail.store, clock=lambda: moved_on, every_seconds=0.05)
    try:
        deadline = time.monotonic() + 20
        while name_of(now, 8) not in partition_names(dstrail) and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        stop.set()
    assert from_now(dstrail, now) == months(now, 9)


# -- migrating a store written before partitions -----------------------------------------------


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database with no schema at all."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'old.sqlite3'}"
        return
    name = f"dstrail_part_{uuid.uuid4().hex[:12]}"
    try:
        admin = _pg_admin()
    except psycopg.OperationalError:
        pytest.skip("PostgreSQL is not reachable at 127.0.0.1:5432")
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    yield _pg_url(name)
    with _pg_admin() as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _audit_indexes(dstrail: Dstrail) -> dict[str, str]:
    """The audit table's indexes (but its key): name -> columns."""
    with dstrail.store.engine.connect() as connection:
        if dstrail.store.dialect == "sqlite":
            rows = connection.execute(
                text(
                    "SELECT name, sql FROM sqlite_master WHERE type = 'index' "
                    "AND tbl_name = 'audit_events' AND sql IS NOT NULL"
                )
            ).all()
        else:
            rows = connection.execute(
                text(
                    "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'audit_events' "
                    "AND indexname <> 'audit_events_pkey'"
                )
            ).all()
    return {str(name): str(sql)[str(sql).rindex("(") :] for name, sql in rows}


def _all_rows(dstrail: Dstrail) -> list[tuple[Any, ...]]:
    with dstrail.store.engine.connect() as connection:
        return [
            tuple(bytes(v) if isinstance(v, memoryview) else v for v in row)
            for row in connection.execute(text("SELECT * FROM audit_events ORDER BY seq"))
        ]


_TIMELINE_INDEXES = {
    "ix_audit_user_seq": "(performed_by, seq)",
    "ix_audit_run_seq": "(run_id, seq)",
    "ix_audit_ds_seq": "(data_source_id, seq)",
}


def test_a_store_of_0007_migrates_with_every_event_and_verifies(
    empty_url: str, tmp_path: Path
) -> None:
    settings = Settings(
        data_dir=tmp_path / "data", database_url=empty_url, checkpoint_every_events=4
    )
    old = open_dstrail(settings, migrate=False)
    config = Config(str(MIGRATIONS_DIR / "alembic.ini"))
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    with old.store.engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0007")
    now = old.clock()
    # Fourteen months of events, the oldest first.
    stamps = [now - (14 * 30 - day) * DAY_MS for day in range(0, 14 * 30, 20)]
    for ts in stamps:
        with old.store.write() as tx:
            tx.audit.append(
                new_event(ts, event_kind=EventKind.CREATE_DATA_SOURCE, data_source_id=f"{ts:024x}")
            )
    rows, indexes = _all_rows(old), _audit_indexes(old)
    with old.store.read() as tx:
        checkpoints = tx.integrity.checkpoints()
    assert len(rows) == len(stamps) and len(checkpoints) > 1
    old.store.dispose()

    dstrail = open_dstrail(settings)
    try:
        assert _all_rows(dstrail) == rows  # every column of every event, hashes included
        # The indexes it had, and the timelines' (subject, seq) ones of the later migration 0010.
        assert _audit_indexes(dstrail) == {**indexes, **_TIMELINE_INDEXES}
        with dstrail.store.read() as tx:
            assert tx.integrity.checkpoints() == checkpoints
            root = tx.integrity.root(len(rows))
            proof = tx.integrity.inclusion_proof(7, len(rows))
        assert merkle.verify_inclusion(rows[6][11], 6, len(rows), proof, root)
        if dstrail.store.dialect == "postgresql":
            assert partition_names(dstrail) == months(stamps[0], month_span(stamps[0], now) + 3)
            where = placement(dstrail)
            assert [where[seq] for seq in range(1, len(rows) + 1)] == [name_of(t) for t in stamps]
        # Appends go on after the migration, and the CLI verifies the whole trail.
        append(dstrail, dstrail.clock())
        assert verifies(dstrail) == len(rows) + 1
    finally:
        dstrail.store.dispose()
    verified = run_cli(
        ["audit", "verify", "--format", "json", "--database-url", empty_url,
         "--data-dir", str(settings.data_dir)]
    )  # fmt: skip
    assert verified.returncode == 0, (verified.stdout, verified.stderr)
    report = orjson.loads(verified.stdout)
    assert report["ok"] is True and report["events"] == len(rows) + 1


def month_span(first_ms: int, last_ms: int) -> int:
    """Months from the month of ``first_ms`` to that of ``last_ms``."""
    (y1, m1), (y2, m2) = month_of(first_ms), month_of(last_ms)
    return (y2 * 12 + m2) - (y1 * 12 + m1)


@pytest.mark.parametrize("empty_url", ["postgresql"], indirect=True)
def test_the_downgrade_copies_the_events_back_into_one_table(
    empty_url: str, tmp_path: Path
) -> None:
    settings = Settings(data_dir=tmp_path / "data", database_url=empty_url)
    dstrail = open_dstrail(settings, migrate=False)
    config = Config(str(MIGRATIONS_DIR / "alembic.ini"))
    config.set_main_option("script_location", str(MIGRATIONS_DIR))

    def migrate(to: str, *, down: bool = False) -> None:
        with dstrail.store.engine.begin() as connection:
            config.attributes["connection"] = connection
            (command.downgrade if down else command.upgrade)(config, to)

    try:
        migrate("0008")
        now = dstrail.clock()
        append(dstrail, now - 100 * DAY_MS, now, now + 400 * DAY_MS)
        rows = _all_rows(dstrail)
        assert len(rows) == 3 and len(partition_names(dstrail)) == 3
        migrate("0007", down=True)
        assert _all_rows(dstrail) == rows
        with dstrail.store.engine.connect() as connection:
            tables = connection.execute(
                text(
                    "SELECT relname, relkind FROM pg_class "
                    "WHERE relname LIKE 'audit_events%' AND relkind IN ('r', 'p')"
                )
            ).all()
            key = connection.execute(
                text(
                    "SELECT pg_get_constraintdef(oid) FROM pg_constraint "
                    "WHERE conrelid = 'audit_events'::regclass AND contype = 'p'"
                )
            ).scalar()
        assert tables == [("audit_events", "r")] and key == "PRIMARY KEY (seq)"
        assert len(_audit_indexes(dstrail)) == 7
        with (
            pytest.raises(DBAPIError, match="append-only"),
            dstrail.store.engine.begin() as connection,
        ):
            connection.execute(text("DELETE FROM audit_events"))
        migrate("head")
        assert _all_rows(dstrail) == rows
        assert verifies(dstrail) == 3
    finally:
        dstrail.store.dispose()
