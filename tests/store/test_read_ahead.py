"""Read-ahead: the rows an access decision reads, read together, are the rows read one by one."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from dstrail.context import Dstrail
from dstrail.domain.datasources import DataSource, Permissions
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
    """Alice's data source (shared with Bob, attached to her project) and her running job."""
    now = dstrail.clock()
    with dstrail.store.write() as tx:
        project = project_service.create_project(
            tx, name="p", owner=alice.user, collaborators=[], now_ms=now
        )
        run = run_service.start_run(
            tx, project=project, user=alice.user, run_type=RunType.BATCH, now_ms=now
        )
    ds = create_dataset(
        dstrail,
        alice,
        "shared-ds",
        permissions=Permissions(is_everyone=False, user_ids=(bob.id,)),
        config={"note": "a config value"},
    )
    with dstrail.store.write() as tx:
        ds = ds_service.attach_to_project(
            tx, data_source_id=ds.id, project_id=project.id, actor=alice.user, now_ms=now
        )
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


def test_rows_read_ahead_are_the_rows_read_one_by_one(
    dstrail: Dstrail, alice: Login, bob: Login, scene: Scene
) -> None:
    with dstrail.store.read() as tx:
        one_by_one = _read(tx, scene.ahead)
    with dstrail.store.read() as tx:
        tx.read_ahead(scene.ahead, scene.ahead)  # two decisions reading the same rows
        first, second = _read(tx, scene.ahead), _read(tx, scene.ahead)
    assert first == one_by_one == second
    user, by_name, by_id, run = one_by_one
    assert user == alice.user
    assert by_name == by_id
    assert isinstance(by_id, DataSource)
    assert by_id.permissions == Permissions(is_everyone=False, user_ids=(bob.id,))
    assert by_id.project_ids == (scene.run.project_id,)
    assert by_id.config == {"note": "a config value"}
    assert run == scene.run


def test_rows_that_do_not_exist_are_read_ahead_as_none(dstrail: Dstrail, scene: Scene) -> None:
    missing = ReadAhead(
        api_key_hash=hash_api_key("not-a-key"),
        data_source_name="no-such-ds",
        data_source_id="0" * 24,
        run_id="f" * 24,
    )
    with dstrail.store.read() as tx:
        tx.read_ahead(missing, scene.ahead)
        assert _read(tx, missing) == (None, None, None, None)
        assert _read(tx, scene.ahead)[3] == scene.run


def test_postgresql_reads_them_in_one_statement_before_they_are_asked_for(
    dstrail: Dstrail, scene: Scene
) -> None:
    """A row changed by another transaction after the read-ahead is seen as it was read, once
    for each time it was asked for ahead; the read after that reads it anew."""
    if dstrail.store.dialect != "postgresql":
        pytest.skip("SQLite has no round trips to save: it reads nothing ahead")
    with dstrail.store.write() as tx:  # READ COMMITTED: each statement sees the latest commit
        tx.read_ahead(ReadAhead(run_id=scene.run.id, data_source_name="shared-ds"))
        with dstrail.store.write() as other:
            run_service.stop_run(other, run_id=scene.run.id, now_ms=dstrail.clock())
        as_read_ahead = tx.runs.by_id(scene.run.id)
        read_anew = tx.runs.by_id(scene.run.id)
    assert as_read_ahead is not None and as_read_ahead.is_running
    assert read_anew is not None and not read_anew.is_running
