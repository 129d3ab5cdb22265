"""Managing data sources (``services.datasources``): each change is checked, saved and recorded
with what changed; a refused change keeps nothing and records nothing."""

from __future__ import annotations

import pytest

from dstrail.context import Dstrail
from dstrail.domain.datasources import CredentialType, DataSource, Permissions, Status
from dstrail.domain.trail import EventKind
from dstrail.errors import Conflict, Forbidden, InvalidInput, NotFound
from dstrail.services import datasources as ds_service
from tests.services.support import data_sources, kinds, last, make_project, stored, trail
from tests.support import Login, SettableClock, create_dataset, make_user


def set_permissions(
    dstrail: Dstrail, ds: DataSource, permissions: Permissions, actor: Login
) -> ds_service.PermissionsChange:
    with dstrail.store.write() as tx:
        return ds_service.set_permissions(
            tx,
            data_source_id=ds.id,
            permissions=permissions,
            actor=actor.user,
            now_ms=dstrail.clock(),
        )


def transfer(dstrail: Dstrail, ds: DataSource, new_owner: Login, actor: Login) -> DataSource:
    with dstrail.store.write() as tx:
        return ds_service.transfer_ownership(
            tx,
            data_source_id=ds.id,
            new_owner_id=new_owner.id,
            actor=actor.user,
            now_ms=dstrail.clock(),
        )


def attach(dstrail: Dstrail, ds: DataSource, project_id: str, actor: Login) -> DataSource:
    with dstrail.store.write() as tx:
        return ds_service.attach_to_project(
            tx,
            data_source_id=ds.id,
            project_id=project_id,
            actor=actor.user,
            now_ms=dstrail.clock(),
        )


def detach(dstrail: Dstrail, ds: DataSource, project_id: str, actor: Login) -> DataSource:
    with dstrail.store.write() as tx:
        return ds_service.detach_from_project(
            tx,
            data_source_id=ds.id,
            project_id=project_id,
            actor=actor.user,
            now_ms=dstrail.clock(),
        )


# -- permissions ------------------------------------------------------------------------------


def test_a_permissions_change_records_who_was_added_and_who_removed(
    dstrail: Dstrail, clock: SettableClock, alice: Login, bob: Login
) -> None:
    carol, dave = make_user(dstrail, "carol"), make_user(dstrail, "dave")
    ds = create_dataset(
        dstrail, alice, "ds", permissions=Permissions(is_everyone=False, user_ids=(bob.id, dave.id))
    )
    clock.advance(5)
    change = set_permissions(
        dstrail, ds, Permissions(is_everyone=True, user_ids=(carol.id, dave.id)), alice
    )
    assert change.changed is True
    expected = Permissions(is_everyone=True, user_ids=tuple(sorted((carol.id, dave.id))))
    assert change.data_source.permissions == expected
    assert stored(dstrail, ds.id).permissions == expected
    assert stored(dstrail, ds.id).last_updated_ms == clock()
    event = last(dstrail)
    assert event.kind == EventKind.CHANGE_OF_PERMISSIONS
    assert event.metadata == {
        "performedByUsername": "alice",
        "isEveryone": "true",
        "addedUserIds": carol.id,
        "removedUserIds": bob.id,
    }


def test_setting_the_same_permissions_again_changes_and_records_nothing(
    dstrail: Dstrail, clock: SettableClock, alice: Login, bob: Login
) -> None:
    ds = create_dataset(
        dstrail, alice, "ds", permissions=Permissions(is_everyone=False, user_ids=(bob.id,))
    )
    clock.advance(5)
    change = set_permissions(dstrail, ds, Permissions(is_everyone=False, user_ids=(bob.id,)), alice)
    assert change.changed is False
    assert change.data_source == ds
    assert stored(dstrail, ds.id) == ds  # not even last_updated moved
    assert kinds(dstrail) == [EventKind.CREATE_DATA_SOURCE]


def test_only_the_owner_or_an_admin_changes_permissions(
    dstrail: Dstrail, alice: Login, bob: Login, admin: Login
) -> None:
    ds = create_dataset(dstrail, alice, "ds", permissions=Permissions(is_everyone=True))
    with pytest.raises(Forbidden):
        set_permissions(dstrail, ds, Permissions(is_everyone=False), bob)
    assert stored(dstrail, ds.id) == ds
    assert kinds(dstrail) == [EventKind.CREATE_DATA_SOURCE]
    assert set_permissions(dstrail, ds, Permissions(is_everyone=False), admin).changed is True
    assert last(dstrail).performed_by == admin.id


