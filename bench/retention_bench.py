"""The purge of one month of a large trail (``audit_bench.py --scale``'s last part), beside raw
baselines of the same month in the same run.

The purge is the product's: ``set_retention`` to a policy whose cutoff is the end of the oldest
loaded month, then ``apply_retention`` to a ``DirectoryTarget`` (archive a Parquet file a month
and a manifest, read it back and verify it, record, keep the tree hashes, remove the bodies).

Baselines, measured first on the same month and rolled back (so the purge finds the store as
the load left it):

- archive: the month's rows selected with the driver, written with pyarrow to one Parquet file
  (the archive's columns, zstd), then read back; the app hashes every leaf and proves the range
  on top of that;
- remove: in one transaction, the month's tree hashes copied with ``INSERT ... SELECT``, then on
  PostgreSQL its partition detached and dropped, on SQLite its rows deleted with one
  ``DELETE`` (the append-only triggers dropped inside the transaction); rolled back.

Sizes: on PostgreSQL ``pg_total_relation_size`` of ``audit_events``' partitions plus
``audit_tree_hashes``; on SQLite the database file (after a WAL checkpoint). Before the purge,
after it, and after ``VACUUM``.
"""

from __future__ import annotations

import sqlite3
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import pyarrow as pa
import pyarrow.parquet as pq

from audit_bench import Backend, iso_ms, say
from dstrail.audit.archive import PARQUET_SCHEMA
from dstrail.audit.archive_targets import DirectoryTarget
from dstrail.context import Dstrail
from dstrail.domain.retention import next_month_start
from dstrail.domain.timestamps import DAY_MS
from dstrail.domain.users import OPERATOR
from dstrail.services.retention import PurgeResult, apply_retention, set_retention
from dstrail.store.partitions import month_partitions

RAW_ARCHIVE_SQL: Final = (
    "SELECT seq, ts_ms, event_kind, data_source_id, data_source_name, data_source_type, "
    "performed_by, metadata FROM audit_events WHERE seq BETWEEN ? AND ? ORDER BY seq"
)
RAW_COPY_HASHES: Final = (
    "INSERT INTO audit_tree_hashes (seq, leaf_hash, subtree_hashes) "
    "SELECT seq, leaf_hash, subtree_hashes FROM audit_events WHERE seq BETWEEN ? AND ?"
)
BATCH: Final = 20_000


@dataclass(frozen=True)
class Sizes:
    """Bytes of the trail's storage at one moment."""

    events: int  # PostgreSQL: audit_events' partitions; SQLite: the whole file
    tree_hashes: int | None  # audit_tree_hashes (SQLite: from dbstat when it is compiled in)
    partitions: int  # PostgreSQL: month partitions (and the default one)

    @property
    def total(self) -> int:
        return self.events + (self.tree_hashes or 0)


@dataclass
class PurgeFigures:
    """What the purge of one month did and cost, and its baselines."""

    days: int
    cutoff_ms: int
    events: int
    result: PurgeResult
    before: Sizes
    after: Sizes
    vacuumed: Sizes
    vacuum_seconds: float
    archive_bytes: int  # the Parquet files
    manifest_bytes: int
    raw_archive: float
    raw_read_back: float
    raw_archive_bytes: int
    raw_copy_hashes: float
    raw_remove: float
    kept_hashes: int
    notes: list[str] = field(default_factory=list)


def sizes(backend: Backend, conn: Any) -> Sizes:
    """The storage the trail takes now."""
    if isinstance(conn, sqlite3.Connection):
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        path = Path(backend.url.removeprefix("sqlite:///"))
        hashes: int | None
        try:
            row = conn.execute(
                "SELECT sum(pgsize) FROM dbstat WHERE name = 'audit_tree_hashes' "
                "OR name LIKE 'sqlite_autoindex_audit_tree_hashes%'"
            ).fetchone()
            hashes = int(row[0] or 0)
        except sqlite3.OperationalError:  # dbstat not compiled in
            hashes = None
        return Sizes(events=path.stat().st_size - (hashes or 0), tree_hashes=hashes, partitions=0)
    events, partitions = conn.execute(
        "SELECT sum(pg_total_relation_size(relid)), count(*) FILTER (WHERE isleaf) "
        "FROM pg_partition_tree('audit_events')"
    ).fetchone()
    hashes = conn.execute("SELECT pg_total_relation_size('audit_tree_hashes')").fetchone()[0]
    conn.commit()
    return Sizes(events=int(events), tree_hashes=int(hashes), partitions=int(partitions))


