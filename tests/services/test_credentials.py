"""Credentials of data sources (``services.credentials``): whose are stored where, who may
store them, and that the trail names their fields, never their values."""

from __future__ import annotations

import pytest

from dstrail.context import Dstrail
from dstrail.domain.datasources import CredentialType, DataSource, Permissions
from dstrail.domain.trail import EventKind
from dstrail.domain.users import User
from dstrail.errors import Forbidden, InvalidInput
from dstrail.services import datasources as ds_service
from dstrail.services.credentials import (
    StoredCredentials,
    credentials_for,
    set_credentials,
    set_credentials_by_name,
)
from dstrail.store import SHARED_CREDENTIALS_USER
from tests.services.support import kinds, last, trail
from tests.support import Login, SettableClock

SECRET = "hunter2-never-recorded"


def make_source(
    dstrail: Dstrail,
    owner: Login,
    name: str,
    credential_type: CredentialType,
    permissions: Permissions | None = None,
) -> DataSource:
    with dstrail.store.write() as tx:
        return ds_service.create_data_source(
            tx,
            dstrail.vault,
            spec=ds_service.DataSourceCreate(
                name=name,
                data_source_type="PostgreSQLConfig",
                auth_type="Basic",
                credential_type=credential_type,
                config={"host": "db.example.com", "database": "d"},
                permissions=permissions or Permissions(is_everyone=True),
            ),
            actor=owner.user,
            now_ms=dstrail.clock(),
        )


def store(
    dstrail: Dstrail,
    ds: DataSource,
    actor: Login,
    values: dict[str, str],
    holder: Login | None = None,
) -> StoredCredentials:
    with dstrail.store.write() as tx:
        return set_credentials(
            tx,
            dstrail.vault,
            data_source_id=ds.id,
            actor=actor.user,
            holder_id=holder.id if holder else None,
            credentials=values,
            now_ms=dstrail.clock(),
            via="api",
        )


def used_by(dstrail: Dstrail, ds: DataSource, user: User) -> dict[str, str] | None:
    """The credentials the data path would use for ``user``."""
    with dstrail.store.read() as tx:
        return credentials_for(tx, dstrail.vault, data_source=ds, user=user)


def holders(dstrail: Dstrail, ds: DataSource) -> list[str]:
    with dstrail.store.read() as tx:
        return sorted(tx.data_sources.credential_holders(ds.id))


@pytest.fixture
def individual(dstrail: Dstrail, alice: Login) -> DataSource:
    """Alice's data source for everyone, each user with their own account."""
    return make_source(dstrail, alice, "individual", CredentialType.INDIVIDUAL)


@pytest.fixture
def shared(dstrail: Dstrail, alice: Login) -> DataSource:
    """Alice's data source for everyone, one service account for all."""
    return make_source(dstrail, alice, "shared", CredentialType.SHARED)


# -- Individual -------------------------------------------------------------------------------


def test_individual_credentials_are_stored_per_user(
    dstrail: Dstrail, alice: Login, bob: Login, individual: DataSource
) -> None:
    result = store(dstrail, individual, bob, {"username": "bob-db", "password": SECRET})
    assert (result.holder_id, result.fields) == (bob.id, ("password", "username"))
    assert used_by(dstrail, individual, bob.user) == {"username": "bob-db", "password": SECRET}
    assert used_by(dstrail, individual, alice.user) is None  # the owner's are her own
    assert holders(dstrail, individual) == [bob.id]
    event = last(dstrail)
    assert (event.kind, event.performed_by) == (EventKind.UPDATE_CREDENTIALS, bob.id)
    assert event.metadata == {
        "performedByUsername": "bob",
        "credentialType": "Individual",
        "via": "api",
        "credentialUserId": bob.id,
        "fields": "password,username",
    }


def test_a_non_admin_storing_someone_elses_individual_credentials_is_forbidden(
    dstrail: Dstrail, alice: Login, bob: Login, individual: DataSource
) -> None:
    with pytest.raises(Forbidden):
        store(dstrail, individual, alice, {"password": SECRET}, holder=bob)  # even the owner
    assert holders(dstrail, individual) == []
    assert kinds(dstrail) == [EventKind.CREATE_DATA_SOURCE]


def test_an_admin_stores_a_users_individual_credentials(
    dstrail: Dstrail, bob: Login, admin: Login, individual: DataSource
) -> None:
    result = store(dstrail, individual, admin, {"password": SECRET}, holder=bob)
    assert result.holder_id == bob.id
    assert used_by(dstrail, individual, bob.user) == {"password": SECRET}
    assert used_by(dstrail, individual, admin.user) is None
    event = last(dstrail)
    assert (event.performed_by, event.metadata["credentialUserId"]) == (admin.id, bob.id)


