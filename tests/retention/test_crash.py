"""kill -9 in the middle of a purge, on both databases: after the archive is written and
before anything is removed, and while events are being removed. Each time the trail is left
in the old state or the new one (on SQLite: the purge recorded and its removal resumed by the
next run), never with a hole: verification passes after every kill, and the next run
finishes the purge with exactly one ``AuditTrailPurged``."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import orjson
import pytest
from sqlalchemy import func, select, text

from dstrail.audit.verify import verify_store
from dstrail.context import Dstrail, open_dstrail
from dstrail.domain.timestamps import DAY_MS
from dstrail.domain.trail import EventKind
from dstrail.domain.users import OPERATOR
from dstrail.services import retention as retention_service
from dstrail.settings import Settings
from dstrail.store.schema import audit_events
from tests.support import new_event

OLD_EVENTS = 12_000
"""Events 200 days old (purged under a 30-day policy), then a few recent ones."""


def build(settings: Settings) -> Dstrail:
    dstrail = open_dstrail(settings)
    now = int(time.time() * 1000)
    start = now - 200 * DAY_MS
    for batch in range(0, OLD_EVENTS, 1000):
        with dstrail.store.write() as tx:
            for i in range(batch, batch + 1000):
                tx.audit.record(new_event(start + i, metadata={"objectKey": f"k/{i}"}))
    with dstrail.store.write() as tx:
        for i in range(20):
            tx.audit.record(new_event(now - 1000 + i))
    retention_service.set_retention(dstrail.store, actor=OPERATOR, days=30, lock=False, now_ms=now)
    return dstrail


def apply_in_child(settings: Settings, archive: Path) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "DSTRAIL_DATA_DIR": str(settings.data_dir),
        "DSTRAIL_DATABASE_URL": str(settings.database_url),
    }
    return subprocess.Popen(
        [sys.executable, "-m", "dstrail.cli", "retention", "apply", "--archive", str(archive)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def kill_when(child: subprocess.Popen[bytes], ready: Callable[[], bool]) -> bool:
    """SIGKILL the child as soon as ``ready()``; False when it finished first."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if child.poll() is not None:
            return False
        if ready():
            child.send_signal(signal.SIGKILL)
            child.wait()
            return True
        time.sleep(0.002)
    child.kill()
    raise AssertionError("the purge neither finished nor reached the point in two minutes")


def state(dstrail: Dstrail) -> tuple[int, int, int, int]:
    """(purge_through, removed_through, oldest seq in the table, AuditTrailPurged events)."""
    with dstrail.store.read() as tx:
        retention = tx.retention.state()
    with dstrail.store.engine.connect() as connection:
        oldest = connection.execute(select(func.min(audit_events.c.seq))).scalar()
        purges = connection.execute(
            select(func.count())
            .select_from(audit_events)
            .where(audit_events.c.event_kind == EventKind.TRAIL_PURGED.value)
        ).scalar()
    return retention.purge_through, retention.removed_through, int(oldest or 0), int(purges or 0)


def manifest_written(archive: Path) -> Callable[[], bool]:
    return lambda: any(archive.rglob("manifest.json"))


def removal_started(dstrail: Dstrail) -> Callable[[], bool]:
    """Rows are going: SQLite's batches have begun (the purge is recorded), or PostgreSQL's
    one transaction holds the lock on the retention row while it removes."""
    if dstrail.store.dialect == "postgresql":

        def locked() -> bool:
            with dstrail.store.engine.connect() as connection:
                waiting = connection.execute(
                    text(
                        "SELECT count(*) FROM pg_stat_activity WHERE datname = "
                        "current_database() AND pid <> pg_backend_pid() AND state = 'active' AND (query ILIKE "
                        "'%audit_tree_hashes%' OR query ILIKE '%DETACH PARTITION%' "
                        "OR query ILIKE 'DELETE FROM audit_events%')"
                    )
                ).scalar()
            return bool(waiting)

        return locked

    def batches() -> bool:
        with dstrail.store.read() as tx:
            retention = tx.retention.state()
        return retention.purge_through > 0 and retention.removed_through < retention.purge_through

    return batches


@pytest.mark.parametrize("point", ["after-archive", "during-removal"])
def test_kill_9_mid_purge_leaves_old_or_new_state_and_no_hole(
    settings: Settings, tmp_path: Path, point: str
) -> None:
    dstrail = build(settings)
    archive = tmp_path / "archive"
    try:
        ready = manifest_written(archive) if point == "after-archive" else removal_started(dstrail)
        child = apply_in_child(settings, archive)
        killed = kill_when(child, ready)
        assert killed, "the purge finished before the point was reached"
        purged, removed, oldest, purges = state(dstrail)
        report = verify_store(dstrail.store, public_key=dstrail.signer.public_raw)
        assert report.ok, report.text()
        old_state = (purged, removed, oldest, purges) == (0, 0, 1, 0)
        new_state = purged == OLD_EVENTS and purges == 1 and oldest > 0
        assert old_state or new_state, (killed, purged, removed, oldest, purges)
        if new_state and dstrail.store.dialect == "postgresql":
            assert (removed, oldest) == (OLD_EVENTS, OLD_EVENTS + 1)  # one transaction
        if point == "after-archive" and killed:
            assert old_state  # nothing is removed before the archive is read back
        # The next run finishes the purge; it is recorded once.
        child = apply_in_child(settings, archive)
        out, err = child.communicate(timeout=120)
        assert child.returncode == 0, err.decode()
        assert state(dstrail) == (OLD_EVENTS, OLD_EVENTS, OLD_EVENTS + 1, 1)
        final = verify_store(dstrail.store, public_key=dstrail.signer.public_raw)
        assert final.ok and final.purged_through == OLD_EVENTS, final.text()
        if killed and point == "after-archive":
            assert orjson.loads(out)["events"] == OLD_EVENTS
    finally:
        dstrail.store.dispose()
