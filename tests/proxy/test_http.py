"""The proxy's HTTP edges, in process: authentication, signed URLs, overwrites, credentials."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from dstrail.context import Dstrail
from dstrail.domain.timestamps import format_ms
from tests.support import Login, SettableClock, audit_count, data_source_body

V1 = "/api/datasource/v1/datasources"


def _create(client: TestClient, owner: Login, name: str, **overrides: Any) -> dict[str, Any]:
    response = client.post(V1, json=data_source_body(name, **overrides), headers=owner.headers)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def _dataset(client: TestClient, owner: Login, name: str = "files") -> dict[str, Any]:
    return _create(
        client, owner, name, dataSourceType="DatasetConfig", authType="NoAuth", config={},
        credentials=None, permissions={"isEveryone": True, "userIds": []},
    )  # fmt: skip


def _key(client: TestClient, login: Login, ds_id: str, key: str, write: bool, **extra: Any) -> Any:
    body = {"datasourceId": ds_id, "objectKey": key, "isReadWrite": write, **extra}
    return client.post("/objectstore/key", json=body, headers=login.headers)


def test_proxy_calls_need_a_credential(client: TestClient, dstrail: Dstrail) -> None:
    before = audit_count(dstrail)
    response = client.post("/objectstore/key", json={"datasourceId": "x", "objectKey": "k"})
    assert response.status_code == 401
    assert set(response.json()) == {"errorType", "subType", "rawError"}
    assert client.head("/objectstore/metric?t=S3Config&b=1&m=read").status_code == 401
    assert audit_count(dstrail) == before


def test_metrics_are_acknowledged_not_audited(
    client: TestClient, dstrail: Dstrail, alice: Login
) -> None:
    before = audit_count(dstrail)
    response = client.head("/objectstore/metric?t=S3Config&b=42&m=write", headers=alice.headers)
    assert response.status_code == 200
    assert audit_count(dstrail) == before


def test_signed_urls_allow_one_method_until_they_expire(
    client: TestClient, alice: Login, clock: SettableClock, dstrail: Dstrail
) -> None:
    ds = _dataset(client, alice)
    put_url = _key(client, alice, ds["id"], "dir/a.txt", True).json()
    assert client.put(put_url, content=b"hello").status_code == 200
    get_url = _key(client, alice, ds["id"], "dir/a.txt", False).json()
    assert client.get(get_url).content == b"hello"
    assert client.get(get_url, headers={"Range": "bytes=1-2"}).content == b"el"
    wrong_method = client.get(put_url)
    assert wrong_method.status_code == 403
    assert "signed for PUT" in wrong_method.json()["rawError"]
    tampered = client.get(get_url.replace("dir/a.txt", "dir/b.txt"))
    assert tampered.status_code == 403
    assert "signature" in tampered.json()["rawError"]
    clock.advance((dstrail.settings.signed_url_ttl_seconds + 1) * 1000)
    expired = client.get(get_url)
    assert expired.status_code == 403
    assert "expired" in expired.json()["rawError"]


def test_object_keys_stay_inside_the_data_source(
    client: TestClient, alice: Login, dstrail: Dstrail
) -> None:
    ds = _dataset(client, alice)
    before = audit_count(dstrail)
    for key in ("../escape.txt", "/etc/passwd", "a//b", "a/./b", ""):
        response = _key(client, alice, ds["id"], key, True)
        assert response.status_code == 400, key
        assert response.json()["errorType"] == "invalidRequestError"
    assert audit_count(dstrail) == before


def _access_events(client: TestClient, admin: Login, kind: str) -> list[dict[str, Any]]:
    response = client.get(f"/api/datasource/v1/audit?eventKinds={kind}", headers=admin.headers)
    assert response.status_code == 200, response.text
    events: list[dict[str, Any]] = response.json()
    return events


def test_config_overwrites_are_served_recorded_and_can_be_turned_off(
    client: TestClient, admin: Login, alice: Login, bob: Login
) -> None:
    ds = _create(client, alice, "s3", permissions={"isEveryone": False, "userIds": [bob.id]})
    assert ds["configOverwritesAllowed"] is True  # as on Domino
    moved = _key(client, bob, ds["id"], "k", False, configOverwrites={"bucket": "elsewhere"})
    assert moved.status_code == 200
    assert moved.json().startswith("https://elsewhere.s3.")
    [access] = _access_events(client, admin, "AccessDataSource")
    assert access["metadata"]["configOverwrites"] == '{"bucket":"elsewhere"}'
    not_accepted = _key(client, bob, ds["id"], "k", False, configOverwrites={"host": "evil"})
    assert not_accepted.status_code == 400
    assert not_accepted.json()["rawError"] == (
        "configOverwrites: 'host' cannot be overwritten on a S3Config; "
        "accepted: bucket, region, subfolder"
    )

    off = {"configOverwritesAllowed": False}
    assert client.patch(f"{V1}/{ds['id']}", json=off, headers=bob.headers).status_code == 403
    turned = client.patch(f"{V1}/{ds['id']}", json=off, headers=alice.headers)
    assert turned.status_code == 200
    assert turned.json()["configOverwritesAllowed"] is False
    [update] = _access_events(client, admin, "UpdateDataSource")
    assert update["metadata"]["configOverwritesAllowed"] == "false"
    refused = _key(client, bob, ds["id"], "k", False, configOverwrites={"bucket": "elsewhere"})
    assert refused.status_code == 400
    assert refused.json()["errorType"] == "credentialsError"
    assert refused.json()["subType"] == "configOverwritesForbidden"
    [refusal] = _access_events(client, admin, "AccessDataSourceRefused")
    assert refusal["metadata"]["configOverwrites"] == '{"bucket":"elsewhere"}'
    assert _key(client, bob, ds["id"], "k", False).status_code == 200  # without: served


def test_wrong_kinds_and_unknown_ids(client: TestClient, alice: Login) -> None:
    pg = _create(
        client, alice, "pg", dataSourceType="PostgreSQLConfig", authType="Basic",
        config={"host": "127.0.0.1"}, credentials={"username": "u", "password": "p"},
    )  # fmt: skip
    not_object_store = _key(client, alice, pg["id"], "k", False)
    assert not_object_store.status_code == 400
    assert "not an object store" in not_object_store.json()["rawError"]
    unknown = _key(client, alice, "0" * 24, "k", False)
    assert unknown.status_code == 400  # Domino's proxy answers 400 for what is missing
    assert unknown.json()["errorType"] == "notFoundError"
    lookup = client.get("/v4/datasource/name/nope", headers=alice.headers)
    assert lookup.status_code == 404
    assert lookup.json() == {
        "message": "Datasource with name nope does not exist",
        "success": False,
    }
    anonymous = client.get("/v4/datasource/name/nope", headers={"X-Domino-Api-Key": "bad"})
    assert anonymous.status_code == 403
    body = anonymous.json()
    assert body["success"] is False and body["message"].startswith("Your role does not authorize")
    assert set(body) == {"success", "message", "debugMessage", "reason"}
    assert "bad" not in anonymous.text


def test_a_read_of_a_missing_dataset_file_is_not_found(client: TestClient, alice: Login) -> None:
    ds = _dataset(client, alice)
    missing = _key(client, alice, ds["id"], "nothing/here.csv", False)
    assert missing.status_code == 400
    assert missing.json()["errorType"] == "notFoundError"
    assert "nothing/here.csv" in missing.json()["rawError"]
    assert _key(client, alice, ds["id"], "nothing/here.csv", True).status_code == 200


def test_credentials_api_rules(client: TestClient, admin: Login, alice: Login, bob: Login) -> None:
    shared = _create(client, alice, "shared", permissions={"isEveryone": True, "userIds": []})
    individual = _create(
        client, alice, "individual", credentialType="Individual", credentials=None,
        permissions={"isEveryone": False, "userIds": [bob.id]},
    )  # fmt: skip
    secret = {"accessKeyID": "AKIA1", "secretAccessKey": "top-secret-value"}

    def put(login: Login, ds: dict[str, Any], **body: Any) -> Any:
        return client.put(
            f"{V1}/{ds['id']}/credentials", json={"credentials": secret, **body},
            headers=login.headers,
        )  # fmt: skip

    assert put(bob, shared).status_code == 403
    assert put(alice, shared).json() == {
        "dataSourceId": shared["id"],
        "credentialType": "Shared",
        "fields": ["accessKeyID", "secretAccessKey"],
    }
    own = put(bob, individual)
    assert own.status_code == 200
    assert own.json()["userId"] == bob.id
    assert put(bob, individual, userId=alice.id).status_code == 403
    assert put(admin, individual, userId=bob.id).status_code == 200
    audit = client.get(
        "/api/datasource/v1/audit?eventKinds=DataSourceCredentialsUpdated", headers=admin.headers
    )
    assert len(audit.json()) == 3  # alice's, bob's and the admin's
    assert "top-secret-value" not in audit.text
    assert {e["metadata"].get("credentialUserId") for e in audit.json()} >= {bob.id}


def test_the_lookup_carries_dominos_fields(client: TestClient, alice: Login, bob: Login) -> None:
    ds = _create(client, alice, "shaped", permissions={"isEveryone": False, "userIds": [bob.id]})
    response = client.get("/v4/datasource/name/shaped", headers=alice.headers)
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-cache, no-store, must-revalidate, max-age=0"
    body = response.json()
    assert body["id"] == ds["id"]
    assert (body["isEveryone"], body["userIds"]) == (False, [bob.id])
    assert body["dataSourcePermissions"] == {
        "isEveryone": False, "userIds": [bob.id], "credentialType": body["credentialType"],
    }  # fmt: skip
    assert body["config"]["type"] == "DataSourceS3Config"
    assert body["config"]["dataSourceType"] == "S3Config"
    assert body["permissions"] == {"isEveryone": False, "userIds": [bob.id]}  # dstrail's own
    assert body["createdBy"] == {"id": alice.id, "username": alice.user.username}
    assert (body["addedBy"], body["addedToProjectTimeMap"], body["lastAccessed"]) == ({}, {}, {})
    assert "adminInfo" not in body


def test_the_lookup_maps_each_project_and_shows_admins_the_projects(
    client: TestClient, dstrail: Dstrail, admin: Login, alice: Login, bob: Login,
    clock: SettableClock,
) -> None:  # fmt: skip
    ds = _create(
        client, alice, "mapped", permissions={"isEveryone": False, "userIds": [bob.id, admin.id]}
    )
    projects = {}
    for owner in (alice, bob):
        created = client.post(
            "/api/dstrail/v1/projects", json={"name": f"p-{owner.user.username}"},
            headers=owner.headers,
        )  # fmt: skip
        assert created.status_code == 201, created.text
        projects[owner.user.username] = created.json()["id"]
    added_at = {}
    for owner in (alice, bob):
        clock.advance(1000)
        project_id = projects[owner.user.username]
        attach = client.post(
            f"/v4/datasource/{ds['id']}/projects/{project_id}", headers=owner.headers
        )
        assert attach.status_code == 200, attach.text
        added_at[project_id] = dstrail.clock()
    run = client.post(
        "/api/dstrail/v1/runs", json={"projectId": projects["bob"], "runType": "Batch"},
        headers=bob.headers,
    )  # fmt: skip
    assert run.status_code == 201, run.text
    clock.advance(1000)
    run_header = {**bob.headers, "X-Domino-Run-Id": run.json()["id"]}
    body = {"datasourceId": ds["id"], "objectKey": "k", "isReadWrite": False}
    assert client.post("/objectstore/key", json=body, headers=run_header).status_code == 200
    used_at = dstrail.clock()
    clock.advance(1000)
    assert _key(client, bob, ds["id"], "k", False).status_code == 200  # from no run: no project

    body = client.get("/v4/datasource/name/mapped", headers=alice.headers).json()
    assert body["addedBy"] == {projects["alice"]: "alice", projects["bob"]: "bob"}
    assert body["addedToProjectTimeMap"] == added_at
    assert body["lastAccessed"] == {projects["alice"]: 0, projects["bob"]: used_at}
    assert set(body["projectIds"]) == set(projects.values())
    assert "adminInfo" not in body
    seen = client.get("/v4/datasource/name/mapped", headers=admin.headers).json()
    assert seen["adminInfo"] == {
        "projectNames": {projects["alice"]: "p-alice", projects["bob"]: "p-bob"},
        "projectIdOwnerUsernameMap": {projects["alice"]: "alice", projects["bob"]: "bob"},
        "projectLastActiveMap": {
            projects["alice"]: format_ms(added_at[projects["alice"]]),  # its newest: the attach
            projects["bob"]: format_ms(used_at),
        },
    }


def test_an_overwritten_host_or_region_s3_cannot_take_is_invalid_and_records_nothing(
    client: TestClient, alice: Login, dstrail: Dstrail
) -> None:
    generic = _create(
        client, alice, "generic", dataSourceType="GenericS3Config",
        config={"bucket": "b", "host": "s3.example.com"},
    )  # fmt: skip
    before = audit_count(dstrail)
    for overwrites, message in (
        ({"host": "https://::::"}, "config: 'host' or 'region' is not usable by S3"),
        ({"host": "ftp://files.example.com"}, "must be an http(s) URL or a host name"),
        ({"region": "not a region"}, "config: 'host' or 'region' is not usable by S3"),
    ):
        response = _key(client, alice, generic["id"], "k", False, configOverwrites=overwrites)
        assert response.status_code == 400, overwrites
        assert response.json()["errorType"] == "invalidRequestError"
        assert message in response.json()["rawError"]
    assert audit_count(dstrail) == before
