"""Tampering with the real SQLite and PostgreSQL databases, as a DBA would (dropping the
append-only triggers first), and showing that ``dstrail audit verify`` names what and where."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest
from sqlalchemy import text

from dstrail.audit.checkpoints import checkpoint_now
from dstrail.audit.verify import FindingKind, VerifyReport, verify_store
from dstrail.cli import main
from dstrail.context import Dstrail
from dstrail.domain.trail import EventKind, NewAuditEvent, StoredEvent, event_leaf, merkle
from dstrail.settings import Settings
from tests.support import new_event

EVENTS = 45


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    """Checkpoints every 10 events, so tampering falls between checkpoints."""
    return Settings(
        data_dir=tmp_path / "data", database_url=database_url, checkpoint_every_events=10
    )


@pytest.fixture
def trail(dstrail: Dstrail) -> Dstrail:
    """A trail of ``EVENTS`` events with checkpoints at 1, 10, 20, 30, 40."""
    now = dstrail.clock()
    for i in range(EVENTS):
        with dstrail.store.write() as tx:
            tx.audit.append(
                NewAuditEvent(
                    event_kind=EventKind.ACCESS_DATA_SOURCE
                    if i % 3
                    else EventKind.CREATE_DATA_SOURCE,
                    data_source_id=f"{i:024x}",
                    data_source_name=f"ds-{i % 4}",
                    data_source_type="S3Config",
                    performed_by="a" * 24,
                    performed_by_username="alice",
                    timestamp_ms=now - (EVENTS - i) * 1000,
                    metadata={"operation": "objectKey", "objectKey": f"k/{i}", "é": "ü"},
                )
            )
    return dstrail


def attack(dstrail: Dstrail, *statements: str, params: dict[str, Any] | None = None) -> None:
    """Run SQL as the database owner, with the append-only triggers out of the way."""
    tables = ("audit_events", "audit_checkpoints")
    with dstrail.store.engine.connect() as connection, connection.begin():
        if dstrail.store.dialect == "sqlite":
            for table in tables:
                for action in ("update", "delete"):
                    connection.exec_driver_sql(f"DROP TRIGGER IF EXISTS {table}_no_{action}")
        else:
            for table in tables:
                connection.exec_driver_sql(f"ALTER TABLE {table} DISABLE TRIGGER USER")
        for statement in statements:
            connection.execute(text(statement), params or {})


def verify(dstrail: Dstrail, *, external: list[Any] | None = None) -> VerifyReport:
    return verify_store(
        dstrail.store, public_key=dstrail.signer.public_raw, external=external or []
    )


def first(report: VerifyReport) -> tuple[FindingKind, int]:
    assert not report.ok
    assert report.first is not None
    return report.first.kind, report.first.seq


def test_an_untouched_store_verifies(trail: Dstrail) -> None:
    report = verify(trail)
    assert report.ok, report.text()
    assert report.events == EVENTS
    assert report.checkpoints == 5
    with trail.store.read() as tx:
        sizes = [c.tree_size for c in tx.integrity.checkpoints()]
    assert sizes == [1, 10, 20, 30, 40]  # the first append (none before), then every 10


def test_a_modified_field_is_named(trail: Dstrail) -> None:
    attack(trail, "UPDATE audit_events SET data_source_name = 'innocent' WHERE seq = 17")
    assert first(verify(trail)) == (FindingKind.MODIFIED, 17)


def test_a_modification_with_recomputed_hashes_is_caught_by_the_checkpoints(
    trail: Dstrail,
) -> None:
    """The attacker knows the public encoding and rewrites the leaf hash too: the event then
    matches its leaf, but not the root the checkpoint of size 20 signed."""
    with trail.store.read() as tx:
        row = tx.integrity.events_after(16, limit=1)[0]
    leaf = event_leaf(StoredEvent(*row[:8])._replace(data_source_name="innocent"))
    attack(
        trail,
        "UPDATE audit_events SET data_source_name = 'innocent', leaf_hash = :leaf WHERE seq = 17",
        params={"leaf": leaf},
    )
    report = verify(trail)
    assert first(report) == (FindingKind.ROOT_MISMATCH, 11)
    assert report.first is not None and "11-20" in report.first.message


def test_modified_metadata_is_named(trail: Dstrail) -> None:
    attack(
        trail,
        "UPDATE audit_events SET metadata = :m WHERE seq = 23",
        params={"m": '{"performedByUsername":"bob","operation":"objectKey"}'},
    )
    assert first(verify(trail)) == (FindingKind.MODIFIED, 23)


def test_a_deleted_event_is_named(trail: Dstrail) -> None:
    attack(trail, "DELETE FROM audit_events WHERE seq = 17")
    report = verify(trail)
    assert first(report) == (FindingKind.DELETED, 17)
    assert any(f.kind is FindingKind.ROOT_MISMATCH for f in report.findings)


def test_a_deleted_event_with_renumbering_is_named(trail: Dstrail) -> None:
    attack(
        trail,
        "DELETE FROM audit_events WHERE seq = 17",
        "UPDATE audit_events SET seq = -seq WHERE seq > 17",
        "UPDATE audit_events SET seq = -seq - 1 WHERE seq < 0",
        "UPDATE audit_head SET size = size - 1",
    )
    assert first(verify(trail)) == (FindingKind.DELETED, 17)


def test_an_inserted_event_is_named(trail: Dstrail) -> None:
    """The attacker makes room at 17, shifting later events, and even computes a valid leaf."""
    forged: dict[str, Any] = {
        "seq": 17,
        "ts": trail.clock() - 28_500,
        "kind": "AccessDataSource",
        "id": "f" * 24,
        "name": "ds-1",
        "type": "S3Config",
        "by": "b" * 24,
        "user": "mallory",
        "metadata": '{"performedByUsername":"mallory"}',
    }
    forged["leaf"] = event_leaf(
        StoredEvent(
            data_source_id=forged["id"],
            data_source_name=forged["name"],
            data_source_type=forged["type"],
            event_kind=forged["kind"],
            metadata=forged["metadata"],
            performed_by=forged["by"],
            ts_ms=forged["ts"],
            seq=17,
        )
    )
    attack(
        trail,
        "UPDATE audit_events SET seq = -seq WHERE seq >= 17",
        "UPDATE audit_events SET seq = -seq + 1 WHERE seq < 0",
        "INSERT INTO audit_events (seq, ts_ms, event_kind, data_source_id, data_source_name, "
        "data_source_type, performed_by, performed_by_username, metadata, leaf_hash) VALUES "
        "(:seq, :ts, :kind, :id, :name, :type, :by, :user, :metadata, :leaf)",
        "UPDATE audit_head SET size = size + 1",
        params=forged,
    )
    assert first(verify(trail)) == (FindingKind.INSERTED, 17)


def test_an_event_inserted_past_the_head_is_named(trail: Dstrail) -> None:
    attack(
        trail,
        "INSERT INTO audit_events (seq, ts_ms, event_kind, data_source_id, data_source_name, "
        "data_source_type, performed_by, performed_by_username, metadata) VALUES "
        f"({EVENTS + 1}, 0, 'AccessDataSource', '{'f' * 24}', 'x', 'S3Config', '{'b' * 24}', "
        "'mallory', '{\"performedByUsername\":\"mallory\"}')",
    )
    assert first(verify(trail)) == (FindingKind.INSERTED, EVENTS + 1)


def test_reordered_events_are_named(trail: Dstrail) -> None:
    attack(
        trail,
        "UPDATE audit_events SET seq = -1 WHERE seq = 12",
        "UPDATE audit_events SET seq = 12 WHERE seq = 23",
        "UPDATE audit_events SET seq = 23 WHERE seq = -1",
    )
    report = verify(trail)
    assert first(report) == (FindingKind.REORDERED, 12)
    assert report.first is not None and "23" in report.first.message


def test_neighbours_swapped_are_named(trail: Dstrail) -> None:
    attack(
        trail,
        "UPDATE audit_events SET seq = -1 WHERE seq = 33",
        "UPDATE audit_events SET seq = 33 WHERE seq = 34",
        "UPDATE audit_events SET seq = 34 WHERE seq = -1",
    )
    assert first(verify(trail)) == (FindingKind.REORDERED, 33)


def test_a_forged_checkpoint_is_named(trail: Dstrail) -> None:
    attack(
        trail,
        "UPDATE audit_checkpoints SET root_hash = :root WHERE tree_size = 20",
        params={"root": b"\x11" * 32},
    )
    assert first(verify(trail)) == (FindingKind.BAD_SIGNATURE, 20)


def test_a_broken_signature_is_named(trail: Dstrail) -> None:
    attack(
        trail,
        "UPDATE audit_checkpoints SET signature = :s WHERE tree_size = 30",
        params={"s": b"\x00" * 64},
    )
    assert first(verify(trail)) == (FindingKind.BAD_SIGNATURE, 30)


def test_a_checkpoint_signed_by_another_key_is_named(trail: Dstrail, tmp_path: Path) -> None:
    other = Settings(data_dir=tmp_path / "other", database_url=trail.settings.database_url)
    from dstrail.context import open_dstrail

    impostor = open_dstrail(other, clock=trail.clock, migrate=False)
    try:
        with trail.store.write() as tx:
            tx.audit.append(
                new_event(
                    trail.clock(),
                    event_kind=EventKind.DELETE_DATA_SOURCE,
                    data_source_id="e" * 24,
                    data_source_name="ds-0",
                )
            )
        checkpoint_now(impostor.store, now_ms=trail.clock() + 1)
    finally:
        impostor.store.dispose()
    assert first(verify(trail)) == (FindingKind.BAD_SIGNATURE, EVENTS + 1)


def _truncate(trail: Dstrail, keep: int) -> None:
    """Cut the tail and every checkpoint past it, and rebuild the head as it was at ``keep``:
    everything an attacker with the database (but not the signing key) can do."""
    with trail.store.read() as tx:
        leaves = [row[11] for row in tx.integrity.events_after(0, limit=keep)]
    frontier: list[bytes] = []
    for index, leaf in enumerate(leaves):
        assert leaf is not None
        frontier, _ = merkle.append_leaf(frontier, index, leaf)
    attack(
        trail,
        f"DELETE FROM audit_events WHERE seq > {keep}",
        f"DELETE FROM audit_checkpoints WHERE tree_size > {keep}",
        f"UPDATE audit_head SET size = {keep}, frontier = :f, checkpoint_size = 30",
        params={"f": merkle.pack_frontier(frontier)},
    )


def test_a_cut_tail_is_named_by_a_checkpoint_saved_elsewhere(
    trail: Dstrail, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    saved = tmp_path / "checkpoint.json"
    storage = [
        "--database-url",
        str(trail.settings.database_url),
        "--data-dir",
        str(trail.settings.data_dir),
    ]
    assert main(["audit", "checkpoint", *storage, "--out", str(saved)]) == 0
    assert orjson.loads(saved.read_bytes())["checkpoint"]["treeSize"] == EVENTS
    _truncate(trail, 30)
    capsys.readouterr()
    # Without the saved checkpoint the cut is invisible: the store is consistent with itself.
    assert main(["audit", "verify", *storage]) == 0
    assert main(["audit", "verify", *storage, "--checkpoint", str(saved), "--format", "json"]) == 1
    out = capsys.readouterr().out.strip().splitlines()[-1]
    document = orjson.loads(out)
    assert document["ok"] is False
    assert document["firstWrongSeq"] == 31
    assert document["first"]["kind"] == "tail-truncated"


def test_the_cli_names_the_first_wrong_seq(
    trail: Dstrail, capsys: pytest.CaptureFixture[str]
) -> None:
    storage = [
        "--database-url",
        str(trail.settings.database_url),
        "--data-dir",
        str(trail.settings.data_dir),
    ]
    assert main(["audit", "verify", *storage]) == 0
    assert "OK" in capsys.readouterr().out
    attack(trail, "DELETE FROM audit_events WHERE seq = 5")
    assert main(["audit", "verify", *storage]) == 1
    assert "first wrong seq 5: event-deleted" in capsys.readouterr().out
