"""The follower and rebuild: a rebuild from the trail equals the state the follower built batch
by batch (random histories, any batch size); a check finds a state that drifted; a batch is
kept whole or not at all; consumers see each batch once, without the findings' own events,
told when it is a replay; ``dstrail serve``'s thread keeps up."""

from __future__ import annotations

import time
from collections.abc import Sequence

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text, update

from dstrail.cli import main
from dstrail.context import Dstrail
from dstrail.domain.forensics import TrailEvent
from dstrail.domain.trail import EventKind, NewAuditEvent
from dstrail.domain.users import OPERATOR
from dstrail.services.forensics import (
    BatchContext,
    DerivedState,
    Follower,
    ForensicsFollowerThread,
    rebuild,
)
from dstrail.store import Repositories
from dstrail.store.schema import forensic_grants
from tests.forensics.conftest import Fresh
from tests.forensics.histories import MOVES, History
from tests.support import Login, SettableClock, create_dataset

STEPS = st.lists(
    st.tuples(
        st.sampled_from(MOVES), st.integers(0, 2**16), st.integers(0, 2**16), st.integers(0, 5)
    ),
    min_size=1,
    max_size=30,
)


def test_a_rebuild_equals_the_state_built_batch_by_batch(fresh_dstrail: Fresh) -> None:
    @settings(
        max_examples=12, deadline=None, database=None, suppress_health_check=list(HealthCheck)
    )
    @given(steps=STEPS, batch=st.integers(1, 9), rebuild_batch=st.integers(1, 50))
    def check(steps: list[tuple[str, int, int, int]], batch: int, rebuild_batch: int) -> None:
        with fresh_dstrail() as (dstrail, clock):
            follower = Follower(
                dstrail.store, settings=dstrail.settings, clock=clock, batch_events=batch,
                consumers=(),
            )  # fmt: skip
            history = History(dstrail, clock, follower)
            for step in steps:
                history.step(*step)
            follower.catch_up()
            checked = rebuild(
                dstrail.store, settings=dstrail.settings, clock=clock, check=True,
                batch_events=rebuild_batch, consumers=(),
            )  # fmt: skip
            assert checked.equal is True, checked
            assert checked.incremental is not None
            rebuilt = rebuild(
                dstrail.store, settings=dstrail.settings, clock=clock,
                batch_events=rebuild_batch, consumers=(),
            )  # fmt: skip
            assert rebuilt.rebuilt.digest == checked.incremental.digest
            assert rebuilt.events == checked.incremental.through_seq

    check()


def test_a_check_finds_a_state_that_drifted_and_a_rebuild_mends_it(
    dstrail: Dstrail,
    follower: Follower,
    alice: Login,
    bob: Login,
    capsys: pytest.CaptureFixture[str],
) -> None:
    create_dataset(dstrail, alice, "x")
    follower.catch_up()
    with dstrail.store.engine.begin() as connection:  # a grant revoked behind the trail's back
        connection.execute(update(forensic_grants).values(revoked_seq=1, revoked_ms=0))
    storage = ["--database-url", str(dstrail.settings.database_url),
               "--data-dir", str(dstrail.settings.data_dir)]  # fmt: skip
    assert main(["forensics", "rebuild", "--check", *storage]) == 1
    assert '"equal":false' in capsys.readouterr().out
    assert main(["forensics", "rebuild", *storage]) == 0
    assert '"grants":2' in capsys.readouterr().out  # owner and everyone, open again
    assert main(["forensics", "rebuild", "--check", *storage]) == 0
    assert '"equal":true' in capsys.readouterr().out


class Recorder:
    """A consumer that notes what it is given, and fails when told to."""

    def __init__(self) -> None:
        self.batches: list[tuple[list[int], list[str], bool]] = []
        self.resets = 0
        self.fail = False

    def evaluate(
        self, tx: Repositories, events: Sequence[TrailEvent], context: BatchContext
    ) -> None:
        if self.fail:
            raise RuntimeError("the consumer failed")
        self.batches.append(
            ([e.seq for e in events], [e.event_kind for e in events], context.replaying)
        )

    def reset(self, tx: Repositories) -> None:
        self.resets += 1

    def state(self) -> DerivedState:
        return DerivedState(
            "recorder", self.evaluate, self.reset, lambda tx: str(len(self.batches))
        )


