"""The data path's rules (``services.access``): who may use a data source, which run an access
belongs to, and what the trail keeps of it: called as the entry points call it, without HTTP."""

from __future__ import annotations

import functools
import hashlib
import re

import pytest

from dstrail.context import Dstrail
from dstrail.domain.datasources import CredentialType, DataSource, Permissions
from dstrail.domain.projects import RunType
from dstrail.domain.trail import EventKind
from dstrail.errors import Forbidden, InvalidInput, NotAuthenticated
from dstrail.services import access
from dstrail.services import datasources as ds_service
from dstrail.services import runs as run_service
from dstrail.services.access import (
    AccessClaim,
    AccessOperation,
    AccessRefused,
    AccessRequest,
    Grant,
)
from dstrail.services.auth import CallerCredentials
from dstrail.services.lookup import look_up_by_name
from tests.services.support import (
    DATA_PLANE_ID,
    kinds,
    last,
    make_project,
    start_run,
    trail,
)
from tests.support import Login, SettableClock, create_dataset, make_user

RUN_KEYS = ("runType", "projectId", "runId", "dataPlaneId")
READ_KEY = functools.partial(access.object_key_operation, "a/b.csv", is_read_write=False)


def _served(grant: Grant) -> Grant:
    return grant


def use(
    dstrail: Dstrail,
    data_source: DataSource,
    *,
    api_key: str | None = None,
    token: str | None = None,
    run_id: str | None = None,
    operation: functools.partial[AccessOperation] = READ_KEY,
    config_overwrites: object = None,
) -> Grant:
    """One call of the data path, as the HTTP and Flight entry points make it."""
    request = AccessRequest(
        credentials=CallerCredentials(api_key=api_key, bearer=token),
        claim=AccessClaim(run_id=run_id, client_source="Python"),
        data_source_id=data_source.id,
        operation=operation,
        config_overwrites=config_overwrites,
    )
    return access.serve_access(
        dstrail.store,
        dstrail.vault,
        request,
        signing_key=dstrail.keys.signing_key,
        clock=dstrail.clock,
        serve=_served,
    )


@pytest.fixture
def ds(dstrail: Dstrail, alice: Login, bob: Login) -> DataSource:
    """Alice's data source, shared with Bob only."""
    return create_dataset(
        dstrail,
        alice,
        "alices-files",
        permissions=Permissions(is_everyone=False, user_ids=(bob.id,)),
    )


# -- who may use it ---------------------------------------------------------------------------


def test_the_owner_and_a_listed_user_may_use_it_and_each_use_is_recorded(
    dstrail: Dstrail, alice: Login, bob: Login, ds: DataSource
) -> None:
    for login in (alice, bob):
        grant = use(dstrail, ds, api_key=login.api_key)
        assert grant.user == login.user
        assert grant.data_source.id == ds.id
        assert grant.run is None
        assert grant.credentials is None  # a dataset: no credentials involved
    events = trail(dstrail)
    assert [e.kind for e in events] == [
        EventKind.CREATE_DATA_SOURCE,
        EventKind.ACCESS_DATA_SOURCE,
        EventKind.ACCESS_DATA_SOURCE,
    ]
    assert [e.performed_by for e in events[1:]] == [alice.id, bob.id]
    assert events[2].metadata == {
        "performedByUsername": "bob",
        "clientSource": "Python",
        "operation": "objectKey",
        "objectKey": "a/b.csv",
        "isReadWrite": "false",
    }


def test_a_data_source_for_everyone_may_be_used_by_anyone(
    dstrail: Dstrail, alice: Login, bob: Login
) -> None:
    public = create_dataset(dstrail, alice, "public", permissions=Permissions(is_everyone=True))
    assert use(dstrail, public, api_key=bob.api_key).user == bob.user
    assert last(dstrail).kind == EventKind.ACCESS_DATA_SOURCE
    assert last(dstrail).performed_by == bob.id


def test_anyone_else_is_refused_with_not_permitted_and_the_refusal_is_recorded(
    dstrail: Dstrail, admin: Login, ds: DataSource
) -> None:
    carol = make_user(dstrail, "carol")
    for outsider in (carol, admin):  # a SysAdmin manages it, but may not read its data
        with pytest.raises(AccessRefused) as refused:
            use(dstrail, ds, api_key=outsider.api_key)
        assert isinstance(refused.value, Forbidden)
    events = trail(dstrail)
    assert [e.kind for e in events] == [
        EventKind.CREATE_DATA_SOURCE,
        EventKind.ACCESS_REFUSED,
        EventKind.ACCESS_REFUSED,
    ]
    assert [e.performed_by for e in events[1:]] == [carol.id, admin.id]
    assert events[1].data_source_id == ds.id
    assert events[1].metadata["reason"] == "notPermitted"
    assert events[1].metadata["operation"] == "objectKey"