def test_permissions_naming_an_unknown_user_are_invalid(dstrail: Dstrail, alice: Login) -> None:
    ds = create_dataset(dstrail, alice, "ds", permissions=Permissions(is_everyone=False))
    with pytest.raises(InvalidInput, match="unknown user ids"):
        set_permissions(dstrail, ds, Permissions(is_everyone=False, user_ids=("f" * 24,)), alice)
    assert stored(dstrail, ds.id) == ds
    assert kinds(dstrail) == [EventKind.CREATE_DATA_SOURCE]


# -- ownership --------------------------------------------------------------------------------


def test_a_transfer_records_the_previous_and_the_new_owner(
    dstrail: Dstrail, alice: Login, bob: Login
) -> None:
    ds = create_dataset(dstrail, alice, "ds")
    assert transfer(dstrail, ds, bob, alice).owner_id == bob.id
    assert stored(dstrail, ds.id).owner_id == bob.id
    event = last(dstrail)
    assert event.kind == EventKind.CHANGE_OF_OWNERSHIP
    assert event.metadata == {
        "performedByUsername": "alice",
        "previousOwnerId": alice.id,
        "previousOwnerUsername": "alice",
        "newOwnerId": bob.id,
        "newOwnerUsername": "bob",
    }


def test_a_non_owner_non_admin_cannot_transfer_and_nothing_changes(
    dstrail: Dstrail, alice: Login, bob: Login
) -> None:
    ds = create_dataset(dstrail, alice, "ds", permissions=Permissions(is_everyone=True))
    with pytest.raises(Forbidden):
        transfer(dstrail, ds, bob, bob)
    assert stored(dstrail, ds.id) == ds
    assert kinds(dstrail) == [EventKind.CREATE_DATA_SOURCE]


def test_an_admin_may_transfer_any_data_source(
    dstrail: Dstrail, alice: Login, bob: Login, admin: Login
) -> None:
    ds = create_dataset(dstrail, alice, "ds", permissions=Permissions(is_everyone=False))
    transfer(dstrail, ds, bob, admin)
    assert stored(dstrail, ds.id).owner_id == bob.id
    assert last(dstrail).performed_by == admin.id
    assert last(dstrail).metadata["previousOwnerId"] == alice.id


def test_a_transfer_to_the_current_owner_is_a_conflict(dstrail: Dstrail, alice: Login) -> None:
    ds = create_dataset(dstrail, alice, "ds")
    with pytest.raises(Conflict):
        transfer(dstrail, ds, alice, alice)
    assert stored(dstrail, ds.id) == ds
    assert kinds(dstrail) == [EventKind.CREATE_DATA_SOURCE]


# -- projects ---------------------------------------------------------------------------------


def test_a_member_attaches_and_detaches_and_the_events_name_the_project(
    dstrail: Dstrail, alice: Login, bob: Login
) -> None:
    project = make_project(dstrail, alice, "analysis", collaborators=(bob,))
    ds = create_dataset(dstrail, alice, "ds")
    assert attach(dstrail, ds, project.id, bob).project_ids == (project.id,)
    assert stored(dstrail, ds.id).project_ids == (project.id,)
    assert detach(dstrail, ds, project.id, bob).project_ids == ()
    assert stored(dstrail, ds.id).project_ids == ()
    attached, detached = trail(dstrail)[1:]
    assert attached.kind == EventKind.ASSOCIATED_TO_PROJECT
    assert detached.kind == EventKind.DISSOCIATED_FROM_PROJECT
    for event in (attached, detached):
        assert event.performed_by == bob.id
        assert event.metadata["projectId"] == project.id
        assert event.metadata["projectName"] == "analysis"


def test_only_a_member_or_an_admin_attaches(
    dstrail: Dstrail, alice: Login, bob: Login, admin: Login
) -> None:
    project = make_project(dstrail, alice)
    ds = create_dataset(dstrail, bob, "bobs", permissions=Permissions(is_everyone=True))
    with pytest.raises(Forbidden):
        attach(dstrail, ds, project.id, bob)  # owns the data source, not in the project
    assert stored(dstrail, ds.id).project_ids == ()
    assert kinds(dstrail) == [EventKind.CREATE_DATA_SOURCE]
    attach(dstrail, ds, project.id, admin)
    assert stored(dstrail, ds.id).project_ids == (project.id,)
    assert last(dstrail).performed_by == admin.id