def test_a_batch_is_kept_whole_or_not_at_all(dstrail: Dstrail, alice: Login) -> None:
    recorder = Recorder()
    follower = Follower(
        dstrail.store, settings=dstrail.settings, clock=dstrail.clock, consumers=[recorder.state()]
    )
    create_dataset(dstrail, alice, "x")
    recorder.fail = True
    with pytest.raises(RuntimeError):
        follower.catch_up()
    with dstrail.store.read() as tx:
        assert tx.forensics.state().cursor_seq == 0
        assert tx.forensics.digest().grants == 0
    recorder.fail = False
    assert follower.catch_up() > 0
    with dstrail.store.read() as tx:
        assert tx.forensics.state().cursor_seq == tx.forensics.head()
        assert tx.forensics.digest().grants == 2


def test_consumers_see_each_event_once_without_findings_and_know_a_replay(
    dstrail: Dstrail, alice: Login, clock: SettableClock
) -> None:
    recorder = Recorder()
    consumers = [recorder.state()]
    follower = Follower(
        dstrail.store, settings=dstrail.settings, clock=clock, batch_events=2, consumers=consumers
    )
    create_dataset(dstrail, alice, "x")
    with dstrail.store.write() as tx:  # a finding, as the detection rules record one
        tx.audit.record(
            NewAuditEvent(
                event_kind=EventKind.FINDING_RAISED, data_source_id="", data_source_name="",
                data_source_type="", performed_by=OPERATOR.id, performed_by_username="operator",
                timestamp_ms=clock(), metadata={"rule": "test"},
            )
        )  # fmt: skip
    follower.catch_up()
    seen = [seq for seqs, _kinds, _replay in recorder.batches for seq in seqs]
    with dstrail.store.read() as tx:
        head = tx.forensics.head()
    assert seen == list(range(1, head))  # every event once, in order, but the finding
    assert all(
        kind != EventKind.FINDING_RAISED for _s, kinds, _r in recorder.batches for kind in kinds
    )
    assert not any(replaying for _s, _k, replaying in recorder.batches)

    recorder.batches.clear()
    report = rebuild(dstrail.store, settings=dstrail.settings, clock=clock, consumers=consumers)
    assert recorder.resets == 1 and report.rebuilt.derived == {
        "recorder": str(len(recorder.batches))
    }
    assert recorder.batches and all(replaying for _s, _k, replaying in recorder.batches)
    assert report.rebuilt.through_seq == head and report.purged_through == 0


def test_the_thread_of_dstrail_serve_keeps_up(dstrail: Dstrail, alice: Login) -> None:
    follower = Follower(dstrail.store, settings=dstrail.settings, clock=dstrail.clock, consumers=())
    thread = ForensicsFollowerThread(follower, every_seconds=0.05)
    thread.start()
    try:
        create_dataset(dstrail, alice, "x")
        with dstrail.store.read() as tx:
            head = tx.forensics.head()
        deadline = time.monotonic() + 10
        while follower.cursor() < head and time.monotonic() < deadline:
            time.sleep(0.05)
        assert follower.cursor() == head
    finally:
        thread.stop()


def test_events_gone_before_the_follower_read_them_are_skipped(
    dstrail: Dstrail, follower: Follower, alice: Login
) -> None:
    create_dataset(dstrail, alice, "x")
    with dstrail.store.engine.begin() as connection:  # as a retention purge leaves the trail
        connection.execute(
            text("UPDATE audit_retention SET purge_through = 2, removed_through = 2")
        )
        connection.execute(text("DELETE FROM audit_events WHERE seq <= 2"))
    follower.catch_up()
    report = rebuild(dstrail.store, settings=dstrail.settings, clock=dstrail.clock, consumers=())
    assert report.purged_through == 2 and report.rebuilt.first_seq == 3
    with dstrail.store.read() as tx:
        assert tx.forensics.state().cursor_seq == tx.forensics.head()