def test_a_wrong_kind_of_operation_from_an_outsider_is_refused_not_described(
    dstrail: Dstrail, ds: DataSource
) -> None:
    """Refused (and recorded) before the type is checked: an outsider who sends a query to an
    object store learns nothing of its type, and the attempt is in the trail."""
    carol = make_user(dstrail, "carol")
    query = functools.partial(access.query_operation, "SELECT 1")
    with pytest.raises(AccessRefused) as refused:
        use(dstrail, ds, api_key=carol.api_key, operation=query)
    assert ds.data_source_type not in refused.value.message
    assert [e.kind for e in trail(dstrail)][-1] == EventKind.ACCESS_REFUSED
    assert trail(dstrail)[-1].metadata["operation"] == "query"


# -- which run it belongs to ------------------------------------------------------------------


def test_an_access_in_a_running_run_records_the_run_dstrail_knows(
    dstrail: Dstrail, alice: Login, ds: DataSource
) -> None:
    project = make_project(dstrail, alice)
    started = start_run(dstrail, alice, project, RunType.BATCH)
    grant = use(dstrail, ds, api_key=alice.api_key, run_id=started.run.id)
    assert grant.run == started.run
    metadata = last(dstrail).metadata
    assert {key: metadata[key] for key in RUN_KEYS} == {
        "runType": "Batch",
        "projectId": project.id,
        "runId": started.run.id,
        "dataPlaneId": DATA_PLANE_ID,
    }


def test_a_run_token_alone_attributes_the_access_to_its_run(
    dstrail: Dstrail, alice: Login, ds: DataSource
) -> None:
    project = make_project(dstrail, alice)
    started = start_run(dstrail, alice, project)
    grant = use(dstrail, ds, token=started.token)
    assert grant.user == alice.user
    assert grant.run == started.run
    event = last(dstrail)
    assert event.kind == EventKind.ACCESS_DATA_SOURCE
    assert event.performed_by == alice.id
    assert event.metadata["runId"] == started.run.id
    assert event.metadata["projectId"] == project.id


def test_access_from_outside_any_run_records_no_run_keys(
    dstrail: Dstrail, alice: Login, ds: DataSource
) -> None:
    start_run(dstrail, alice, make_project(dstrail, alice))  # running, but not claimed
    use(dstrail, ds, api_key=alice.api_key)
    event = last(dstrail)
    assert event.kind == EventKind.ACCESS_DATA_SOURCE
    assert not set(RUN_KEYS) & set(event.metadata)


def refused_reason(
    dstrail: Dstrail,
    ds: DataSource,
    *,
    api_key: str | None = None,
    token: str | None = None,
    run_id: str | None = None,
) -> str:
    """The reason recorded for a refused call; checks nothing of it was kept but the refusal."""
    before = kinds(dstrail)
    with pytest.raises(AccessRefused):
        use(dstrail, ds, api_key=api_key, token=token, run_id=run_id)
    assert kinds(dstrail) == [*before, EventKind.ACCESS_REFUSED]
    refusal = last(dstrail).metadata
    assert not set(RUN_KEYS) & set(refusal)  # a refused run is never the event's run
    return refusal["reason"]


def test_a_run_of_another_user_is_refused(
    dstrail: Dstrail, alice: Login, bob: Login, ds: DataSource
) -> None:
    bobs_run = start_run(dstrail, bob, make_project(dstrail, bob)).run
    reason = refused_reason(dstrail, ds, api_key=alice.api_key, run_id=bobs_run.id)
    assert reason == "runOfAnotherUser"
    assert last(dstrail).metadata["claimedRunId"] == bobs_run.id
    assert last(dstrail).performed_by == alice.id


def test_an_unknown_run_is_refused(dstrail: Dstrail, alice: Login, ds: DataSource) -> None:
    reason = refused_reason(dstrail, ds, api_key=alice.api_key, run_id="f" * 24)
    assert reason == "unknownRun"