def test_individual_credentials_only_for_a_user_who_may_use_the_data_source(
    dstrail: Dstrail, alice: Login, bob: Login, admin: Login
) -> None:
    private = make_source(
        dstrail, alice, "private", CredentialType.INDIVIDUAL, Permissions(is_everyone=False)
    )
    with pytest.raises(Forbidden, match="may not use"):
        store(dstrail, private, admin, {"password": SECRET}, holder=bob)
    assert holders(dstrail, private) == []
    assert kinds(dstrail) == [EventKind.CREATE_DATA_SOURCE]


# -- Shared -----------------------------------------------------------------------------------


def test_shared_credentials_are_set_by_the_owner_or_an_admin_only(
    dstrail: Dstrail, alice: Login, bob: Login, admin: Login, shared: DataSource
) -> None:
    with pytest.raises(Forbidden):
        store(dstrail, shared, bob, {"password": "bobs-guess"})  # may use it, not manage it
    assert holders(dstrail, shared) == []
    assert kinds(dstrail) == [EventKind.CREATE_DATA_SOURCE]
    for actor, password in ((alice, "first"), (admin, SECRET)):
        result = store(dstrail, shared, actor, {"username": "svc", "password": password})
        assert result.holder_id is None
        assert last(dstrail).performed_by == actor.id
    assert holders(dstrail, shared) == [SHARED_CREDENTIALS_USER]  # one account, replaced
    for user in (alice.user, bob.user):
        assert used_by(dstrail, shared, user) == {"username": "svc", "password": SECRET}
    assert "credentialUserId" not in last(dstrail).metadata


def test_shared_credentials_belong_to_no_user(
    dstrail: Dstrail, alice: Login, bob: Login, shared: DataSource
) -> None:
    with pytest.raises(InvalidInput, match="leave userId out"):
        store(dstrail, shared, alice, {"password": SECRET}, holder=bob)
    assert holders(dstrail, shared) == []


# -- what is recorded -------------------------------------------------------------------------


def test_no_event_ever_holds_a_credential_value(
    dstrail: Dstrail, clock: SettableClock, alice: Login, bob: Login, individual: DataSource
) -> None:
    with dstrail.store.write() as tx:
        ds_service.create_data_source(
            tx,
            dstrail.vault,
            spec=ds_service.DataSourceCreate(
                name="created-with-secret",
                data_source_type="S3Config",
                auth_type="AWSIAMBasic",
                credential_type=CredentialType.SHARED,
                config={"bucket": "b"},
                permissions=Permissions(is_everyone=False),
                credentials={"accessKeyID": "AKIA" + SECRET, "secretAccessKey": SECRET},
            ),
            actor=alice.user,
            now_ms=clock(),
        )
    store(dstrail, individual, bob, {"username": "u", "password": SECRET})
    with dstrail.store.write() as tx:
        set_credentials_by_name(
            tx,
            dstrail.vault,
            name="individual",
            username="alice",
            credentials={"token": SECRET},
            now_ms=clock(),
        )
    events = trail(dstrail)
    assert [e.kind for e in events].count(EventKind.UPDATE_CREDENTIALS) == 2
    assert events[-1].metadata["fields"] == "token"
    assert events[-1].metadata["via"] == "cli"
    for event in events:
        assert SECRET not in event.raw


def test_invalid_credentials_are_refused_without_echoing_them(
    dstrail: Dstrail, bob: Login, individual: DataSource
) -> None:
    with pytest.raises(InvalidInput) as invalid, dstrail.store.write() as tx:
        set_credentials(
            tx,
            dstrail.vault,
            data_source_id=individual.id,
            actor=bob.user,
            holder_id=None,
            credentials={"password": 12345, "note": SECRET},
            now_ms=dstrail.clock(),
            via="api",
        )
    assert SECRET not in str(invalid.value)
    assert holders(dstrail, individual) == []
    assert kinds(dstrail) == [EventKind.CREATE_DATA_SOURCE]


def test_by_name_individual_credentials_need_a_username(
    dstrail: Dstrail, clock: SettableClock, individual: DataSource
) -> None:
    with pytest.raises(InvalidInput, match="--user"), dstrail.store.write() as tx:
        set_credentials_by_name(
            tx, dstrail.vault, name="individual", username=None, credentials={"p": SECRET},
            now_ms=clock(),
        )  # fmt: skip
    assert holders(dstrail, individual) == []
