"""The forensics routes: SysAdmins and Auditors only (a refusal recorded), 400 naming what is
accepted, 404 for an unknown subject, each answer recorded as a read of the trail (surface
``forensics``), a failure to record it answering 503 with nothing; documented in OpenAPI."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from dstrail.context import Dstrail
from dstrail.domain.datasources import Permissions
from dstrail.domain.timestamps import format_ms
from dstrail.domain.users import Role
from dstrail.services import datasources as ds_service
from tests.api.test_trail_reads import one_read, reads, recording_refused
from tests.support import Login, SettableClock, create_dataset, make_user

ENTITLEMENTS = "/api/dstrail/v1/forensics/entitlements"
TIMELINE = "/api/dstrail/v1/forensics/timeline"


@pytest.fixture
def auditor(dstrail: Dstrail) -> Login:
    return make_user(dstrail, "audrey", Role.AUDITOR)


def test_sysadmins_and_auditors_ask_and_each_answer_is_recorded(
    client: TestClient,
    dstrail: Dstrail,
    clock: SettableClock,
    admin: Login,
    auditor: Login,
    alice: Login,
    bob: Login,
) -> None:
    ds = create_dataset(
        dstrail, alice, "payroll", permissions=Permissions(is_everyone=False, user_ids=(bob.id,))
    )
    at = format_ms(clock())
    for login in (admin, auditor):
        with one_read(dstrail) as found:
            response = client.get(
                ENTITLEMENTS, params={"dataSourceName": "payroll", "at": at}, headers=login.headers
            )
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        assert body["subject"] == "dataSource" and body["dataSource"]["id"] == ds.id
        assert body["at"] == at and body["dataSource"]["status"] == "Active"
        assert [(g["via"], g["subjectId"], g["granted"]["eventKind"]) for g in body["grants"]] == [
            ("owner", alice.id, "CreateDataSource"),
            ("user", bob.id, "CreateDataSource"),
        ]
        assert body["grants"][0]["granted"]["performedByUsername"] == "alice"
        assert {u["username"]: u["via"] for u in body["users"]} == {
            "alice": ["owner"], "bob": ["user"]
        }  # fmt: skip
        [read] = found
        assert read["surface"] == "forensics" and read["path"] == ENTITLEMENTS
        assert read["performedBy"] == login.id and read["rows"] == "2"
        assert read["filter"] == {"dataSourceName": "payroll", "at": at, "atSeq": body["atSeq"]}

    with one_read(dstrail) as found:
        mine = client.get(ENTITLEMENTS, params={"username": "bob"}, headers=auditor.headers)
    assert mine.status_code == 200, mine.text
    [entry] = mine.json()["dataSources"]
    assert entry["dataSourceName"] == "payroll" and entry["grants"][0]["via"] == "user"
    assert mine.json()["user"] == {
        "id": bob.id, "username": "bob", "role": "User",
        "createdSeq": mine.json()["user"]["createdSeq"], "createdAt": mine.json()["user"]["createdAt"],
        "existed": True,
    }  # fmt: skip

    with dstrail.store.write() as tx:
        ds_service.update_data_source(
            tx, dstrail.vault, data_source_id=ds.id, actor=alice.user, now_ms=clock(),
            change=ds_service.DataSourceUpdate(description="who earns what"),
        )  # fmt: skip
    with one_read(dstrail) as found:
        line = client.get(
            TIMELINE, params={"dataSourceId": ds.id, "limit": "1"}, headers=admin.headers
        )
    assert line.status_code == 200, line.text
    page = line.json()
    assert [e["eventKind"] for e in page["entries"]] == ["CreateDataSource"]
    assert page["entries"][0]["category"] == "grantChange" and page["next"] is not None
    assert found[0]["rows"] == "1" and found[0]["filter"]["dataSourceId"] == ds.id
    following = client.get(
        TIMELINE, params={"dataSourceId": ds.id, "after": str(page["next"])}, headers=admin.headers
    ).json()
    assert [(e["eventKind"], e["category"]) for e in following["entries"]] == [
        ("UpdateDataSource", "change")
    ]


def test_other_users_are_refused_and_the_refusal_is_recorded(
    client: TestClient, dstrail: Dstrail, alice: Login
) -> None:
    for path in (ENTITLEMENTS, TIMELINE):
        with one_read(dstrail) as found:
            response = client.get(path, params={"username": "alice"}, headers=alice.headers)
        assert response.status_code == 403
        assert set(response.json()) == {"requestId", "errors"}
        assert found[0]["refused"] == "true" and found[0]["rows"] == "0"
    before = len(reads(dstrail))
    assert client.get(ENTITLEMENTS, params={"username": "alice"}).status_code == 401
    assert len(reads(dstrail)) == before


@pytest.mark.parametrize(
    ("path", "params", "says"),
    [
        (ENTITLEMENTS, {}, "give exactly one of dataSourceId, dataSourceName, userId, username"),
        (ENTITLEMENTS, {"username": "a", "userId": "b" * 24}, "give exactly one of"),
        (ENTITLEMENTS, {"username": "a", "at": "yesterday"}, "at: cannot parse 'yesterday'; accepted: ISO-8601"),
        (ENTITLEMENTS, {"username": "a", "at": "1", "atSeq": "2"}, "give at or atSeq, not both"),
        (ENTITLEMENTS, {"username": "a", "atSeq": "-1"}, "atSeq: '-1' is not accepted; accepted: 0 to"),
        (ENTITLEMENTS, {"dataSourceId": "nope"}, "dataSourceId: 'nope' is not an id"),
        (ENTITLEMENTS, {"username": "a", "when": "now"}, "unknown parameter 'when'; accepted: dataSourceId"),
        (TIMELINE, {"runId": "r"}, "runId: 'r' is not an id"),
        (TIMELINE, {"username": "a", "limit": "0"}, "limit: '0' is not accepted; accepted: 1 to 1000"),
        (TIMELINE, {"username": "a", "from": "2026-02-01T00:00:00Z", "to": "2026-01-01T00:00:00Z"}, "from must not be after to"),
        (TIMELINE, {"username": "a", "after": "x"}, "after: 'x' is not accepted"),
    ],
)  # fmt: skip
def test_bad_input_is_a_400_that_says_what_is_accepted_and_records_nothing(
    client: TestClient, dstrail: Dstrail, admin: Login, path: str, params: dict[str, str], says: str
) -> None:
    before = len(reads(dstrail))
    response = client.get(path, params=params, headers=admin.headers)
    assert response.status_code == 400, response.text
    [error] = response.json()["errors"]
    assert says in error
    assert len(reads(dstrail)) == before


@pytest.mark.parametrize(
    ("path", "params"),
    [
        (ENTITLEMENTS, {"dataSourceId": "f" * 24}),
        (ENTITLEMENTS, {"dataSourceName": "never-made"}),
        (ENTITLEMENTS, {"username": "nobody"}),
        (TIMELINE, {"runId": "f" * 24}),
        (TIMELINE, {"userId": "f" * 24}),
    ],
)
def test_an_unknown_subject_is_a_404_and_records_nothing(
    client: TestClient, dstrail: Dstrail, admin: Login, path: str, params: dict[str, str]
) -> None:
    before = len(reads(dstrail))
    response = client.get(path, params=params, headers=admin.headers)
    assert response.status_code == 404, response.text
    assert len(reads(dstrail)) == before


def test_an_answer_that_cannot_be_recorded_is_not_given(
    client: TestClient, dstrail: Dstrail, admin: Login
) -> None:
    with recording_refused(dstrail):
        response = client.get(
            ENTITLEMENTS, params={"username": "sample-admin"}, headers=admin.headers
        )
    assert response.status_code == 503
    assert "could not be recorded" in response.json()["errors"][0]


def test_the_routes_are_documented(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    for path in (ENTITLEMENTS, TIMELINE):
        operation = schema["paths"][path]["get"]
        assert {"400", "401", "403", "404", "503"} <= set(operation["responses"])
        names = {p["name"] for p in operation["parameters"]}
        assert {"userId", "username", "dataSourceId"} <= names
    assert {"at", "atSeq", "dataSourceName"} <= {
        p["name"] for p in schema["paths"][ENTITLEMENTS]["get"]["parameters"]
    }
    assert {"from", "to", "limit", "after", "runId"} <= {
        p["name"] for p in schema["paths"][TIMELINE]["get"]["parameters"]
    }
    models = schema["components"]["schemas"]
    assert {"DataSourceEntitlementsRead", "UserEntitlementsRead", "TimelineRead"} <= set(models)
