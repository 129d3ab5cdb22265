"""Attribution cannot be forged: run ids are checked against the runs dstrail knows."""

from __future__ import annotations

import httpx
import pytest

from tests.client.conftest import World, now_iso

RUN_KEYS = {"runType", "projectId", "runId", "dataPlaneId"}


def test_a_run_token_attributes_to_its_run(world: World) -> None:
    since = now_iso()
    with_id, without_id = (
        world.client(
            world.env(None, run="alice", token_of="alice"), ["get", "dataset-ds", "readme.txt"]
        ),
        world.client(world.env(None, token_of="alice"), ["list", "dataset-ds", "reports/"]),
    )
    assert with_id == [{"ok": "demo dataset"}]
    assert without_id == [{"ok": ["reports/q1.csv", "reports/q2.csv"]}]
    events = world.events(since)
    assert len(events) == 4  # two lookups, one signed URL, one listing
    for event in events:
        assert event["metadata"]["runId"] == world.runs["alice"]
        assert event["metadata"]["projectId"] == world.project_id
        assert event["performedBy"] == world.user_ids["alice"]


@pytest.mark.parametrize(
    ("user", "run", "token_of", "reason", "message"),
    [
        ("alice", "bob", None, "runOfAnotherUser", "was not started by user 'alice'"),
        ("alice", "alice-ended", None, "runEnded", "has ended"),
        ("alice", "0123456789abcdef01234567", None, "unknownRun", "is not known"),
        (None, "alice-model", "alice", "runTokenMismatch", "does not match the run of the token"),
    ],
)
def test_forged_or_stale_runs_are_refused_and_recorded(
    world: World, user: str | None, run: str, token_of: str | None, reason: str, message: str
) -> None:
    since = now_iso()
    [result] = world.client(
        world.env(user, run=run, token_of=token_of), ["get_datasource", "dataset-ds"]
    )
    assert message in result["error"]
    assert world.events(since) == []
    [refused] = world.events(since, "AccessDataSourceRefused")
    assert refused["metadata"]["reason"] == reason
    assert refused["metadata"]["claimedRunId"] == world.runs.get(run, run)
    assert not RUN_KEYS & set(refused["metadata"])


def test_the_proxy_refuses_as_domino_does_and_records(world: World) -> None:
    since = now_iso()
    response = httpx.post(
        world.base_url + "/objectstore/key",
        json={
            "datasourceId": world.ds_ids["dataset-ds"],
            "objectKey": "readme.txt",
            "isReadWrite": False,
        },
        headers={"X-Domino-Api-Key": world.keys["bob"], "X-Domino-Run-Id": world.runs["alice"]},
    )
    assert response.status_code == 400  # the only refusal status Domino's client reads
    assert response.json() == {
        "errorType": "credentialsError",
        "subType": "runOfAnotherUser",
        "rawError": f"run {world.runs['alice']!r} was not started by user 'bob'",
    }
    [refused] = world.events(since, "AccessDataSourceRefused")
    assert refused["metadata"]["operation"] == "objectKey"
    assert refused["metadata"]["objectKey"] == "readme.txt"
    assert world.events(since) == []


def test_access_outside_a_run_has_no_run_keys(world: World) -> None:
    since = now_iso()
    [result] = world.client(world.env("bob"), ["get", "dataset-ds", "reports/q2.csv"])
    assert result == {"ok": "quarter,revenue\nq2,120\n"}
    events = world.events(since)
    assert [e["metadata"]["operation"] for e in events] == ["objectKey", "getDataSource"]
    for event in events:
        assert not RUN_KEYS & set(event["metadata"])
        assert event["metadata"]["clientSource"] == "Python"