def test_an_ended_run_is_refused_by_id_and_by_its_token(
    dstrail: Dstrail, clock: SettableClock, alice: Login, ds: DataSource
) -> None:
    started = start_run(dstrail, alice, make_project(dstrail, alice))
    with dstrail.store.write() as tx:
        run_service.stop_run(tx, run_id=started.run.id, now_ms=clock.advance(1), actor=alice.user)
    assert refused_reason(dstrail, ds, api_key=alice.api_key, run_id=started.run.id) == "runEnded"
    assert refused_reason(dstrail, ds, token=started.token) == "runEnded"


def test_a_run_token_claiming_another_run_id_is_refused(
    dstrail: Dstrail, alice: Login, ds: DataSource
) -> None:
    project = make_project(dstrail, alice)
    first, second = start_run(dstrail, alice, project), start_run(dstrail, alice, project)
    reason = refused_reason(dstrail, ds, token=first.token, run_id=second.run.id)
    assert reason == "runTokenMismatch"


# -- what the trail keeps ---------------------------------------------------------------------


def test_a_query_records_the_sha256_of_its_sql_never_the_sql(
    dstrail: Dstrail, clock: SettableClock, alice: Login
) -> None:
    with dstrail.store.write() as tx:
        warehouse = ds_service.create_data_source(
            tx,
            dstrail.vault,
            spec=ds_service.DataSourceCreate(
                name="warehouse",
                data_source_type="PostgreSQLConfig",
                auth_type="Basic",
                credential_type=CredentialType.SHARED,
                config={"host": "db.example.com", "port": "5432", "database": "w"},
                permissions=Permissions(is_everyone=False),
                credentials={"username": "svc", "password": "pw-123"},
            ),
            actor=alice.user,
            now_ms=clock(),
        )
    sql = "SELECT secret_column FROM salaries WHERE name = 'carol'"
    grant = use(
        dstrail,
        warehouse,
        api_key=alice.api_key,
        operation=functools.partial(access.query_operation, sql),
    )
    assert grant.credentials == {"username": "svc", "password": "pw-123"}
    event = last(dstrail)
    assert event.kind == EventKind.ACCESS_DATA_SOURCE
    assert event.metadata["operation"] == "query"
    assert event.metadata["queryDigest"] == hashlib.sha256(sql.encode()).hexdigest()
    assert "salaries" not in event.raw
    assert "pw-123" not in event.raw


def test_a_listing_records_its_prefix(dstrail: Dstrail, bob: Login, ds: DataSource) -> None:
    use(
        dstrail,
        ds,
        api_key=bob.api_key,
        operation=functools.partial(access.listing_operation, "2024/"),
    )
    metadata = last(dstrail).metadata
    assert (metadata["operation"], metadata["prefix"]) == ("listObjects", "2024/")


# -- what is refused before any decision ------------------------------------------------------


def test_an_object_key_escaping_its_root_is_invalid_and_records_nothing(
    dstrail: Dstrail, alice: Login, ds: DataSource
) -> None:
    for key in ("../x", "a/../../x", "/etc/passwd", "a//b"):
        with pytest.raises(InvalidInput):
            use(
                dstrail,
                ds,
                api_key=alice.api_key,
                operation=functools.partial(access.object_key_operation, key, is_read_write=False),
            )
    assert kinds(dstrail) == [EventKind.CREATE_DATA_SOURCE]


def test_config_overwrites_domino_does_not_accept_for_the_type_are_invalid_and_record_nothing(
    dstrail: Dstrail, alice: Login, ds: DataSource
) -> None:
    for overwrites, message in (
        ({"bucket": "attacker-bucket"}, "'bucket' cannot be overwritten on a DatasetConfig; "
         "accepted: snapshotID, subfolder"),
        ({"host": "evil.example.com"}, "'host' cannot be overwritten"),
        ({"subfolder": 3}, "'subfolder' must be a string"),
        ({"subfolder": "../other"}, "configOverwrites.subfolder"),
        (["subfolder"], "must be an object"),
    ):  # fmt: skip
        with pytest.raises(InvalidInput, match=re.escape(message)):
            use(dstrail, ds, api_key=alice.api_key, config_overwrites=overwrites)
    assert kinds(dstrail) == [EventKind.CREATE_DATA_SOURCE]


