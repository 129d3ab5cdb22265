"""Group commit: units share a commit, a failing unit leaves nothing, callers wait for it."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest

from dstrail.context import Dstrail
from dstrail.domain.ids import new_object_id
from dstrail.domain.users import Role, User
from dstrail.errors import Conflict
from dstrail.store import Repositories
from dstrail.store.group_commit import GroupCommitWriter


def _add_user(username: str) -> Callable[[Repositories], str]:
    def work(tx: Repositories) -> str:
        user = User(id=new_object_id(), username=username, email="", role=Role.USER)
        tx.users.add(user, now_ms=0)
        return user.id

    return work


def test_a_failing_unit_leaves_nothing_and_the_rest_of_its_batch_commits(
    dstrail: Dstrail,
) -> None:
    writer = GroupCommitWriter(dstrail.store.write)
    waiting = 4
    release = threading.Event()

    def hold_the_writer(tx: Repositories) -> str:
        deadline = time.monotonic() + 10
        while writer._queue.qsize() < waiting and time.monotonic() < deadline:
            time.sleep(0.005)
        release.set()
        return "held"

    results: dict[str, object] = {}

    def submit(name: str, work: Callable[[Repositories], str]) -> None:
        try:
            results[name] = writer.run(work)
        except Exception as error:
            results[name] = error

    first = threading.Thread(target=submit, args=("hold", hold_the_writer))
    first.start()
    time.sleep(0.05)
    threads = [
        threading.Thread(target=submit, args=(name, _add_user(username)))
        for name, username in (("a", "ann"), ("dup1", "dana"), ("dup2", "dana"), ("b", "ben"))
    ]
    for thread in threads:
        thread.start()
    for thread in [first, *threads]:
        thread.join(timeout=20)
    writer.close()

    assert release.is_set(), "the four units were not queued behind the first one"
    assert results["hold"] == "held"
    conflicts = [results["dup1"], results["dup2"]]
    assert sum(isinstance(r, Conflict) for r in conflicts) == 1
    assert sum(isinstance(r, str) for r in conflicts) == 1
    with dstrail.store.read() as tx:
        names = sorted(u.username for u in tx.users.all())
    assert names == ["ann", "ben", "dana"]


def test_results_are_durable_when_run_returns(dstrail: Dstrail) -> None:
    user_ids = [dstrail.store.write_grouped(_add_user(f"user{i}")) for i in range(3)]
    with dstrail.store.read() as tx:
        assert sorted(tx.users.by_ids(user_ids)) == sorted(user_ids)


def test_an_error_inside_work_is_raised_to_its_caller(dstrail: Dstrail) -> None:
    def boom(tx: Repositories) -> None:
        tx.users.add(User(id=new_object_id(), username="ghost", email="", role=Role.USER), now_ms=0)
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        dstrail.store.write_grouped(boom)
    with dstrail.store.read() as tx:
        assert tx.users.by_username("ghost") is None
