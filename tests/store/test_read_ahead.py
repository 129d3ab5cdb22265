"""Read-ahead: the rows an access decision reads, read together, are the rows read one by one."""

from __future__ import annotations

from dataclasses import dataclass, replace

import pytest

from dstrail.context import Dstrail
from dstrail.domain.datasources import DataSource, Permissions, ProjectLink
from dstrail.domain.projects import Run, RunType
from dstrail.services import datasources as ds_service
from dstrail.services import projects as project_service
from dstrail.services import runs as run_service
from dstrail.services.users import hash_api_key
from dstrail.store import ReadAhead, Repositories
from tests.support import Login, create_dataset


@dataclass(frozen=True)
class Scene:
    data_source: DataSource
    run: Run
    ahead: ReadAhead


@pytest.fixture
def scene(dstrail: Dstrail, alice: Login, bob: Login) -> Scene:
    """Alice's data source (shared with Bob, attached to her project) and her running job, as
    the services built them (the values every read must return)."""
    now = dstrail.clock()
    with dstrail.store.write() as tx:
        project = project_service.create_project(
            tx, actor=alice.user, name="p", owner=alice.user, collaborators=[], now_ms=now
        )
        run = run_service.start_run(
            tx,
            actor=alice.user,
            project=project,
            user=alice.user,
            run_type=RunType.BATCH,
            now_ms=now,
        )
    created = create_dataset(  # as the service built it, not as read back
        dstrail,
        alice,
        "shared-ds",
        permissions=Permissions(is_everyone=False, user_ids=(bob.id,)),
        config={"note": "a config value"},
    )
    with dstrail.store.write() as tx:
        ds_service.attach_to_project(
            tx, data_source_id=created.id, project_id=project.id, actor=alice.user, now_ms=now
        )
    link = ProjectLink(
        project_id=project.id, added_by=alice.id, added_at_ms=now, last_accessed_ms=0
    )
    ds = replace(created, project_links=(link,))
    assert ds.permissions == Permissions(is_everyone=False, user_ids=(bob.id,))
    assert (ds.owner_id, ds.config) == (alice.id, {"note": "a config value"})
    ahead = ReadAhead(
        api_key_hash=hash_api_key(alice.api_key),
        data_source_name=ds.name,
        data_source_id=ds.id,
        run_id=run.id,
    )
    return Scene(data_source=ds, run=run, ahead=ahead)


def _read(tx: Repositories, ahead: ReadAhead) -> tuple[object, ...]:
    assert ahead.api_key_hash and ahead.data_source_name and ahead.data_source_id
    assert ahead.run_id
    return (
        tx.users.by_api_key_hash(ahead.api_key_hash),
        tx.data_sources.active_by_name(ahead.data_source_name),
        tx.data_sources.by_id(ahead.data_source_id),
        tx.runs.by_id(ahead.run_id),
    )


def _expected(alice: Login, scene: Scene) -> tuple[object, ...]:
    """What ``_read`` must return, built from what the test created, not from a read."""
    return (alice.user, scene.data_source, scene.data_source, scene.run)


def test_rows_read_ahead_are_the_rows_created(dstrail: Dstrail, alice: Login, scene: Scene) -> None:
    with dstrail.store.read() as tx:
        one_by_one = _read(tx, scene.ahead)
    with dstrail.store.read() as tx:
        tx.read_ahead(scene.ahead, scene.ahead)  # two decisions reading the same rows
        first, second = _read(tx, scene.ahead), _read(tx, scene.ahead)
        third = _read(tx, scene.ahead)  # nothing left ahead: read anew
    assert one_by_one == _expected(alice, scene)
    assert first == _expected(alice, scene)
    assert second == _expected(alice, scene)
    assert third == _expected(alice, scene)


def test_rows_that_do_not_exist_are_read_ahead_as_none(
    dstrail: Dstrail, alice: Login, scene: Scene
) -> None:
    missing = ReadAhead(
        api_key_hash=hash_api_key("not-a-key"),
        data_source_name="no-such-ds",
        data_source_id="0" * 24,
        run_id="f" * 24,
    )
    with dstrail.store.read() as tx:
        tx.read_ahead(missing, scene.ahead)
        assert _read(tx, missing) == (None, None, None, None)
        assert _read(tx, scene.ahead) == _expected(alice, scene)


def test_sqlite_reads_nothing_ahead_postgresql_reads_the_rows_as_they_were(
    dstrail: Dstrail, alice: Login, scene: Scene
) -> None:
    """Changed in the same transaction after the read-ahead: SQLite, which reads nothing ahead,
    reads the changed rows; PostgreSQL hands over the rows it read ahead, as they were."""
    ended_at = dstrail.clock() + 1
    with dstrail.store.write() as tx:
        tx.read_ahead(scene.ahead)
        assert tx.runs.finish(scene.run.id, now_ms=ended_at)
        tx.data_sources.detach_project(scene.data_source.id, scene.run.project_id)
        seen = _read(tx, scene.ahead)
        read_anew = _read(tx, scene.ahead)
    changed = (
        alice.user,
        replace(scene.data_source, project_links=()),
        replace(scene.data_source, project_links=()),
        replace(scene.run, ended_at_ms=ended_at),
    )
    if dstrail.store.dialect == "sqlite":
        assert seen == changed
    else:
        assert dstrail.store.dialect == "postgresql"
        assert seen == _expected(alice, scene)
    assert read_anew == changed


def test_postgresql_reads_them_in_one_statement_before_they_are_asked_for(
    dstrail: Dstrail, scene: Scene
) -> None:
    """A row changed by another transaction after the read-ahead is seen as it was read, once
    for each time it was asked for ahead; the read after that reads it anew."""
    if dstrail.store.dialect != "postgresql":
        pytest.skip("SQLite has no round trips to save: it reads nothing ahead")
    with dstrail.store.write() as tx:  # READ COMMITTED: each statement sees the latest commit
        tx.read_ahead(ReadAhead(run_id=scene.run.id, data_source_name="shared-ds"))
        with dstrail.store.write() as other:  # the run's row only: no event, no head lock
            assert other.runs.finish(scene.run.id, now_ms=dstrail.clock())
        as_read_ahead = tx.runs.by_id(scene.run.id)
        read_anew = tx.runs.by_id(scene.run.id)
    assert as_read_ahead is not None and as_read_ahead.is_running
    assert read_anew is not None and not read_anew.is_running
