"""Runs (``services.runs``): who may start and stop them, and the token code inside them uses."""

from __future__ import annotations

from dataclasses import replace

import pytest

from dstrail.context import Dstrail
from dstrail.domain.ids import LOCAL_DATA_PLANE_ID
from dstrail.domain.projects import Project, Run, RunType
from dstrail.domain.users import OPERATOR
from dstrail.errors import Conflict, Forbidden, InvalidInput, NotFound
from dstrail.services import runs as run_service
from tests.services.support import DATA_PLANE_ID, kinds, make_project, start_run, stored_run
from tests.support import Login, SettableClock


def recent_runs(dstrail: Dstrail) -> list[Run]:
    with dstrail.store.read() as tx:
        return tx.runs.recent()


def start_by_ids(
    dstrail: Dstrail, actor: Login, project: Project, user: Login | None = None
) -> run_service.StartedRun:
    with dstrail.store.write() as tx:
        return run_service.start_run_by_ids(
            tx,
            actor=actor.user,
            project_id=project.id,
            user_id=user.id if user else None,
            run_type=RunType.APP,
            data_plane_id=DATA_PLANE_ID,
            now_ms=dstrail.clock(),
            signing_key=dstrail.keys.signing_key,
        )


def stop(dstrail: Dstrail, run: Run, actor: Login | None) -> Run:
    with dstrail.store.write() as tx:
        return run_service.stop_run(
            tx, run_id=run.id, now_ms=dstrail.clock(), actor=actor.user if actor else OPERATOR
        )


def test_a_member_starts_a_run_that_is_stored_as_started(
    dstrail: Dstrail, clock: SettableClock, alice: Login, bob: Login
) -> None:
    project = make_project(dstrail, alice, collaborators=(bob,))
    started = start_by_ids(dstrail, bob, project)
    assert started.run == Run(
        id=started.run.id,
        run_type=RunType.APP,
        project_id=project.id,
        user_id=bob.id,
        data_plane_id=DATA_PLANE_ID,
        started_at_ms=clock(),
        ended_at_ms=None,
    )
    assert recent_runs(dstrail) == [started.run]
    assert kinds(dstrail) == []  # runs are not data source events


def test_a_run_needs_project_membership(dstrail: Dstrail, alice: Login, bob: Login) -> None:
    project = make_project(dstrail, alice)
    with pytest.raises(Forbidden, match="not a member"):
        start_by_ids(dstrail, bob, project)
    assert recent_runs(dstrail) == []


def test_a_non_admin_cannot_start_a_run_for_another_user(
    dstrail: Dstrail, alice: Login, bob: Login
) -> None:
    project = make_project(dstrail, alice, collaborators=(bob,))
    with pytest.raises(Forbidden, match="SysAdmin"):
        start_by_ids(dstrail, alice, project, user=bob)
    assert recent_runs(dstrail) == []


def test_an_admin_starts_a_run_for_a_member_but_not_for_a_non_member(
    dstrail: Dstrail, alice: Login, bob: Login, admin: Login
) -> None:
    project = make_project(dstrail, alice)
    assert start_by_ids(dstrail, admin, project, user=alice).run.user_id == alice.id
    with pytest.raises(Forbidden):
        start_by_ids(dstrail, admin, project, user=bob)
    assert [run.user_id for run in recent_runs(dstrail)] == [alice.id]


def test_a_run_by_names_finds_the_project_and_user(
    dstrail: Dstrail, clock: SettableClock, alice: Login
) -> None:
    project = make_project(dstrail, alice, "by-name")
    with dstrail.store.write() as tx:
        started = run_service.start_run_by_names(
            tx,
            project="by-name",
            username="alice",
            run_type=RunType.SCHEDULED,
            data_plane_id=LOCAL_DATA_PLANE_ID,
            now_ms=clock(),
            signing_key=dstrail.keys.signing_key,
        )
    assert (started.run.project_id, started.run.user_id) == (project.id, alice.id)
    assert stored_run(dstrail, started.run.id) == started.run


def test_a_data_plane_id_must_be_an_object_id(dstrail: Dstrail, alice: Login) -> None:
    project = make_project(dstrail, alice)
    with pytest.raises(InvalidInput, match="data plane"), dstrail.store.write() as tx:
        run_service.start_run_by_ids(
            tx,
            actor=alice.user,
            project_id=project.id,
            user_id=None,
            run_type=RunType.BATCH,
            data_plane_id="../plane",
            now_ms=dstrail.clock(),
            signing_key=dstrail.keys.signing_key,
        )
    assert recent_runs(dstrail) == []


def test_stopping_another_users_run_as_a_non_admin_is_forbidden(
    dstrail: Dstrail, alice: Login, bob: Login
) -> None:
    project = make_project(dstrail, alice, collaborators=(bob,))
    run = start_run(dstrail, alice, project).run
    with pytest.raises(Forbidden):
        stop(dstrail, run, bob)
    assert stored_run(dstrail, run.id) == run  # still running


def test_the_owner_an_admin_and_the_operator_may_stop_a_run(
    dstrail: Dstrail, clock: SettableClock, alice: Login, admin: Login
) -> None:
    project = make_project(dstrail, alice)
    for actor in (alice, admin, None):
        run = start_run(dstrail, alice, project).run
        ended_at = clock.advance(10)
        assert stop(dstrail, run, actor) == replace(run, ended_at_ms=ended_at)
        assert stored_run(dstrail, run.id) == replace(run, ended_at_ms=ended_at)


def test_stopping_twice_is_a_conflict_and_keeps_the_first_end(
    dstrail: Dstrail, clock: SettableClock, alice: Login
) -> None:
    run = start_run(dstrail, alice, make_project(dstrail, alice)).run
    first_end = clock.advance(10)
    stop(dstrail, run, alice)
    clock.advance(10)
    with pytest.raises(Conflict):
        stop(dstrail, run, alice)
    assert stored_run(dstrail, run.id) == replace(run, ended_at_ms=first_end)


def test_stopping_an_unknown_run_is_not_found(dstrail: Dstrail, alice: Login) -> None:
    ghost = Run(
        id="f" * 24,
        run_type=RunType.BATCH,
        project_id="e" * 24,
        user_id=alice.id,
        data_plane_id=LOCAL_DATA_PLANE_ID,
        started_at_ms=0,
        ended_at_ms=None,
    )
    with pytest.raises(NotFound):
        stop(dstrail, ghost, alice)


def test_the_token_decodes_to_the_run_and_its_user_with_the_server_key_only(
    dstrail: Dstrail, alice: Login
) -> None:
    started = start_run(dstrail, alice, make_project(dstrail, alice))
    key = dstrail.keys.signing_key
    assert run_service.decode_run_token(started.token, signing_key=key) == (
        alice.id,
        started.run.id,
    )
    assert run_service.decode_run_token(started.token, signing_key=key + "x") is None
    assert run_service.decode_run_token(started.token[:-2], signing_key=key) is None