def test_attaching_twice_is_a_conflict(dstrail: Dstrail, alice: Login) -> None:
    project = make_project(dstrail, alice)
    ds = create_dataset(dstrail, alice, "ds")
    attach(dstrail, ds, project.id, alice)
    with pytest.raises(Conflict):
        attach(dstrail, ds, project.id, alice)
    assert stored(dstrail, ds.id).project_ids == (project.id,)
    assert kinds(dstrail) == [EventKind.CREATE_DATA_SOURCE, EventKind.ASSOCIATED_TO_PROJECT]


def test_detaching_a_data_source_not_in_the_project_is_not_found(
    dstrail: Dstrail, alice: Login
) -> None:
    project = make_project(dstrail, alice)
    ds = create_dataset(dstrail, alice, "ds")
    with pytest.raises(NotFound, match="is not in project"):
        detach(dstrail, ds, project.id, alice)
    assert kinds(dstrail) == [EventKind.CREATE_DATA_SOURCE]


# -- deletion ---------------------------------------------------------------------------------


def test_delete_is_soft_and_frees_the_name(
    dstrail: Dstrail, clock: SettableClock, alice: Login, admin: Login
) -> None:
    ds = create_dataset(dstrail, alice, "reused")
    clock.advance(5)
    with dstrail.store.write() as tx:
        ds_service.delete_data_source(tx, data_source_id=ds.id, actor=alice.user, now_ms=clock())
    kept = stored(dstrail, ds.id)  # still there, marked deleted
    assert kept.status is Status.DELETED
    assert (kept.name, kept.owner_id, kept.last_updated_ms) == ("reused", alice.id, clock())
    assert last(dstrail).kind == EventKind.DELETE_DATA_SOURCE
    with dstrail.store.read() as tx:
        assert ds_service.list_visible(tx, actor=alice.user) == []
        assert ds_service.list_visible(tx, actor=admin.user, include_deleted=True) == [kept]
        assert tx.data_sources.active_by_name("reused") is None
    again = create_dataset(dstrail, alice, "reused")
    assert again.id != ds.id
    assert {d.id: d.status for d in data_sources(dstrail)} == {
        ds.id: Status.DELETED,
        again.id: Status.ACTIVE,
    }


def test_an_active_name_cannot_be_taken_twice(dstrail: Dstrail, alice: Login, bob: Login) -> None:
    create_dataset(dstrail, alice, "taken")
    with pytest.raises(Conflict):
        create_dataset(dstrail, bob, "taken")
    assert [d.owner_id for d in data_sources(dstrail)] == [alice.id]
    assert kinds(dstrail) == [EventKind.CREATE_DATA_SOURCE]


# -- validation -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "changes",
    [
        {"name": "../escape"},
        {"name": "-starts-with-dash"},
        {"name": ""},
        {"data_source_type": "FloppyDiskConfig"},
        {"config": {"password": "in-the-config"}},
    ],
    ids=["dotdot-name", "dash-name", "empty-name", "unknown-type", "secret-in-config"],
)
def test_an_invalid_data_source_is_refused_and_records_nothing(
    dstrail: Dstrail, clock: SettableClock, alice: Login, changes: dict[str, object]
) -> None:
    values: dict[str, object] = {
        "name": "fine",
        "data_source_type": "S3Config",
        "auth_type": "AWSIAMBasic",
        "credential_type": CredentialType.SHARED,
        "config": {"bucket": "b"},
        "permissions": Permissions(is_everyone=False),
        **changes,
    }
    with pytest.raises(InvalidInput), dstrail.store.write() as tx:
        ds_service.create_data_source(
            tx,
            dstrail.vault,
            spec=ds_service.DataSourceCreate(**values),  # type: ignore[arg-type]
            actor=alice.user,
            now_ms=clock(),
        )
    assert data_sources(dstrail) == []
    assert kinds(dstrail) == []


def test_a_data_source_not_shared_with_a_user_is_not_found_for_them(
    dstrail: Dstrail, alice: Login, bob: Login, admin: Login
) -> None:
    ds = create_dataset(dstrail, alice, "private", permissions=Permissions(is_everyone=False))
    with dstrail.store.read() as tx:
        with pytest.raises(NotFound):
            ds_service.get_visible(tx, data_source_id=ds.id, actor=bob.user)
        assert ds_service.list_visible(tx, actor=bob.user) == []
        assert ds_service.get_visible(tx, data_source_id=ds.id, actor=admin.user) == ds
        assert ds_service.list_visible(tx, actor=alice.user) == [ds]
