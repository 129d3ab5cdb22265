"""Retention purges on both databases: a purge archives (Parquet read back by pandas and
DuckDB, no dstrail code), verifies, removes and records; proofs, tiles and verification work
after it; a lagging stream holds it back unless forced; the archive is checked offline."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import duckdb
import orjson
import pandas
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select, text

from dstrail.audit.archive import PARQUET_SCHEMA, ArchiveInvalid, verify_archive
from dstrail.audit.archive_targets import DirectoryTarget
from dstrail.audit.verify import verify_store
from dstrail.context import Dstrail
from dstrail.domain.trail import EventKind, event_document, event_leaf, merkle
from dstrail.domain.users import OPERATOR
from dstrail.services import retention as retention_service
from dstrail.store.partitions import keep_partitions
from dstrail.store.schema import audit_events, audit_tree_hashes
from tests.retention.conftest import NOW, recorded
from tests.support import new_event

MONTHS = ("2026-02", "2026-03", "2026-04", "2026-05", "2026-06")
PER_MONTH = 30


def month_ms(label: str, day: int = 3) -> int:
    year, month = (int(part) for part in label.split("-"))
    return int(datetime(year, month, day, tzinfo=UTC).timestamp() * 1000)


def fill(dstrail: Dstrail) -> int:
    """``PER_MONTH`` events in each of ``MONTHS`` (one transaction a month, oldest first),
    then the head checkpointed; the trail's size."""
    for label in MONTHS:
        start = month_ms(label)
        with dstrail.store.write() as tx:
            for i in range(PER_MONTH):
                tx.audit.record(
                    new_event(
                        start + i * 60_000,
                        data_source_name=f"ds-{i % 3}",
                        metadata={"operation": "objectKey", "objectKey": f"{label}/{i}"},
                    )
                )
    with dstrail.store.write() as tx:
        tx.integrity.checkpoint(now_ms=dstrail.clock())
    # The server's daily keeper gives the old months their partitions (PostgreSQL).
    keep_partitions(dstrail.store.engine, now_ms=dstrail.clock())
    with dstrail.store.read() as tx:
        return tx.audit.size()


def documents(dstrail: Dstrail, first: int, last: int) -> list[dict[str, object]]:
    with dstrail.store.read() as tx:
        rows = tx.integrity.events_after(first - 1, limit=last - first + 1)
    return [orjson.loads(orjson.dumps(event_document(row[:8]))) for row in rows]


def purge(dstrail: Dstrail, archive: Path, **options: bool) -> retention_service.PurgeResult:
    return retention_service.apply_retention(
        dstrail.store,
        DirectoryTarget(archive),
        actor=OPERATOR,
        public_key=dstrail.signer.public_raw,
        now_ms=dstrail.clock(),
        **options,
    )


