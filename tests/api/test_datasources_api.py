"""SPEC 5: managing data sources, who may do what, one event a change, and 4xx change nothing."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient

from dstrail.context import Dstrail
from dstrail.domain.audit_filter import AuditFilter
from dstrail.domain.datasources import DataSource
from dstrail.domain.ids import new_object_id
from dstrail.domain.projects import Project
from dstrail.domain.trail import EVENT_KIND, EventKind
from dstrail.services import projects as project_service
from dstrail.store import SHARED_CREDENTIALS_USER
from tests.support import Login, SettableClock, audit_count, data_source_body

V1 = "/api/datasource/v1/datasources"
AUDIT = "/api/datasource/v1/audit"
SECRET = "s3cr3t-value"  # the secretAccessKey of data_source_body
ALL_KINDS = [
    "CreateDataSource",
    "DeleteDataSource",
    "DataSourceChangeOfPermissions",
    "DataSourceChangeOfOwnership",
    "AccessDataSource",
    "DataSourceAssociatedToProject",
    "DataSourceDissociatedFromProject",
    "UpdateDataSource",
    "DataSourceCredentialsUpdated",
]


# -- helpers -----------------------------------------------------------------------------------


def create(client: TestClient, login: Login, name: str, **overrides: Any) -> dict[str, Any]:
    response = client.post(V1, json=data_source_body(name, **overrides), headers=login.headers)
    assert response.status_code == 201, response.text
    assert SECRET not in response.text
    created: dict[str, Any] = response.json()
    return created


def events(client: TestClient, admin: Login) -> list[dict[str, Any]]:
    """Every event of every kind in the default window, newest first."""
    response = client.get(
        AUDIT, params=[("eventKinds", k) for k in ALL_KINDS], headers=admin.headers
    )
    assert response.status_code == 200, response.text
    assert SECRET not in response.text
    found: list[dict[str, Any]] = response.json()
    return found


def project(dstrail: Dstrail, name: str, owner: Login, *collaborators: Login) -> Project:
    with dstrail.store.write() as tx:
        return project_service.create_project(
            tx,
            actor=owner.user,
            name=name,
            owner=owner.user,
            collaborators=[c.user for c in collaborators],
            now_ms=dstrail.clock(),
        )


@dataclass(frozen=True)
class Snapshot:
    """Everything a data source change could touch."""

    audit_size: int
    data_sources: list[DataSource]
    credentials: list[tuple[str, str, str | None]]


def snapshot(dstrail: Dstrail) -> Snapshot:
    with dstrail.store.read() as tx:
        data_sources = tx.data_sources.all(include_deleted=True)
        credentials = [
            (ds.id, holder, tx.data_sources.credentials(ds.id, holder))
            for ds in data_sources
            for holder in tx.data_sources.credential_holders(ds.id)
        ]
        return Snapshot(tx.audit.size(), data_sources, credentials)


def assert_only_refusals_recorded(dstrail: Dstrail, before: Snapshot, refusals: int) -> None:
    """Nothing changed but ``refusals`` new ``DataSourceChangeRefused`` events (each 403 on a
    data source the caller can see records one; every other 4xx records nothing)."""
    after = snapshot(dstrail)
    assert (after.data_sources, after.credentials) == (before.data_sources, before.credentials)
    assert after.audit_size == before.audit_size + refusals
    with dstrail.store.read() as tx:
        newest = tx.audit.page(
            AuditFilter(start_ms=0, end_ms=dstrail.clock(), event_kinds=tuple(EventKind)),
            limit=max(refusals, 1),
        )
    kinds = [row[EVENT_KIND] for row in newest][:refusals]
    assert kinds == [EventKind.CHANGE_REFUSED.value] * refusals


def assert_public_error(response: Any, status: int) -> str:
    """``/api/...`` errors: ``{"requestId", "errors"}``; returns the message."""
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"requestId", "errors"}, body
    assert uuid.UUID(body["requestId"])
    assert len(body["errors"]) >= 1
    message: str = "; ".join(body["errors"])
    return message


def assert_v4_error(response: Any, status: int) -> str:
    """``/v4/...`` errors, as Domino's: ``{"success": false, "message"}``; without a valid
    credential 403 with ``debugMessage`` and ``reason`` too."""
    assert response.status_code == status, response.text
    body = response.json()
    assert body["success"] is False, body
    anonymous = "debugMessage" in body
    expected = (
        {"success", "message", "debugMessage", "reason"} if anonymous else {"success", "message"}
    )
    assert set(body) == expected, body
    assert not anonymous or status == 403
    message: str = body["message"]
    assert message
    return message


# -- create, list, get -------------------------------------------------------------------------


def test_create_returns_the_data_source_and_records_one_event(
    client: TestClient,
    dstrail: Dstrail,
    clock: SettableClock,
    admin: Login,
    alice: Login,
    bob: Login,
) -> None:
    created = create(
        client,
        alice,
        "s3-ds",
        description="raw files",
        permissions={"isEveryone": False, "userIds": [bob.id]},
    )
    assert created["name"] == "s3-ds"
    assert created["displayName"] == "s3-ds"
    assert created["description"] == "raw files"
    assert created["dataSourceType"] == "S3Config"
    assert created["authType"] == "AWSIAMBasic"
    assert created["credentialType"] == "Shared"
    assert created["config"] == {"bucket": "b", "region": "us-east-1"}
    assert created["ownerId"] == alice.id
    assert created["ownerInfo"] == {
        "ownerName": "alice",
        "ownerEmail": "alice@example.com",
        "isOwnerAdmin": False,
    }
    assert created["permissions"] == {"isEveryone": False, "userIds": [bob.id]}
    assert created["projectIds"] == []
    assert created["status"] == "Active"
    assert created["lastUpdated"] == clock.now_ms
    assert created["lastUpdatedBy"] == alice.id
    assert "credentials" not in created
    trail = events(client, admin)
    assert len(trail) == 1
    assert trail[0]["eventKind"] == "CreateDataSource"
    assert trail[0]["dataSourceId"] == created["id"]
    assert trail[0]["metadata"] == {
        "performedByUsername": "alice",
        "credentialType": "Shared",
        "isEveryone": "false",
        "ownerId": alice.id,
        "userIds": bob.id,
        "projectIds": "",
    }
    with dstrail.store.read() as tx:
        ciphertext = tx.data_sources.credentials(created["id"], SHARED_CREDENTIALS_USER)
    assert ciphertext is not None
    assert SECRET not in ciphertext


def test_create_individual_for_everyone(client: TestClient, admin: Login, bob: Login) -> None:
    created = create(
        client,
        bob,
        "pg-ds",
        dataSourceType="PostgreSQLConfig",
        authType="Basic",
        credentialType="Individual",
        config={"host": "db", "port": "5432", "database": "x"},
        credentials={"username": "bob", "password": SECRET},
        displayName="Postgres",
        permissions={"isEveryone": True, "userIds": []},
    )
    assert created["displayName"] == "Postgres"
    assert created["credentialType"] == "Individual"
    assert events(client, admin)[0]["metadata"] == {
        "performedByUsername": "bob",
        "credentialType": "Individual",
        "isEveryone": "true",
        "ownerId": bob.id,
        "userIds": "",
        "projectIds": "",
    }


def test_users_see_only_what_they_may_use(
    client: TestClient, admin: Login, alice: Login, bob: Login
) -> None:
    private = create(client, alice, "alice-private")
    shared = create(
        client, alice, "alice-shared", permissions={"isEveryone": False, "userIds": [bob.id]}
    )
    public = create(client, alice, "alice-public", permissions={"isEveryone": True, "userIds": []})
    bobs = create(client, bob, "bob-own")

    def listed(login: Login) -> list[str]:
        response = client.get(V1, headers=login.headers)
        assert response.status_code == 200
        return sorted(ds["name"] for ds in response.json())

    assert listed(alice) == ["alice-private", "alice-public", "alice-shared"]
    assert listed(bob) == ["alice-public", "alice-shared", "bob-own"]
    assert listed(admin) == ["alice-private", "alice-public", "alice-shared", "bob-own"]

    for ds in (shared, public, bobs):
        assert client.get(f"{V1}/{ds['id']}", headers=bob.headers).status_code == 200
    hidden = client.get(f"{V1}/{private['id']}", headers=bob.headers)
    assert "alice-private" not in assert_public_error(hidden, 404)
    assert client.get(f"{V1}/{private['id']}", headers=admin.headers).status_code == 200
    assert_public_error(client.get(f"{V1}/{new_object_id()}", headers=alice.headers), 404)
    assert_public_error(client.get(V1), 401)
    assert_public_error(client.get(f"{V1}/{private['id']}"), 401)

    assert client.delete(f"{V1}/{public['id']}", headers=alice.headers).status_code == 200
    assert listed(bob) == ["alice-shared", "bob-own"]
    gone = client.get(f"{V1}/{public['id']}", headers=alice.headers)
    assert gone.status_code == 200
    assert gone.json()["status"] == "Deleted"


# -- update ------------------------------------------------------------------------------------


def test_patch_config_credentials_and_permissions(
    client: TestClient,
    dstrail: Dstrail,
    clock: SettableClock,
    admin: Login,
    alice: Login,
    bob: Login,
) -> None:
    ds = create(client, alice, "patch-ds")
    url = f"{V1}/{ds['id']}"

    clock.advance(1000)
    response = client.patch(url, json={"config": {"bucket": "new"}}, headers=alice.headers)
    assert response.status_code == 200, response.text
    assert response.json()["config"] == {"bucket": "new"}
    assert response.json()["lastUpdated"] == clock.now_ms
    kinds = [e["eventKind"] for e in events(client, admin)]
    assert kinds == ["UpdateDataSource", "CreateDataSource"]

    clock.advance(1000)
    before = snapshot(dstrail)
    response = client.patch(
        url,
        json={"credentials": {"accessKeyID": "AKIA2", "secretAccessKey": SECRET + "2"}},
        headers=alice.headers,
    )
    assert response.status_code == 200
    assert SECRET not in response.text
    after = snapshot(dstrail)
    assert after.credentials != before.credentials
    assert after.audit_size == before.audit_size + 1
    latest = events(client, admin)[0]
    assert latest["eventKind"] == "DataSourceCredentialsUpdated"
    assert latest["metadata"] == {"performedByUsername": "alice", "credentialType": "Shared"}

    clock.advance(1000)
    response = client.patch(
        url, json={"permissions": {"isEveryone": False, "userIds": [bob.id]}}, headers=alice.headers
    )
    assert response.status_code == 200
    assert response.json()["permissions"] == {"isEveryone": False, "userIds": [bob.id]}
    latest = events(client, admin)[0]
    assert latest["eventKind"] == "DataSourceChangeOfPermissions"
    assert latest["metadata"] == {
        "performedByUsername": "alice",
        "isEveryone": "false",
        "addedUserIds": bob.id,
        "removedUserIds": "",
    }

    # a SysAdmin edits too; a listed user may not
    clock.advance(1000)
    response = client.patch(url, json={"description": "by admin"}, headers=admin.headers)
    assert response.status_code == 200
    assert response.json()["lastUpdatedBy"] == admin.id
    assert events(client, admin)[0]["performedBy"] == admin.id
    before = snapshot(dstrail)
    assert_public_error(client.patch(url, json={"description": "x"}, headers=bob.headers), 403)
    assert_only_refusals_recorded(dstrail, before, refusals=1)


def test_patch_that_changes_nothing_records_nothing(
    client: TestClient, dstrail: Dstrail, clock: SettableClock, alice: Login
) -> None:
    ds = create(client, alice, "same-ds")
    url = f"{V1}/{ds['id']}"
    before = snapshot(dstrail)
    clock.advance(5000)
    for body in ({}, {"config": ds["config"]}, {"permissions": ds["permissions"]}):
        response = client.patch(url, json=body, headers=alice.headers)
        assert response.status_code == 200, response.text
        assert response.json() == ds
    assert snapshot(dstrail) == before


# -- permissions, ownership, delete --------------------------------------------------------------


def test_set_permissions_records_added_and_removed(
    client: TestClient, dstrail: Dstrail, admin: Login, alice: Login, bob: Login
) -> None:
    carol = make_login(dstrail, "carol")
    dave = make_login(dstrail, "dave")
    ds = create(client, alice, "perm-ds", permissions={"isEveryone": False, "userIds": [bob.id]})
    url = f"/v4/datasource/{ds['id']}/users"
    response = client.put(
        url, json={"isEveryone": True, "userIds": [dave.id, carol.id]}, headers=alice.headers
    )
    assert response.status_code == 200, response.text
    assert response.json()["permissions"] == {
        "isEveryone": True,
        "userIds": sorted([carol.id, dave.id]),
    }
    trail = events(client, admin)
    assert [e["eventKind"] for e in trail] == ["DataSourceChangeOfPermissions", "CreateDataSource"]
    assert trail[0]["metadata"] == {
        "performedByUsername": "alice",
        "isEveryone": "true",
        "addedUserIds": ",".join(sorted([carol.id, dave.id])),
        "removedUserIds": bob.id,
    }
    # the same permissions again: no change, no event
    size = audit_count(dstrail)
    again = client.put(
        url, json={"isEveryone": True, "userIds": [carol.id, dave.id]}, headers=alice.headers
    )
    assert again.status_code == 200
    assert audit_count(dstrail) == size
    # bob is no longer listed, but the data source is for everyone now: he sees it
    assert client.get(f"{V1}/{ds['id']}", headers=bob.headers).status_code == 200


def make_login(dstrail: Dstrail, username: str) -> Login:
    from tests.support import make_user

    return make_user(dstrail, username)


def test_transfer_ownership(
    client: TestClient, dstrail: Dstrail, admin: Login, alice: Login, bob: Login
) -> None:
    ds = create(client, alice, "own-ds")
    response = client.post(f"/v4/datasource/{ds['id']}/transfer/{bob.id}", headers=alice.headers)
    assert response.status_code == 200, response.text
    assert response.json()["ownerId"] == bob.id
    assert response.json()["ownerInfo"]["ownerName"] == "bob"
    trail = events(client, admin)
    assert [e["eventKind"] for e in trail] == ["DataSourceChangeOfOwnership", "CreateDataSource"]
    assert trail[0]["metadata"] == {
        "performedByUsername": "alice",
        "previousOwnerId": alice.id,
        "previousOwnerUsername": "alice",
        "newOwnerId": bob.id,
        "newOwnerUsername": "bob",
    }
    # alice no longer owns it (and is not listed): she cannot see it, let alone change it
    before = snapshot(dstrail)
    assert_v4_error(
        client.post(f"/v4/datasource/{ds['id']}/transfer/{alice.id}", headers=alice.headers), 404
    )
    assert snapshot(dstrail) == before
    # a SysAdmin transfers anything
    back = client.post(f"/v4/datasource/{ds['id']}/transfer/{alice.id}", headers=admin.headers)
    assert back.status_code == 200
    assert events(client, admin)[0]["metadata"]["previousOwnerUsername"] == "bob"
    assert events(client, admin)[0]["performedBy"] == admin.id


def test_delete_then_reuse_the_name(
    client: TestClient, dstrail: Dstrail, clock: SettableClock, admin: Login, alice: Login
) -> None:
    first = create(client, alice, "reused")
    clock.advance(1)
    deleted = client.delete(f"{V1}/{first['id']}", headers=alice.headers)
    assert deleted.status_code == 200
    assert deleted.json()["status"] == "Deleted"
    clock.advance(1)
    second = create(client, alice, "reused")
    assert second["id"] != first["id"]
    trail = events(client, admin)
    assert [(e["eventKind"], e["dataSourceId"]) for e in trail] == [
        ("CreateDataSource", second["id"]),
        ("DeleteDataSource", first["id"]),
        ("CreateDataSource", first["id"]),
    ]
    assert trail[1]["metadata"] == {"performedByUsername": "alice"}
    before = snapshot(dstrail)
    assert_public_error(client.delete(f"{V1}/{first['id']}", headers=alice.headers), 404)
    assert_public_error(
        client.post(V1, json=data_source_body("reused"), headers=admin.headers), 409
    )
    assert snapshot(dstrail) == before


# -- projects ----------------------------------------------------------------------------------


def test_attach_and_detach_projects(
    client: TestClient, dstrail: Dstrail, admin: Login, alice: Login, bob: Login
) -> None:
    proj = project(dstrail, "churn-model", bob, alice)
    ds = create(client, alice, "proj-ds")
    url = f"/v4/datasource/{ds['id']}/projects/{proj.id}"
    response = client.post(url, headers=alice.headers)  # a collaborator who may use it
    assert response.status_code == 200, response.text
    assert response.json()["projectIds"] == [proj.id]
    trail = events(client, admin)
    assert trail[0]["eventKind"] == "DataSourceAssociatedToProject"
    assert trail[0]["metadata"] == {
        "performedByUsername": "alice",
        "projectId": proj.id,
        "projectName": "churn-model",
    }
    before = snapshot(dstrail)
    assert_v4_error(client.post(url, headers=alice.headers), 409)
    assert snapshot(dstrail) == before

    response = client.delete(url, headers=alice.headers)
    assert response.status_code == 200
    assert response.json()["projectIds"] == []
    trail = events(client, admin)
    assert trail[0]["eventKind"] == "DataSourceDissociatedFromProject"
    assert trail[0]["metadata"] == {
        "performedByUsername": "alice",
        "projectId": proj.id,
        "projectName": "churn-model",
    }
    assert len(trail) == 3
    before = snapshot(dstrail)
    assert_v4_error(client.delete(url, headers=alice.headers), 404)
    assert snapshot(dstrail) == before


def test_project_owner_attaches_a_data_source_for_everyone(
    client: TestClient, dstrail: Dstrail, admin: Login, alice: Login, bob: Login
) -> None:
    proj = project(dstrail, "bobs", bob)
    ds = create(client, alice, "public-ds", permissions={"isEveryone": True, "userIds": []})
    response = client.post(f"/v4/datasource/{ds['id']}/projects/{proj.id}", headers=bob.headers)
    assert response.status_code == 200, response.text
    assert events(client, admin)[0]["performedBy"] == bob.id


def test_project_rules_refuse_and_change_nothing(
    client: TestClient, dstrail: Dstrail, admin: Login, alice: Login, bob: Login
) -> None:
    alices = project(dstrail, "alices", alice)
    bobs = project(dstrail, "bobs", bob)
    mine = create(client, alice, "alice-ds")
    theirs = create(client, bob, "bob-ds")
    before = snapshot(dstrail)
    # bob may not use alice's data source: it does not exist for him
    assert_v4_error(
        client.post(f"/v4/datasource/{mine['id']}/projects/{bobs.id}", headers=bob.headers), 404
    )
    # alice is no member of bob's project
    assert_v4_error(
        client.post(f"/v4/datasource/{mine['id']}/projects/{bobs.id}", headers=alice.headers), 403
    )
    assert_v4_error(
        client.post(f"/v4/datasource/{theirs['id']}/projects/{alices.id}", headers=alice.headers),
        404,
    )
    assert_v4_error(
        client.post(
            f"/v4/datasource/{mine['id']}/projects/{new_object_id()}", headers=alice.headers
        ),
        404,
    )
    assert_v4_error(
        client.post(
            f"/v4/datasource/{new_object_id()}/projects/{alices.id}", headers=alice.headers
        ),
        404,
    )
    assert_v4_error(client.post(f"/v4/datasource/{mine['id']}/projects/{alices.id}"), 403)
    assert_only_refusals_recorded(dstrail, before, refusals=1)


# -- every 4xx changes nothing -------------------------------------------------------------------

BAD_CREATES: list[tuple[str, dict[str, Any], int, str]] = [
    ("missing name", {"name": None}, 400, "name"),
    ("bad name", {"name": "has space"}, 400, "name"),
    ("unknown type", {"dataSourceType": "FooConfig"}, 400, "SnowflakeConfig"),
    ("unknown authType", {"authType": "Magic"}, 400, "AWSIAMBasic"),
    ("unknown credentialType", {"credentialType": "Team"}, 400, "Individual"),
    ("secret in config", {"config": {"password": "hunter2-secret"}}, 400, "credentials"),
    ("token in config", {"config": {"apiToken": "hunter2-secret"}}, 400, "apiToken"),
    ("number in config", {"config": {"port": 5432}}, 400, "config"),
    ("config not a map", {"config": ["a"]}, 400, "config"),
    ("number credential", {"credentials": {"password": 12345}}, 400, "credentials"),
    (
        "unknown user id",
        {"permissions": {"isEveryone": False, "userIds": ["f" * 24]}},
        400,
        "f" * 24,
    ),
    ("bad isEveryone", {"permissions": {"isEveryone": "maybe", "userIds": []}}, 400, "isEveryone"),
    ("unknown field", {"color": "red"}, 400, "color"),
    ("long description", {"description": "x" * 5000}, 400, "description"),
    ("duplicate name", {"name": "taken"}, 409, "taken"),
]


@pytest.mark.parametrize(
    ("overrides", "status", "named"),
    [pytest.param(o, s, n, id=i) for i, o, s, n in BAD_CREATES],
)
def test_bad_create_changes_nothing(
    client: TestClient,
    dstrail: Dstrail,
    alice: Login,
    overrides: dict[str, Any],
    status: int,
    named: str,
) -> None:
    create(client, alice, "taken")
    before = snapshot(dstrail)
    body = data_source_body("fresh")
    for key, value in overrides.items():
        if value is None:
            body.pop(key)
        else:
            body[key] = value
    response = client.post(V1, json=body, headers=alice.headers)
    message = assert_public_error(response, status)
    assert named in message
    assert "hunter2-secret" not in response.text
    assert "12345" not in response.text
    assert SECRET not in response.text
    assert snapshot(dstrail) == before


def test_unparseable_bodies_are_400(client: TestClient, dstrail: Dstrail, alice: Login) -> None:
    before = snapshot(dstrail)
    response = client.post(
        V1, content=b"{not json", headers={**alice.headers, "Content-Type": "application/json"}
    )
    assert_public_error(response, 400)
    assert_public_error(client.post(V1, json=["a"], headers=alice.headers), 400)
    ds = create(client, alice, "x-ds")
    before = snapshot(dstrail)
    response = client.put(
        f"/v4/datasource/{ds['id']}/users",
        content=b"nope",
        headers={**alice.headers, "Content-Type": "application/json"},
    )
    assert_v4_error(response, 400)
    assert snapshot(dstrail) == before


def test_refused_changes_change_nothing(
    client: TestClient, dstrail: Dstrail, admin: Login, alice: Login, bob: Login
) -> None:
    ds = create(client, alice, "guarded", permissions={"isEveryone": False, "userIds": [bob.id]})
    hidden = create(client, admin, "hidden")
    url = f"{V1}/{ds['id']}"
    v4 = f"/v4/datasource/{ds['id']}"
    unknown = "e" * 24
    before = snapshot(dstrail)
    cases = [
        # bad bodies from the owner
        (
            client.patch(url, json={"config": {"secretKey": "zzz"}}, headers=alice.headers),
            400,
            "public",
        ),
        (client.patch(url, json={"config": {"n": 1}}, headers=alice.headers), 400, "public"),
        (client.patch(url, json={"owner": bob.id}, headers=alice.headers), 400, "public"),
        (
            client.patch(
                url,
                json={"config": {"bucket": "c"}, "permissions": {"userIds": [unknown]}},
                headers=alice.headers,
            ),
            400,
            "public",
        ),
        (client.put(f"{v4}/users", json={"userIds": [unknown]}, headers=alice.headers), 400, "v4"),
        (client.put(f"{v4}/users", json={"isEveryone": "x"}, headers=alice.headers), 400, "v4"),
        (client.put(f"{v4}/users", json={"users": []}, headers=alice.headers), 400, "v4"),
        (client.post(f"{v4}/transfer/{unknown}", headers=alice.headers), 404, "v4"),
        (client.post(f"{v4}/transfer/{alice.id}", headers=alice.headers), 409, "v4"),
        # a listed user may use it but not manage it
        (client.patch(url, json={"description": "d"}, headers=bob.headers), 403, "public"),
        (client.delete(url, headers=bob.headers), 403, "public"),
        (client.put(f"{v4}/users", json={"isEveryone": True}, headers=bob.headers), 403, "v4"),
        (client.post(f"{v4}/transfer/{bob.id}", headers=bob.headers), 403, "v4"),
        # invisible to the caller
        (client.delete(f"{V1}/{hidden['id']}", headers=alice.headers), 404, "public"),
        (client.patch(f"{V1}/{hidden['id']}", json={}, headers=bob.headers), 404, "public"),
        (
            client.put(f"/v4/datasource/{hidden['id']}/users", json={}, headers=bob.headers),
            404,
            "v4",
        ),
        # no or unknown credential
        (client.delete(url), 401, "public"),
        (client.patch(url, json={}, headers={"X-Domino-Api-Key": "nope"}), 401, "public"),
        (client.post(f"{v4}/transfer/{bob.id}"), 403, "v4"),  # Domino's for no credential
        (client.put(f"{v4}/users", json={}), 403, "v4"),
    ]
    for response, status, family in cases:
        if family == "v4":
            assert_v4_error(response, status)
        else:
            assert_public_error(response, status)
        assert "zzz" not in response.text
    assert_only_refusals_recorded(dstrail, before, refusals=4)


def test_unknown_routes_and_methods_keep_the_family_shape(client: TestClient, alice: Login) -> None:
    assert_public_error(client.get("/api/datasource/v1/nothing-here", headers=alice.headers), 404)
    assert_public_error(client.put(V1, json={}, headers=alice.headers), 405)
    assert_v4_error(client.get("/v4/datasource/nothing/here/at/all", headers=alice.headers), 404)


def test_credentials_never_leave(
    client: TestClient, dstrail: Dstrail, admin: Login, alice: Login, bob: Login
) -> None:
    ds = create(client, alice, "leak-ds", permissions={"isEveryone": True, "userIds": []})
    texts = [
        client.get(V1, headers=alice.headers).text,
        client.get(f"{V1}/{ds['id']}", headers=bob.headers).text,
        client.patch(
            f"{V1}/{ds['id']}",
            json={"credentials": {"secretAccessKey": SECRET}},
            headers=alice.headers,
        ).text,
        client.delete(f"{V1}/{ds['id']}", headers=alice.headers).text,
        client.get(
            AUDIT, params=[("eventKinds", k) for k in ALL_KINDS], headers=admin.headers
        ).text,
        client.get(
            "/v4/datasource/audit/download", params={"jsonFile": "true"}, headers=admin.headers
        ).text,
        client.get("/api/datasource/v1/audit/export", headers=admin.headers).text,
    ]
    for text in texts:
        assert SECRET not in text
        assert "AKIAEXAMPLE" not in text
    with dstrail.store.read() as tx:
        for ciphertext in (tx.data_sources.credentials(ds["id"], SHARED_CREDENTIALS_USER),):
            assert ciphertext is not None
            assert SECRET not in ciphertext


def test_a_deleted_data_source_takes_no_more_changes(
    client: TestClient, dstrail: Dstrail, admin: Login, alice: Login, bob: Login
) -> None:
    proj = project(dstrail, "alices", alice)
    ds = create(client, alice, "gone-ds")
    v4 = f"/v4/datasource/{ds['id']}"
    assert client.post(f"{v4}/projects/{proj.id}", headers=alice.headers).status_code == 200
    assert client.delete(f"{V1}/{ds['id']}", headers=alice.headers).status_code == 200
    before = snapshot(dstrail)
    for login in (alice, admin):
        assert_public_error(
            client.patch(f"{V1}/{ds['id']}", json={"description": "x"}, headers=login.headers), 404
        )
        assert_v4_error(
            client.put(f"{v4}/users", json={"isEveryone": True}, headers=login.headers), 404
        )
        assert_v4_error(client.post(f"{v4}/transfer/{bob.id}", headers=login.headers), 404)
        assert_v4_error(client.delete(f"{v4}/projects/{proj.id}", headers=login.headers), 404)
    assert snapshot(dstrail) == before


def test_no_secret_reaches_the_log(
    client: TestClient, alice: Login, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    ds = create(client, alice, "logged-ds")
    client.post(V1, json=data_source_body("logged-ds"), headers=alice.headers)  # 409
    client.post(
        V1, json=data_source_body("other", config={"password": SECRET}), headers=alice.headers
    )
    client.patch(
        f"{V1}/{ds['id']}", json={"credentials": {"password": SECRET}}, headers=alice.headers
    )
    client.patch(f"{V1}/{ds['id']}", json={"credentials": {"password": 1}}, headers=alice.headers)
    client.get(V1, headers={"X-Domino-Api-Key": alice.api_key + "x"})
    assert caplog.records  # the capture works (the HTTP client logs each request)
    assert SECRET not in caplog.text
    assert alice.api_key not in caplog.text