def test_accepted_config_overwrites_are_used_and_recorded_with_their_values(
    dstrail: Dstrail, alice: Login, ds: DataSource
) -> None:
    grant = use(
        dstrail, ds, api_key=alice.api_key,
        config_overwrites={"subfolder": "reports", "snapshotID": "s-1"},
    )  # fmt: skip
    assert grant.config == {"subfolder": "reports", "snapshotID": "s-1"}
    event = last(dstrail)
    assert event.kind == EventKind.ACCESS_DATA_SOURCE
    assert event.metadata["configOverwrites"] == '{"snapshotID":"s-1","subfolder":"reports"}'
    use(dstrail, ds, api_key=alice.api_key, config_overwrites={})
    assert "configOverwrites" not in last(dstrail).metadata


def test_an_owner_who_turns_overwrites_off_has_them_refused_and_each_step_recorded(
    dstrail: Dstrail, alice: Login, bob: Login, ds: DataSource
) -> None:
    def allow(login: Login, allowed: bool) -> DataSource:
        with dstrail.change() as tx:
            return ds_service.update_data_source(
                tx, dstrail.vault, data_source_id=ds.id, actor=login.user, now_ms=dstrail.clock(),
                change=ds_service.DataSourceUpdate(config_overwrites_allowed=allowed),
            )  # fmt: skip

    with pytest.raises(Forbidden):
        allow(bob, False)  # a user of it, not its owner
    assert last(dstrail).kind == EventKind.CHANGE_REFUSED
    assert allow(alice, False).config_overwrites_allowed is False
    changed = last(dstrail)
    assert (changed.kind, changed.performed_by) == (EventKind.UPDATE_DATA_SOURCE, alice.id)
    assert changed.metadata["changedFields"] == "configOverwritesAllowed"
    assert changed.metadata["configOverwritesAllowed"] == "false"
    recorded = len(trail(dstrail))
    allow(alice, False)  # the same again: nothing changes, nothing is recorded
    assert len(trail(dstrail)) == recorded

    with pytest.raises(AccessRefused, match="does not accept configOverwrites"):
        use(dstrail, ds, api_key=bob.api_key, config_overwrites={"subfolder": "x"})
    refused = last(dstrail)
    assert (refused.kind, refused.performed_by) == (EventKind.ACCESS_REFUSED, bob.id)
    assert refused.metadata["reason"] == "configOverwritesForbidden"
    assert refused.metadata["configOverwrites"] == '{"subfolder":"x"}'
    assert use(dstrail, ds, api_key=bob.api_key).user == bob.user  # without them: served

    assert allow(alice, True).config_overwrites_allowed is True
    assert last(dstrail).metadata["configOverwritesAllowed"] == "true"
    assert use(dstrail, ds, api_key=bob.api_key, config_overwrites={"subfolder": "x"}).config


def test_a_wrong_api_key_is_not_authenticated_and_records_nothing(
    dstrail: Dstrail, alice: Login, ds: DataSource
) -> None:
    for api_key, token in ((alice.api_key + "x", None), (None, "not-a-token"), (None, None)):
        with pytest.raises(NotAuthenticated):
            use(dstrail, ds, api_key=api_key, token=token)
    assert kinds(dstrail) == [EventKind.CREATE_DATA_SOURCE]


# -- the lookup by name -----------------------------------------------------------------------


def test_a_lookup_by_name_is_recorded_with_its_run_and_refused_to_others(
    dstrail: Dstrail, alice: Login, admin: Login, ds: DataSource
) -> None:
    started = start_run(dstrail, alice, make_project(dstrail, alice))

    def look_up(login: Login, run_id: str | None) -> DataSource:
        found = look_up_by_name(
            dstrail.store,
            credentials=CallerCredentials(api_key=login.api_key),
            name=ds.name,
            claim=AccessClaim(run_id=run_id, client_source="R"),
            signing_key=dstrail.keys.signing_key,
            clock=dstrail.clock,
        )
        assert found.users[alice.id] == alice.user  # the owner, named in the document
        return found.data_source

    assert look_up(alice, started.run.id).id == ds.id
    event = last(dstrail)
    assert (event.kind, event.metadata["operation"]) == (
        EventKind.ACCESS_DATA_SOURCE,
        "getDataSource",
    )
    assert (event.metadata["runId"], event.metadata["clientSource"]) == (started.run.id, "R")
    with pytest.raises(AccessRefused):
        look_up(admin, None)
    refusal = last(dstrail)
    assert (refusal.kind, refusal.performed_by) == (EventKind.ACCESS_REFUSED, admin.id)
    assert refusal.metadata["reason"] == "notPermitted"
