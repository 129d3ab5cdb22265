"""dstrail's platform paths: users and API keys, projects, runs (``/api/dstrail/v1``)."""

from __future__ import annotations

import uuid
from typing import Any

import jwt
from fastapi.testclient import TestClient

from dstrail.context import Dstrail
from dstrail.domain.ids import LOCAL_DATA_PLANE_ID, is_object_id, new_object_id
from dstrail.services.users import hash_api_key
from tests.support import Login

BASE = "/api/dstrail/v1"
DATA_SOURCES = "/api/datasource/v1/datasources"


def error(response: Any, status: int) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"requestId", "errors"}, body
    assert uuid.UUID(body["requestId"])
    message: str = "; ".join(body["errors"])
    assert message
    return message


def state(dstrail: Dstrail) -> tuple[Any, ...]:
    """Users, key hashes, projects and runs, to show a refusal changed nothing."""
    with dstrail.store.read() as tx:
        db = tx.connection
        return (
            tx.users.all(),
            sorted(db.exec_driver_sql("SELECT key_hash, revoked_at FROM api_keys").all()),
            tx.projects.all(),
            sorted(db.exec_driver_sql("SELECT id, ended_at FROM runs").all()),
            tx.audit.size(),
        )


# -- users and keys ----------------------------------------------------------------------------


