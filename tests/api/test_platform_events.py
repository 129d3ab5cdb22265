"""The platform changes that decide who may reach a data source are in the trail: users, roles,
API keys, projects and their collaborators, runs. They are extension kinds: the default audit
request still returns Domino's seven only."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from dstrail.audit.query import names_in_trail
from dstrail.context import Dstrail
from dstrail.domain.ids import new_object_id
from dstrail.domain.trail import PLATFORM_KINDS, EventKind
from dstrail.services.users import hash_api_key
from tests.api.test_platform_api import BASE, DATA_SOURCES, error, state
from tests.support import Login

AUDIT = "/api/datasource/v1/audit"
SINCE = {"startTime": "2020-01-01T00:00:00Z"}


CHANGES = PLATFORM_KINDS - {EventKind.TRAIL_READ}
"""Platform changes: the platform kinds but reads of the trail (each call here is one)."""


def recorded(client: TestClient, reader: Login, **filters: Any) -> list[dict[str, Any]]:
    """Platform changes through the audit API, oldest first."""
    params: dict[str, Any] = {"eventKinds": sorted(CHANGES), **SINCE, **filters}
    response = client.get(AUDIT, params=params, headers=reader.headers)
    assert response.status_code == 200, response.text
    events: list[dict[str, Any]] = response.json()
    return events[::-1]


def summary(event: dict[str, Any], *keys: str) -> tuple[Any, ...]:
    return (event["eventKind"], event["performedBy"], *(event["metadata"][k] for k in keys))


def test_users_roles_and_keys_are_recorded_with_who_changed_them(
    client: TestClient, admin: Login, alice: Login
) -> None:
    before = len(recorded(client, admin))
    made = client.post(f"{BASE}/users", json={"username": "carol"}, headers=admin.headers).json()
    role = client.put(
        f"{BASE}/users/{made['id']}/role", json={"role": "Auditor"}, headers=admin.headers
    )
    assert role.status_code == 200 and role.json()["role"] == "Auditor", role.text
    second = client.post(f"{BASE}/users/{alice.id}/api-keys", headers=alice.headers).json()
    listed = client.get(f"{BASE}/users/{alice.id}/api-keys", headers=alice.headers)
    assert listed.status_code == 200
    assert [key["id"] for key in listed.json() if key["live"]][-1] == second["id"]
    revoked = client.delete(
        f"{BASE}/users/{alice.id}/api-keys/{second['id']}", headers=alice.headers
    )
    assert revoked.status_code == 204, revoked.text
    error(client.get(DATA_SOURCES, headers={"X-Domino-Api-Key": second["apiKey"]}), 401)
    assert client.get(DATA_SOURCES, headers=alice.headers).status_code == 200  # her first key

    events = recorded(client, admin)[before:]
    assert [summary(e, "userId") for e in events] == [
        ("UserCreated", admin.id, made["id"]),
        ("ApiKeyIssued", admin.id, made["id"]),
        ("UserRoleChanged", admin.id, made["id"]),
        ("ApiKeyIssued", alice.id, alice.id),
        ("ApiKeyRevoked", alice.id, alice.id),
    ]
    assert events[0]["metadata"]["role"] == "User"
    assert summary(events[2], "previousRole", "role") == (
        "UserRoleChanged", admin.id, "User", "Auditor",
    )  # fmt: skip
    assert events[1]["metadata"]["keyId"] == made["apiKeyId"]
    assert events[4]["metadata"]["keyId"] == second["id"]
    assert all(e["dataSourceId"] == "" and e["dataSourceName"] == "" for e in events)
    text = str(events)
    for secret in (made["apiKey"], second["apiKey"], hash_api_key(second["apiKey"])):
        assert secret not in text
    # Domino's default request returns none of them
    default = client.get(AUDIT, params=SINCE, headers=admin.headers).json()
    assert not {e["eventKind"] for e in default} & PLATFORM_KINDS


def test_projects_members_and_runs_are_recorded_and_filter_by_project_and_run(
    client: TestClient, admin: Login, alice: Login, bob: Login
) -> None:
    project = client.post(
        f"{BASE}/projects",
        json={"name": "churn", "collaboratorIds": [bob.id]},
        headers=alice.headers,
    ).json()
    members = f"{BASE}/projects/{project['id']}/collaborators"
    run = client.post(
        f"{BASE}/runs", json={"projectId": project["id"], "runType": "Batch"}, headers=bob.headers
    ).json()
    assert client.post(f"{BASE}/runs/{run['id']}/stop", headers=bob.headers).status_code == 200
    removed = client.delete(f"{members}/{bob.id}", headers=alice.headers)
    assert removed.status_code == 200 and removed.json()["collaboratorIds"] == [], removed.text
    # bob is no longer a member: he may not start a run there
    again = {"projectId": project["id"], "runType": "Batch"}
    assert "member" in error(client.post(f"{BASE}/runs", json=again, headers=bob.headers), 403)
    added = client.put(f"{members}/{bob.id}", headers=admin.headers)
    assert added.status_code == 200 and added.json()["collaboratorIds"] == [bob.id]

    events = recorded(client, admin, projectIds=[project["id"]])
    assert [(e["eventKind"], e["performedBy"]) for e in events] == [
        ("ProjectCreated", alice.id),
        ("RunStarted", bob.id),
        ("RunStopped", bob.id),
        ("ProjectCollaboratorRemoved", alice.id),
        ("ProjectCollaboratorAdded", admin.id),
    ]
    created = events[0]["metadata"]
    assert (created["projectName"], created["ownerId"], created["collaboratorIds"]) == (
        "churn", alice.id, bob.id,
    )  # fmt: skip
    assert events[3]["metadata"]["userId"] == bob.id
    for started in events[1:3]:
        metadata = started["metadata"]
        assert (metadata["runId"], metadata["runType"], metadata["userId"]) == (
            run["id"], "Batch", bob.id,
        )  # fmt: skip
    by_run = recorded(client, admin, runIds=[run["id"]])
    assert [e["eventKind"] for e in by_run] == ["RunStarted", "RunStopped"]
    by_kind = recorded(client, admin, eventKinds=["RunStarted"])
    assert [e["metadata"]["runId"] for e in by_kind] == [run["id"]]


def test_refused_platform_changes_change_and_record_nothing(
    client: TestClient, dstrail: Dstrail, admin: Login, alice: Login, bob: Login
) -> None:
    project = client.post(f"{BASE}/projects", json={"name": "p"}, headers=alice.headers).json()
    members = f"{BASE}/projects/{project['id']}/collaborators"
    bobs_key = client.post(f"{BASE}/users/{bob.id}/api-keys", headers=bob.headers).json()
    before = state(dstrail)
    role = f"{BASE}/users/{bob.id}/role"
    assert "SysAdmin" in error(
        client.put(role, json={"role": "SysAdmin"}, headers=bob.headers), 403
    )
    message = error(client.put(role, json={"role": "Root"}, headers=admin.headers), 400)
    assert all(name in message for name in ("Root", "SysAdmin", "Auditor", "User"))
    assert "role" in error(client.put(role, json={}, headers=admin.headers), 400)
    last = f"{BASE}/users/{admin.id}/role"
    assert "last SysAdmin" in error(
        client.put(last, json={"role": "User"}, headers=admin.headers), 409
    )
    error(
        client.put(
            f"{BASE}/users/{new_object_id()}/role", json={"role": "User"}, headers=admin.headers
        ),
        404,
    )
    bobs = f"{BASE}/users/{bob.id}/api-keys"
    error(client.get(bobs, headers=alice.headers), 403)
    error(client.delete(f"{bobs}/{bobs_key['id']}", headers=alice.headers), 403)
    error(client.delete(f"{bobs}/{new_object_id()}", headers=bob.headers), 404)
    error(client.delete(f"{bobs}/{bobs_key['id']}"), 401)
    assert "owner" in error(client.put(f"{members}/{bob.id}", headers=bob.headers), 403)
    assert "already" in error(client.put(f"{members}/{alice.id}", headers=alice.headers), 409)
    assert "not a collaborator" in error(
        client.delete(f"{members}/{bob.id}", headers=alice.headers), 409
    )
    error(client.put(f"{members}/{new_object_id()}", headers=alice.headers), 404)
    error(
        client.put(
            f"{BASE}/projects/{new_object_id()}/collaborators/{bob.id}", headers=admin.headers
        ),
        404,
    )
    assert state(dstrail) == before
    # the same role again is no change, and records nothing
    same = client.put(role, json={"role": "User"}, headers=admin.headers)
    assert same.status_code == 200 and same.json()["role"] == "User"
    assert state(dstrail) == before
    assert EventKind.USER_ROLE_CHANGED.value not in {
        e["eventKind"] for e in recorded(client, admin)
    }


def test_platform_changes_leave_the_name_suggestions_and_the_operator_name_alone(
    client: TestClient, dstrail: Dstrail, admin: Login, alice: Login
) -> None:
    with dstrail.store.read() as tx:
        assert "" not in names_in_trail(tx, "", limit=20)  # platform events name no data source
    reserved = error(
        client.post(f"{BASE}/users", json={"username": "operator"}, headers=admin.headers), 400
    )
    assert "reserved" in reserved
    bad_role = {"role": "Root"}
    assert "SysAdmin" in error(
        client.put(f"{BASE}/users/{alice.id}/role", json=bad_role, headers=alice.headers), 403
    )


def test_a_run_token_does_not_manage_api_keys(
    client: TestClient, dstrail: Dstrail, alice: Login
) -> None:
    project = client.post(f"{BASE}/projects", json={"name": "p"}, headers=alice.headers).json()
    run = client.post(
        f"{BASE}/runs", json={"projectId": project["id"], "runType": "App"}, headers=alice.headers
    ).json()
    bearer = {"Authorization": f"Bearer {run['token']}"}
    keys = f"{BASE}/users/{alice.id}/api-keys"
    before = state(dstrail)
    for response in (
        client.post(keys, headers=bearer),
        client.get(keys, headers=bearer),
        client.delete(f"{keys}/{new_object_id()}", headers=bearer),
    ):
        assert "run's token" in error(response, 403)
    assert state(dstrail) == before