def _range(backend: Backend, conn: Any, cutoff_ms: int) -> tuple[int, int]:
    rows = backend.raw_select(
        conn, "SELECT min(seq), max(seq) FROM audit_events WHERE ts_ms < ?", [cutoff_ms]
    )
    return int(rows[0][0]), int(rows[0][1])


def raw_archive(
    backend: Backend, conn: Any, first: int, last: int, work: Path
) -> tuple[float, float, int]:
    """Seconds to select the range and write it as Parquet, seconds to read it back, bytes."""
    path = work / "raw.parquet"
    names = PARQUET_SCHEMA.names
    started = time.perf_counter()
    with pq.ParquetWriter(path, PARQUET_SCHEMA, compression="zstd") as writer:
        for rows in backend.raw_batches(conn, RAW_ARCHIVE_SQL, [first, last], BATCH):
            columns = list(zip(*rows, strict=True))
            writer.write_table(
                pa.Table.from_pydict(
                    {
                        "seq": columns[0],
                        "timestamp": columns[1],
                        "eventKind": columns[2],
                        "dataSourceId": columns[3],
                        "dataSourceName": columns[4],
                        "dataSourceType": columns[5],
                        "performedBy": columns[6],
                        "metadata": columns[7],
                    },
                    schema=PARQUET_SCHEMA,
                )
            )
    written = time.perf_counter() - started
    started = time.perf_counter()
    rows_read = 0
    for batch in pq.ParquetFile(path).iter_batches(batch_size=BATCH):
        rows_read += len(batch.to_pydict()[names[0]])
    read_back = time.perf_counter() - started
    if rows_read != last - first + 1:
        raise SystemExit(f"raw archive: {rows_read:,} rows read back, not {last - first + 1:,}")
    size = path.stat().st_size
    path.unlink()
    return written, read_back, size


def raw_remove(conn: Any, first: int, last: int, months: list[str]) -> tuple[float, float]:
    """Seconds to copy the range's tree hashes, then the whole raw removal (PostgreSQL: of the
    month partitions ``months``); rolled back."""
    if isinstance(conn, sqlite3.Connection):
        triggers = conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'audit_events'"
        ).fetchall()
        conn.execute("BEGIN IMMEDIATE")
        try:
            for (name,) in triggers:
                conn.execute(f'DROP TRIGGER "{name}"')
            started = time.perf_counter()
            conn.execute(RAW_COPY_HASHES, (first, last))
            copied = time.perf_counter() - started
            conn.execute("DELETE FROM audit_events WHERE seq BETWEEN ? AND ?", (first, last))
            removed = time.perf_counter() - started
        finally:
            conn.execute("ROLLBACK")
        return copied, removed
    try:
        started = time.perf_counter()
        conn.execute(RAW_COPY_HASHES.replace("?", "%s"), (first, last))
        copied = time.perf_counter() - started
        for name in months:
            conn.execute(f'ALTER TABLE audit_events DETACH PARTITION "{name}"')
            conn.execute(f'DROP TABLE "{name}"')
        removed = time.perf_counter() - started
    finally:
        conn.rollback()
    return copied, removed


