"""End to end through HTTP: a change records its event and the audit API returns it."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.support import DOMINO_EVENT_FIELDS, Login, data_source_body


def test_create_is_audited_and_readable(client: TestClient, admin: Login, alice: Login) -> None:
    created = client.post(
        "/api/datasource/v1/datasources", json=data_source_body("s3-ds"), headers=alice.headers
    )
    assert created.status_code == 201, created.text
    assert "credentials" not in created.json()
    response = client.get("/api/datasource/v1/audit", headers=admin.headers)
    assert response.status_code == 200
    events = response.json()
    assert [e["eventKind"] for e in events] == ["CreateDataSource"]
    assert events[0]["metadata"] == {
        "performedByUsername": "alice",
        "credentialType": "Shared",
        "isEveryone": "false",
        "ownerId": alice.id,
        "userIds": "",
        "projectIds": "",
    }
    assert set(events[0]) == DOMINO_EVENT_FIELDS
    assert "s3cr3t" not in response.text