def test_a_purge_archives_verifies_removes_and_records(dstrail: Dstrail, tmp_path: Path) -> None:
    size = fill(dstrail)
    purged = 2 * PER_MONTH  # February and March have left a 60-day window whole
    before = documents(dstrail, 1, purged)
    retention_service.set_retention(dstrail.store, actor=OPERATOR, days=60, lock=False, now_ms=NOW)
    dry = purge(dstrail, tmp_path / "archive", dry_run=True)
    assert (dry.plan.first, dry.plan.last, dry.archive) == (1, purged, None)
    with dstrail.store.read() as tx:
        assert tx.audit.size() == size + 1  # the policy change; the dry run changed nothing
        assert tx.retention.state().purge_through == 0

    result = purge(dstrail, tmp_path / "archive")

    assert (result.plan.first, result.plan.last) == (1, purged)
    assert result.archive is not None
    assert [f.name for f in result.archive.files] == [
        "events-2026-02.parquet",
        "events-2026-03.parquet",
    ]
    folder = tmp_path / "archive" / result.archive.folder
    # Read with no dstrail code: pandas and DuckDB see the API's fields and values.
    frame = pandas.concat(
        [pandas.read_parquet(folder / f.name) for f in result.archive.files], ignore_index=True
    )
    assert list(frame.columns) == PARQUET_SCHEMA.names
    assert frame["seq"].tolist() == list(range(1, purged + 1))
    assert frame["dataSourceName"].tolist() == [d["dataSourceName"] for d in before]
    assert [orjson.loads(m) for m in frame["metadata"]] == [d["metadata"] for d in before]
    stamps = [t.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z" for t in frame["timestamp"]]
    assert stamps == [d["timestamp"] for d in before]
    counted = duckdb.sql(
        f"SELECT strftime(timestamp, '%Y-%m') AS month, count(*) FROM "
        f"read_parquet('{folder}/*.parquet') GROUP BY month ORDER BY month"
    ).fetchall()
    assert counted == [("2026-02", PER_MONTH), ("2026-03", PER_MONTH)]

    with dstrail.store.engine.connect() as connection:
        seqs = connection.execute(select(func.min(audit_events.c.seq))).scalar()
        kept = connection.execute(select(func.count()).select_from(audit_tree_hashes)).scalar()
    assert seqs == purged + 1
    assert kept == purged
    (record,) = recorded(dstrail, EventKind.TRAIL_PURGED)
    assert record["firstSeq"] == "1" and record["lastSeq"] == str(purged)
    assert record["archive"] == str(folder)
    assert record["archiveSha256"] == result.archive.manifest_sha256
    assert "forced" not in record
    if dstrail.store.dialect == "postgresql":
        assert result.partitions_dropped == ["audit_events_p202602", "audit_events_p202603"]

    # The hot range verifies; so does the archive, alone.
    report = verify_store(dstrail.store, public_key=dstrail.signer.public_raw)
    assert report.ok, report.text()
    assert (report.purged_through, report.events) == (purged, report.tree_size - purged)
    checked = verify_archive(
        DirectoryTarget(tmp_path / "archive"), result.archive.folder,
        public_key=dstrail.signer.public_raw,
    )  # fmt: skip
    assert checked.manifest_sha256 == result.archive.manifest_sha256
    # The daily rollup no longer counts what was removed.
    with dstrail.store.read() as tx:
        total = sum(tx.audit.counts_by_kind().values())
        assert total == tx.audit.size() - purged


def test_proofs_survive_a_purge(dstrail: Dstrail, tmp_path: Path) -> None:
    fill(dstrail)
    retention_service.set_retention(dstrail.store, actor=OPERATOR, days=60, lock=False, now_ms=NOW)
    purged = purge(dstrail, tmp_path / "archive").plan.last
    dstrail.clock.advance(1000)  # type: ignore[attr-defined]
    with dstrail.store.write() as tx:  # the trail goes on after the purge
        tx.audit.record(new_event(dstrail.clock(), data_source_name="after"))
    with dstrail.store.write() as tx:
        latest = tx.integrity.checkpoint(now_ms=dstrail.clock())
    with dstrail.store.read() as tx:
        checkpoints = [c.tree_size for c in tx.integrity.checkpoints()]
        for seq in range(purged + 1, latest.tree_size + 1):
            (row,) = tx.integrity.events_after(seq - 1, limit=1)
            path = tx.integrity.inclusion_proof(seq, latest.tree_size)
            assert merkle.verify_inclusion(
                event_leaf(row[:8]), seq - 1, latest.tree_size, path, latest.root_hash
            ), seq
        # Consistency from checkpoints before and after the boundary to the latest.
        for size in checkpoints:
            old = tx.integrity.checkpoint_at(size)
            assert old is not None
            proof = tx.integrity.consistency_proof(size, latest.tree_size)
            assert merkle.verify_consistency(
                size, latest.tree_size, proof, old.root_hash, latest.root_hash
            ), size
    assert min(checkpoints) < purged < max(checkpoints)
    report = verify_store(dstrail.store, public_key=dstrail.signer.public_raw)
    assert report.ok, report.text()


def test_hash_tiles_of_the_purged_range_are_still_served(
    dstrail: Dstrail, client: TestClient, tmp_path: Path
) -> None:
    size = fill(dstrail)
    retention_service.set_retention(dstrail.store, actor=OPERATOR, days=60, lock=False, now_ms=NOW)
    with dstrail.store.read() as tx:
        leaves_before = tx.integrity.nodes({(0, i) for i in range(size)})
    purge(dstrail, tmp_path / "archive")
    with dstrail.store.read() as tx:
        leaves_after = tx.integrity.nodes({(0, i) for i in range(size)})
    assert leaves_after == leaves_before


def test_a_lagging_stream_holds_the_purge_back_unless_forced(
    dstrail: Dstrail, client: TestClient, tmp_path: Path
) -> None:
    fill(dstrail)
    from dstrail.domain.users import Role
    from tests.support import make_user

    admin = make_user(dstrail, "root", Role.SYS_ADMIN)
    response = client.post(
        "/api/dstrail/v1/streams",
        headers=admin.headers,
        json={"name": "siem", "kind": "webhook", "config": {"url": "http://127.0.0.1:9/x"},
              "secret": "whsec_" + "A" * 32, "fromSeq": 11},
    )  # fmt: skip
    assert response.status_code == 201, response.text
    retention_service.set_retention(dstrail.store, actor=OPERATOR, days=60, lock=False, now_ms=NOW)

    held = purge(dstrail, tmp_path / "archive")
    assert (held.plan.first, held.plan.last, held.plan.held_back_by) == (1, 10, ("siem",))
    with dstrail.store.read() as tx:
        assert tx.retention.state().purge_through == 10

    forced = purge(dstrail, tmp_path / "archive", force=True)
    assert (forced.plan.first, forced.plan.last) == (11, 2 * PER_MONTH)
    assert forced.plan.forced_past == ("siem",)
    first, second = recorded(dstrail, EventKind.TRAIL_PURGED)
    assert "forced" not in first
    assert second["forced"] == "true" and second["forcedPastStreams"] == "siem"
    report = verify_store(dstrail.store, public_key=dstrail.signer.public_raw)
    assert report.ok, report.text()


def test_a_tampered_archive_fails_verification(dstrail: Dstrail, tmp_path: Path) -> None:
    fill(dstrail)
    retention_service.set_retention(dstrail.store, actor=OPERATOR, days=60, lock=False, now_ms=NOW)
    result = purge(dstrail, tmp_path / "archive")
    assert result.archive is not None
    target = DirectoryTarget(tmp_path / "archive")
    folder = tmp_path / "archive" / result.archive.folder
    path = folder / "events-2026-03.parquet"
    frame = pandas.read_parquet(path)
    frame.loc[3, "dataSourceName"] = "someone-else"
    frame.to_parquet(path)
    with pytest.raises(ArchiveInvalid, match="SHA-256"):
        verify_archive(target, result.archive.folder, public_key=dstrail.signer.public_raw)
    # Even with the manifest's digest brought in line, the leaves no longer give the root.
    manifest = orjson.loads((folder / "manifest.json").read_bytes())
    import hashlib

    for item in manifest["files"]:
        if item["name"] == path.name:
            item["sha256"] = hashlib.sha256(path.read_bytes()).hexdigest()
    (folder / "manifest.json").write_bytes(orjson.dumps(manifest))
    with pytest.raises(ArchiveInvalid):
        verify_archive(target, result.archive.folder, public_key=dstrail.signer.public_raw)


def test_the_database_refuses_deleting_an_event_the_retention_path_did_not_purge(
    dstrail: Dstrail, tmp_path: Path
) -> None:
    fill(dstrail)
    retention_service.set_retention(dstrail.store, actor=OPERATOR, days=60, lock=False, now_ms=NOW)
    purge(dstrail, tmp_path / "archive")
    with pytest.raises(Exception, match="append-only"), dstrail.store.engine.begin() as db:
        db.execute(text("DELETE FROM audit_events WHERE seq = :seq"), {"seq": 2 * PER_MONTH + 1})
    with pytest.raises(Exception, match="append-only"), dstrail.store.engine.begin() as db:
        db.execute(text("DELETE FROM audit_tree_hashes WHERE seq = 1"))


def test_entry_bundles_of_purged_events_are_404_and_hash_tiles_stay(
    dstrail: Dstrail, client: TestClient, tmp_path: Path
) -> None:
    from dstrail.domain.users import Role
    from tests.support import make_user

    fill(dstrail)
    root = make_user(dstrail, "root", Role.SYS_ADMIN)
    retention_service.set_retention(dstrail.store, actor=OPERATOR, days=60, lock=False, now_ms=NOW)
    with dstrail.store.write() as tx:
        tx.integrity.checkpoint(now_ms=NOW)
    before = client.get("/api/dstrail/v1/tlog/tile/0/000.p/152", headers=root.headers)
    assert before.status_code == 200, before.text
    assert (
        client.get("/api/dstrail/v1/tlog/tile/entries/000.p/152", headers=root.headers).status_code
        == 200
    )
    purge(dstrail, tmp_path / "archive")
    after = client.get("/api/dstrail/v1/tlog/tile/0/000.p/152", headers=root.headers)
    assert after.status_code == 200 and after.content == before.content
    gone = client.get("/api/dstrail/v1/tlog/tile/entries/000.p/152", headers=root.headers)
    assert gone.status_code == 404 and "purged by the retention policy" in gone.text


def test_a_purge_stops_before_an_event_recorded_out_of_time_order(dstrail: Dstrail) -> None:
    old, young = month_ms("2026-02"), month_ms("2026-05")
    with dstrail.store.write() as tx:  # a clock that stepped forward, then back
        for ts in (old, old + 1, young, old + 2, old + 3):
            tx.audit.record(new_event(ts))
    with dstrail.store.read() as tx:
        cutoff = month_ms("2026-04", day=1)
        assert tx.retention.boundary(cutoff_ms=cutoff, after=0, at_most=5) == 2
        assert tx.retention.boundary(cutoff_ms=young + 1, after=0, at_most=5) == 5
        assert tx.retention.boundary(cutoff_ms=cutoff, after=0, at_most=1) == 1
        assert tx.retention.boundary(cutoff_ms=old, after=0, at_most=5) == 0


def test_the_boundary_is_the_first_young_event_in_seq_order_not_in_time_order(
    dstrail: Dstrail,
) -> None:
    old, may, june = month_ms("2026-02"), month_ms("2026-05"), month_ms("2026-06")
    with dstrail.store.write() as tx:
        for ts in (old, june, old + 1, may):  # the earliest young event is not the first
            tx.audit.record(new_event(ts))
    with dstrail.store.read() as tx:
        cutoff = month_ms("2026-04", day=1)
        assert tx.retention.boundary(cutoff_ms=cutoff, after=0, at_most=4) == 1
