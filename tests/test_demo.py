"""``dstrail demo`` (``make run``): the reference's samples answer as the reference shows, and
the history verifies with a handful of checkpoints, not one per historic event."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from dstrail.audit.verify import verify_store
from dstrail.context import Dstrail
from dstrail.demo import ADMIN_USERNAME, load_demo
from tests.api.test_reference_samples import FILTERED_REQUEST


def _without_ids(event: dict[str, Any]) -> dict[str, Any]:
    kept = {k: v for k, v in event.items() if k not in ("dataSourceId", "performedBy")}
    metadata = {k: v for k, v in event["metadata"].items() if k not in ("projectId", "runId")}
    return {**kept, "metadata": metadata}


def test_the_demo_answers_the_reference_samples(client: TestClient, dstrail: Dstrail) -> None:
    login = load_demo(dstrail)
    assert login.created and login.admin_username == ADMIN_USERNAME
    headers = {"X-Domino-Api-Key": login.admin_api_key}
    filtered = client.get(FILTERED_REQUEST, headers=headers)
    assert filtered.status_code == 200, filtered.text
    access = {
        "eventKind": "AccessDataSource",
        "metadata": {
            "runType": "Workspace",
            "dataPlaneId": "000000000000000000000000",
            "performedByUsername": "sample-user",
            "clientSource": "Python",
            "operation": "getDataSource",
        },
    }
    assert [_without_ids(e) for e in filtered.json()] == [
        {
            **access,
            "dataSourceName": "s3-ds",
            "dataSourceType": "S3Config",
            "timestamp": "2023-08-21T21:30:05.439Z",
        },
        {
            **access,
            "dataSourceName": "snowflake-ds",
            "dataSourceType": "SnowflakeConfig",
            "timestamp": "2023-02-05T21:40:01.449Z",
        },
    ]
    unfiltered = client.get(
        "/api/datasource/v1/audit",
        params={"startTime": "2023-08-21T00:00:00.000Z", "endTime": "2023-08-25T00:00:00.000Z"},
        headers=headers,
    ).json()
    assert [(e["eventKind"], e["dataSourceName"], e["timestamp"]) for e in unfiltered] == [
        ("DeleteDataSource", "snowflake-ds", "2023-08-23T21:40:21.669Z"),
        ("AccessDataSource", "s3-ds", "2023-08-21T21:30:05.439Z"),
    ]


def test_the_demo_history_verifies_with_few_checkpoints(dstrail: Dstrail) -> None:
    load_demo(dstrail)
    with dstrail.store.read() as tx:
        events = tx.audit.size()
        checkpoints = len(tx.integrity.checkpoints())
    assert events > 400
    assert checkpoints <= events // 1000 + 2, (events, checkpoints)
    report = verify_store(dstrail.store, public_key=dstrail.signer.public_raw)
    assert report.ok, report.text()
    again = load_demo(dstrail)  # later runs only issue a fresh key
    assert not again.created