def bench_purge(
    backend: Backend, dstrail: Dstrail, conn: Any, first_ms: int, workdir: Path
) -> PurgeFigures:
    """Purge the oldest loaded month (and the bench administrator's few older events)."""
    now_ms = time.time_ns() // 1_000_000
    cutoff = next_month_start(first_ms)
    days = (now_ms - cutoff) // DAY_MS - 1
    first, last = _range(backend, conn, cutoff)
    say(
        f"    ... purge: {days}-day policy, cutoff {iso_ms(cutoff)}, events {first:,}-{last:,} "
        f"({last - first + 1:,})"
    )
    work = Path(tempfile.mkdtemp(prefix="raw-archive-", dir=workdir))
    written, read_back, raw_bytes = raw_archive(backend, conn, first, last, work)
    with dstrail.store.engine.connect() as connection:
        months = [p.name for p in month_partitions(connection) if p.end_ms <= cutoff]
    copied, removed = raw_remove(conn, first, last, months)
    if not isinstance(conn, sqlite3.Connection):
        # The rolled-back copy left dead rows in audit_tree_hashes: VACUUM gives their pages
        # back (they are at its end), so the sizes measured next are the load's.
        conn.autocommit = True
        conn.execute("VACUUM audit_tree_hashes")
        conn.autocommit = False
    before = sizes(backend, conn)
    store = dstrail.store
    set_retention(store, actor=OPERATOR, days=days, lock=False, now_ms=now_ms)
    target_dir = workdir / f"archive-{backend.name.lower()}"
    result = apply_retention(
        store, DirectoryTarget(target_dir), actor=OPERATOR, public_key=dstrail.signer.public_raw,
        now_ms=now_ms,
    )  # fmt: skip
    if (result.plan.first, result.plan.last) != (first, last):
        raise SystemExit(
            f"{backend.name}: the purge removed {result.plan.first}-{result.plan.last}, "
            f"not {first}-{last}"
        )
    after = sizes(backend, conn)
    started = time.perf_counter()
    if isinstance(conn, sqlite3.Connection):
        conn.execute("VACUUM")
    else:
        conn.autocommit = True
        conn.execute("VACUUM audit_events")
        conn.execute("VACUUM audit_tree_hashes")
        conn.autocommit = False
    vacuum_seconds = time.perf_counter() - started
    vacuumed = sizes(backend, conn)
    parquet = sum(p.stat().st_size for p in target_dir.rglob("*.parquet"))
    manifest = sum(p.stat().st_size for p in target_dir.rglob("manifest.json"))
    kept = int(backend.raw_select(conn, "SELECT count(*) FROM audit_tree_hashes", [])[0][0])
    return PurgeFigures(
        days=days, cutoff_ms=cutoff, events=last - first + 1, result=result, before=before,
        after=after, vacuumed=vacuumed, vacuum_seconds=vacuum_seconds, archive_bytes=parquet,
        manifest_bytes=manifest, raw_archive=written, raw_read_back=read_back,
        raw_archive_bytes=raw_bytes, raw_copy_hashes=copied, raw_remove=removed, kept_hashes=kept,
    )  # fmt: skip


def _mb(value: int | None) -> str:
    return "n/a" if value is None else f"{value / 1e6:,.0f} MB"


def report_purge(name: str, figures: PurgeFigures) -> list[str]:
    """The purge's lines; the summary's pieces."""
    result, n = figures.result, figures.events
    seconds = result.seconds
    archive, verify, remove = seconds["archive"], seconds["verify"], seconds["remove"]
    say(f"  (g) purge of one month: {n:,} events ({figures.days}-day policy)")
    say(
        f"      archive {archive:6.1f}s  verify {verify:6.1f}s  remove {remove:6.1f}s   "
        f"archive+verify {n / (archive + verify):9,.0f} ev/s"
    )
    raw_av = figures.raw_archive + figures.raw_read_back
    say(
        f"      raw: select + write Parquet {figures.raw_archive:6.1f}s, read back "
        f"{figures.raw_read_back:5.1f}s ({n / raw_av:9,.0f} ev/s); app/raw rate "
        f"{raw_av / (archive + verify):.2f}"
    )
    how = "partition detached + dropped" if name == "PostgreSQL" else "one DELETE"
    say(
        f"      raw remove (copy hashes {figures.raw_copy_hashes:.1f}s, then {how}): "
        f"{figures.raw_remove:.1f}s, rolled back; app remove / raw {remove / figures.raw_remove:.2f}"
    )
    dropped = ", ".join(result.partitions_dropped) or "none"
    say(f"      events removed: {result.removed:,}; partitions dropped: {dropped}")
    per_event = figures.archive_bytes / n
    say(
        f"      archive: Parquet {_mb(figures.archive_bytes)} ({per_event:.1f} bytes/event; "
        f"raw Parquet of the same rows {figures.raw_archive_bytes / n:.1f}), manifest "
        f"{figures.manifest_bytes / 1e3:,.1f} kB"
    )
    for label, size in (
        ("before the purge", figures.before),
        ("after the purge", figures.after),
        (f"after VACUUM ({figures.vacuum_seconds:.1f}s)", figures.vacuumed),
    ):
        parts = f" in {size.partitions} partitions" if size.partitions else ""
        say(
            f"      {label:26} events {_mb(size.events)}{parts}, tree hashes "
            f"{_mb(size.tree_hashes)}, total {_mb(size.total)}"
        )
    kept_bytes = figures.vacuumed.tree_hashes
    if kept_bytes is not None and figures.kept_hashes:
        say(
            f"      tree hashes kept: {figures.kept_hashes:,} rows, "
            f"{kept_bytes / figures.kept_hashes:.1f} bytes/event"
        )
    return [
        f"(g) purge {n:,} ev: archive {archive:.0f}s + verify {verify:.0f}s "
        f"({n / (archive + verify):,.0f} ev/s, {raw_av / (archive + verify):.2f} of raw), "
        f"remove {remove:.1f}s"
    ]