def test_admin_creates_users_whose_key_works_and_is_stored_hashed(
    client: TestClient, dstrail: Dstrail, admin: Login
) -> None:
    response = client.post(
        f"{BASE}/users",
        json={"username": "carol", "email": "carol@example.com", "role": "Auditor"},
        headers=admin.headers,
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert set(body) == {"id", "username", "role", "apiKey", "apiKeyId"}
    assert is_object_id(body["id"])
    assert (body["username"], body["role"]) == ("carol", "Auditor")
    key = body["apiKey"]
    assert client.get(DATA_SOURCES, headers={"X-Domino-Api-Key": key}).status_code == 200
    assert (
        client.get("/api/datasource/v1/audit", headers={"X-Domino-Api-Key": key}).status_code == 200
    )
    with dstrail.store.read() as tx:
        stored = [row[0] for row in tx.connection.exec_driver_sql("SELECT key_hash FROM api_keys")]
    assert hash_api_key(key) in stored
    assert all(key not in value for value in stored)


def test_user_creation_refusals_change_nothing(
    client: TestClient, dstrail: Dstrail, admin: Login, alice: Login
) -> None:
    before = state(dstrail)
    url = f"{BASE}/users"
    assert "SysAdmin" in error(client.post(url, json={"username": "x"}, headers=alice.headers), 403)
    error(client.post(url, json={"username": "x"}), 401)
    message = error(
        client.post(url, json={"username": "x", "role": "Root"}, headers=admin.headers), 400
    )
    for role in ("Root", "SysAdmin", "User"):
        assert role in message
    assert "alice" in error(
        client.post(url, json={"username": "alice"}, headers=admin.headers), 409
    )
    assert "username" in error(
        client.post(url, json={"username": "no spaces"}, headers=admin.headers), 400
    )
    assert "email" in error(
        client.post(url, json={"username": "y", "email": "nope"}, headers=admin.headers), 400
    )
    assert "color" in error(
        client.post(url, json={"username": "z", "color": 1}, headers=admin.headers), 400
    )
    assert "username" in error(client.post(url, json={}, headers=admin.headers), 400)
    assert state(dstrail) == before


def test_api_keys_for_yourself_or_as_admin(
    client: TestClient, dstrail: Dstrail, admin: Login, alice: Login, bob: Login
) -> None:
    response = client.post(f"{BASE}/users/{alice.id}/api-keys", headers=alice.headers)
    assert response.status_code == 201, response.text
    assert set(response.json()) == {"id", "apiKey"}
    second = response.json()["apiKey"]
    assert second != alice.api_key
    for key in (second, alice.api_key):
        assert client.get(DATA_SOURCES, headers={"X-Domino-Api-Key": key}).status_code == 200
    by_admin = client.post(f"{BASE}/users/{bob.id}/api-keys", headers=admin.headers)
    assert by_admin.status_code == 201
    before = state(dstrail)
    error(client.post(f"{BASE}/users/{bob.id}/api-keys", headers=alice.headers), 403)
    error(client.post(f"{BASE}/users/{new_object_id()}/api-keys", headers=admin.headers), 404)
    error(client.post(f"{BASE}/users/{alice.id}/api-keys"), 401)
    assert state(dstrail) == before


# -- projects ----------------------------------------------------------------------------------


def test_projects(
    client: TestClient, dstrail: Dstrail, admin: Login, alice: Login, bob: Login
) -> None:
    url = f"{BASE}/projects"
    response = client.post(
        url, json={"name": "churn", "collaboratorIds": [bob.id]}, headers=alice.headers
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["name"] == "churn"
    assert body["ownerId"] == alice.id
    assert body["collaboratorIds"] == [bob.id]
    assert is_object_id(body["id"])
    same_name_other_owner = client.post(url, json={"name": "churn"}, headers=bob.headers)
    assert same_name_other_owner.status_code == 201
    for_bob = client.post(url, json={"name": "ops", "ownerId": bob.id}, headers=admin.headers)
    assert for_bob.status_code == 201
    assert for_bob.json()["ownerId"] == bob.id

    before = state(dstrail)
    assert "churn" in error(client.post(url, json={"name": "churn"}, headers=alice.headers), 409)
    error(client.post(url, json={"name": "x", "ownerId": bob.id}, headers=alice.headers), 403)
    assert "ownerId" in error(
        client.post(url, json={"name": "x", "ownerId": new_object_id()}, headers=admin.headers),
        400,
    )
    unknown = new_object_id()
    assert unknown in error(
        client.post(url, json={"name": "x", "collaboratorIds": [unknown]}, headers=alice.headers),
        400,
    )
    assert "name" in error(client.post(url, json={"name": "   "}, headers=alice.headers), 400)
    assert "name" in error(client.post(url, json={}, headers=alice.headers), 400)
    error(client.post(url, json={"name": "x"}), 401)
    assert state(dstrail) == before


# -- runs --------------------------------------------------------------------------------------


def make_project(client: TestClient, owner: Login, *collaborators: Login) -> str:
    response = client.post(
        f"{BASE}/projects",
        json={"name": f"p-{new_object_id()}", "collaboratorIds": [c.id for c in collaborators]},
        headers=owner.headers,
    )
    assert response.status_code == 201, response.text
    project_id: str = response.json()["id"]
    return project_id


def test_runs_start_with_a_token_and_stop(
    client: TestClient, dstrail: Dstrail, admin: Login, alice: Login, bob: Login
) -> None:
    project_id = make_project(client, alice, bob)
    response = client.post(
        f"{BASE}/runs", json={"projectId": project_id, "runType": "Batch"}, headers=bob.headers
    )
    assert response.status_code == 201, response.text
    run = response.json()
    assert run["runType"] == "Batch"
    assert run["projectId"] == project_id
    assert run["userId"] == bob.id
    assert run["dataPlaneId"] == LOCAL_DATA_PLANE_ID
    assert run["running"] is True
    claims = jwt.decode(run["token"], options={"verify_signature": False})
    assert claims["run_id"] == run["id"]
    assert claims["sub"] == bob.id
    bearer = {"Authorization": f"Bearer {run['token']}"}
    assert client.get(DATA_SOURCES, headers=bearer).status_code == 200

    before = state(dstrail)
    error(client.post(f"{BASE}/runs/{run['id']}/stop", headers=alice.headers), 403)
    error(client.post(f"{BASE}/runs/{new_object_id()}/stop", headers=bob.headers), 404)
    error(client.post(f"{BASE}/runs/{run['id']}/stop"), 401)
    assert state(dstrail) == before

    stopped = client.post(f"{BASE}/runs/{run['id']}/stop", headers=bob.headers)
    assert stopped.status_code == 200
    assert stopped.json()["running"] is False
    assert stopped.json()["token"] is None
    # an ended run's token is no longer a credential
    error(client.get(DATA_SOURCES, headers=bearer), 401)
    before = state(dstrail)
    assert "ended" in error(client.post(f"{BASE}/runs/{run['id']}/stop", headers=bob.headers), 409)
    assert state(dstrail) == before

    other = client.post(
        f"{BASE}/runs",
        json={
            "projectId": project_id,
            "runType": "Endpoint",
            "userId": alice.id,
            "dataPlaneId": "1" * 24,
        },
        headers=admin.headers,
    )
    assert other.status_code == 201, other.text
    assert (other.json()["userId"], other.json()["dataPlaneId"]) == (alice.id, "1" * 24)
    by_admin = client.post(f"{BASE}/runs/{other.json()['id']}/stop", headers=admin.headers)
    assert by_admin.status_code == 200


def test_run_refusals_change_nothing(
    client: TestClient, dstrail: Dstrail, admin: Login, alice: Login, bob: Login
) -> None:
    project_id = make_project(client, alice)
    url = f"{BASE}/runs"
    before = state(dstrail)
    message = error(
        client.post(
            url, json={"projectId": project_id, "runType": "Notebook"}, headers=alice.headers
        ),
        400,
    )
    for kind in ("Notebook", "Workspace", "Batch", "Scheduled", "App", "Launcher", "Endpoint"):
        assert kind in message
    assert "member" in error(
        client.post(url, json={"projectId": project_id, "runType": "App"}, headers=bob.headers),
        403,
    )
    error(
        client.post(
            url,
            json={"projectId": project_id, "runType": "App", "userId": bob.id},
            headers=alice.headers,
        ),
        403,
    )
    assert "projectId" in error(
        client.post(
            url, json={"projectId": new_object_id(), "runType": "App"}, headers=alice.headers
        ),
        400,
    )
    assert "data plane" in error(
        client.post(
            url,
            json={"projectId": project_id, "runType": "App", "dataPlaneId": "local"},
            headers=alice.headers,
        ),
        400,
    )
    assert "runType" in error(
        client.post(url, json={"projectId": project_id}, headers=alice.headers), 400
    )
    error(client.post(url, json={"projectId": project_id, "runType": "App"}), 401)
    assert state(dstrail) == before
