"""Migration 0002 gives events written before it their leaves, nodes and frontier, and 0003
moves the nodes into the events' rows; and the ``serve`` tick signs checkpoints when the trail
is idle."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import text

from dstrail.audit.checkpoints import start_checkpoint_ticker
from dstrail.audit.verify import verify_store
from dstrail.context import Dstrail, open_dstrail
from dstrail.domain.trail import EventKind, merkle
from dstrail.settings import Settings
from dstrail.store import Store
from dstrail.store.engine import MIGRATIONS_DIR
from tests.conftest import PG_ADMIN_URL, _pg_url
from tests.support import new_event


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database with no schema at all."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'old.sqlite3'}"
        return
    name = f"dstrail_m_{uuid.uuid4().hex[:12]}"
    try:
        admin = psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError:
        pytest.skip("PostgreSQL is not reachable at 127.0.0.1:5432")
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    yield _pg_url(name)
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_events_from_before_0002_get_their_leaves(empty_url: str, tmp_path: Path) -> None:
    store = Store(empty_url)
    config = Config(str(MIGRATIONS_DIR / "alembic.ini"))
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    with store.engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0001")
    with store.engine.begin() as connection:
        for seq in range(1, 14):
            connection.execute(
                text(
                    "INSERT INTO audit_events (seq, ts_ms, event_kind, data_source_id, "
                    "data_source_name, data_source_type, performed_by, performed_by_username, "
                    "metadata) VALUES (:seq, :ts, 'CreateDataSource', :id, 'old', 'S3Config', "
                    ":by, 'alice', :metadata)"
                ),
                {
                    "seq": seq,
                    "ts": 1_700_000_000_000 + seq,
                    "id": f"{seq:024x}",
                    "by": "a" * 24,
                    "metadata": '{"performedByUsername":"alice","isEveryone":"false"}',
                },
            )
        connection.execute(text("UPDATE audit_head SET size = 13"))
    store.dispose()
    dstrail = open_dstrail(Settings(data_dir=tmp_path / "data", database_url=empty_url))
    try:
        with dstrail.store.write() as tx:
            tx.audit.append(
                new_event(
                    1_700_000_001_000,
                    event_kind=EventKind.DELETE_DATA_SOURCE,
                    data_source_id="b" * 24,
                    data_source_name="old",
                )
            )
        report = verify_store(dstrail.store, public_key=dstrail.signer.public_raw)
        assert report.ok, report.text()
        assert report.events == 14 and report.checkpoints == 1
        # Proofs read the subtree hashes 0002 computed, as 0003 moved them into the events.
        with dstrail.store.read() as tx:
            leaves = [row[11] for row in tx.integrity.events_after(0, limit=14)]
            root = tx.integrity.root(14)
            assert root == merkle.root_from_leaves(leaf for leaf in leaves if leaf is not None)
            for seq in (1, 8, 13, 14):
                path = tx.integrity.inclusion_proof(seq, 14)
                leaf = leaves[seq - 1]
                assert leaf is not None
                assert merkle.verify_inclusion(leaf, seq - 1, 14, path, root)
            for first in (1, 8, 12):
                proof = tx.integrity.consistency_proof(first, 14)
                assert merkle.verify_consistency(first, 14, proof, tx.integrity.root(first), root)
    finally:
        dstrail.store.dispose()


def test_the_tick_checkpoints_an_idle_trail(dstrail: Dstrail) -> None:
    with dstrail.store.write() as tx:
        for i in range(3):
            tx.audit.append(
                new_event(
                    dstrail.clock(),
                    event_kind=EventKind.CREATE_DATA_SOURCE,
                    data_source_id=f"{i:024x}",
                    data_source_name=f"ds-{i}",
                )
            )
    with dstrail.store.read() as tx:
        before = tx.integrity.latest_checkpoint()
    assert before is not None and before.tree_size == 1  # only the first append was due
    stop = start_checkpoint_ticker(dstrail.store, clock=dstrail.clock, every_seconds=1)
    try:
        deadline = time.monotonic() + 10
        latest = before
        while time.monotonic() < deadline and latest.tree_size < 3:
            time.sleep(0.2)
            with dstrail.store.read() as tx:
                latest = tx.integrity.latest_checkpoint() or before
    finally:
        stop.set()
    assert latest.tree_size == 3


def test_concurrent_appenders_keep_one_consistent_tree(dstrail: Dstrail) -> None:
    """Appenders racing on both databases: the head lock orders leaves, nodes and frontier."""
    errors: list[BaseException] = []

    def append_many(worker: int) -> None:
        try:
            for i in range(25):
                with dstrail.store.write() as tx:
                    tx.audit.append(
                        new_event(
                            dstrail.clock(),
                            data_source_id=f"{worker:012x}{i:012x}",
                            data_source_name=f"ds-{worker}",
                        )
                    )
        except BaseException as error:  # reported below, on the test's thread
            errors.append(error)

    threads = [threading.Thread(target=append_many, args=(w,)) for w in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    with dstrail.store.write() as tx:
        checkpoint = tx.integrity.checkpoint(now_ms=dstrail.clock())
    assert checkpoint.tree_size == 100
    report = verify_store(dstrail.store, public_key=dstrail.signer.public_raw)
    assert report.ok, report.text()
    assert report.root_hash == checkpoint.root_hash.hex()
