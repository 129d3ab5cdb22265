"""The read-only Auditor: reads every data source and the trail, changes nothing."""

from __future__ import annotations

from fastapi.testclient import TestClient

from dstrail.context import Dstrail
from dstrail.domain.users import Role
from tests.support import Login, audit_count, data_source_body, make_user


def test_an_auditor_reads_everything_and_changes_nothing(
    client: TestClient, dstrail: Dstrail, alice: Login, bob: Login
) -> None:
    auditor = make_user(dstrail, "auditor", Role.AUDITOR)
    created = client.post(
        "/api/datasource/v1/datasources",
        json=data_source_body("alice-private"),
        headers=alice.headers,
    )
    assert created.status_code == 201, created.text
    ds_id = created.json()["id"]

    listed = client.get("/api/datasource/v1/datasources", headers=auditor.headers)
    assert [d["name"] for d in listed.json()] == ["alice-private"]
    assert (
        client.get(f"/api/datasource/v1/datasources/{ds_id}", headers=auditor.headers).status_code
        == 200
    )
    assert client.get("/api/datasource/v1/audit", headers=auditor.headers).status_code == 200
    # bob, a plain user who may not use it, still cannot see it
    assert (
        client.get(f"/api/datasource/v1/datasources/{ds_id}", headers=bob.headers).status_code
        == 404
    )

    before = audit_count(dstrail)
    refused = [
        client.delete(f"/api/datasource/v1/datasources/{ds_id}", headers=auditor.headers),
        client.patch(
            f"/api/datasource/v1/datasources/{ds_id}",
            json={"description": "changed"},
            headers=auditor.headers,
        ),
        client.put(
            f"/v4/datasource/{ds_id}/users",
            json={"isEveryone": True, "userIds": []},
            headers=auditor.headers,
        ),
        client.post(f"/v4/datasource/{ds_id}/transfer/{auditor.id}", headers=auditor.headers),
    ]
    assert [r.status_code for r in refused] == [403, 403, 403, 403]
    assert audit_count(dstrail) == before + 4  # one DataSourceChangeRefused each, nothing else
    after = client.get(f"/api/datasource/v1/datasources/{ds_id}", headers=alice.headers).json()
    assert after == created.json()
