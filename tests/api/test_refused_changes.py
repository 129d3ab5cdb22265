"""A refused management attempt on a data source the caller can see is recorded
(``DataSourceChangeRefused``, in its own transaction); one on a data source they cannot see,
and a validation error, record nothing. ``CreateDataSource`` records the initial grants."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from dstrail.context import Dstrail
from dstrail.services import projects as project_service
from tests.support import Login, audit_count, data_source_body, make_user

V1 = "/api/datasource/v1/datasources"
AUDIT = "/api/datasource/v1/audit"


def _trail(client: TestClient, admin: Login, *kinds: str) -> list[dict[str, Any]]:
    params = [("startTime", "1970-01-01T00:00:00Z"), *(("eventKinds", k) for k in kinds)]
    response = client.get(AUDIT, params=params, headers=admin.headers)
    assert response.status_code == 200, response.text
    events: list[dict[str, Any]] = response.json()
    return events


def test_creation_records_the_initial_grants(
    client: TestClient, admin: Login, alice: Login, bob: Login
) -> None:
    body = data_source_body("granted", permissions={"isEveryone": False, "userIds": [bob.id]})
    assert client.post(V1, json=body, headers=alice.headers).status_code == 201
    (created,) = _trail(client, admin, "CreateDataSource")
    assert created["metadata"] == {
        "performedByUsername": "alice",
        "credentialType": "Shared",
        "isEveryone": "false",
        "ownerId": alice.id,
        "userIds": bob.id,
        "projectIds": "",
    }


def test_refused_changes_are_recorded_and_change_nothing(
    client: TestClient, dstrail: Dstrail, admin: Login, alice: Login, bob: Login
) -> None:
    body = data_source_body("guarded", permissions={"isEveryone": False, "userIds": [bob.id]})
    ds = client.post(V1, json=body, headers=alice.headers).json()
    with dstrail.store.write() as tx:
        project = project_service.create_project(
            tx,
            actor=alice.user,
            name="alices",
            owner=alice.user,
            collaborators=[],
            now_ms=dstrail.clock(),
        )
    v4 = f"/v4/datasource/{ds['id']}"
    attempts = {
        "setPermissions": client.put(f"{v4}/users", json={"isEveryone": True}, headers=bob.headers),
        "transferOwnership": client.post(f"{v4}/transfer/{bob.id}", headers=bob.headers),
        "updateDataSource": client.patch(
            f"{V1}/{ds['id']}", json={"description": "mine"}, headers=bob.headers
        ),
        "deleteDataSource": client.delete(f"{V1}/{ds['id']}", headers=bob.headers),
        "attachToProject": client.post(f"{v4}/projects/{project.id}", headers=bob.headers),
        "setCredentials": client.put(
            f"{V1}/{ds['id']}/credentials", json={"credentials": {"k": "v"}}, headers=bob.headers
        ),
    }
    assert {action: r.status_code for action, r in attempts.items()} == dict.fromkeys(attempts, 403)
    refused = _trail(client, admin, "DataSourceChangeRefused")
    assert sorted(e["metadata"]["action"] for e in refused) == sorted(attempts)
    assert {e["performedBy"] for e in refused} == {bob.id}
    assert {e["dataSourceId"] for e in refused} == {ds["id"]}
    assert all(e["metadata"]["reason"] for e in refused)
    assert "v" not in {value for e in refused for value in e["metadata"].values()}
    # nothing else changed, and Domino's seven kinds alone show only the creation
    assert client.get(f"{V1}/{ds['id']}", headers=alice.headers).json() == ds
    assert [e["eventKind"] for e in _trail(client, admin)] == ["CreateDataSource"]


def test_what_cannot_be_seen_or_is_invalid_records_nothing(
    client: TestClient, dstrail: Dstrail, alice: Login, bob: Login
) -> None:
    ds = client.post(V1, json=data_source_body("private"), headers=alice.headers).json()
    carol = make_user(dstrail, "carol")
    before = audit_count(dstrail)
    hidden = client.put(f"/v4/datasource/{ds['id']}/users", json={}, headers=carol.headers)
    invalid = client.put(
        f"/v4/datasource/{ds['id']}/users", json={"userIds": ["nope"]}, headers=alice.headers
    )
    assert (hidden.status_code, invalid.status_code) == (404, 400)
    assert audit_count(dstrail) == before
