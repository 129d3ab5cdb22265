"""What the unmodified client raises when dstrail refuses, and that each refusal is recorded.

The client reads 200, 400 and 500 on the proxy (401 it retries); Domino answers refusals and
missing things with 400 and ``{"errorType", "subType", "rawError"}``, and the client raises
``Exception("<errorType>: <rawError>")``.
"""

from __future__ import annotations

import pytest

from tests.client.conftest import World, now_iso


@pytest.mark.parametrize(
    ("case", "user", "run", "data_source", "key", "error", "reason"),
    [
        (
            "not permitted", "carol", None, "private-ds", "readme.txt",
            "Exception: credentialsError: user 'carol' may not use data source 'private-ds'",
            "notPermitted",
        ),
        (
            "another user's run", "alice", "bob", "dataset-ds", "readme.txt",
            "Exception: credentialsError: run '{run}' was not started by user 'alice'",
            "runOfAnotherUser",
        ),
        (
            "ended run", "alice", "alice-ended", "dataset-ds", "readme.txt",
            "Exception: credentialsError: run '{run}' has ended",
            "runEnded",
        ),
        (
            "deleted data source", "alice", None, "gone-ds", "readme.txt",
            "Exception: notFoundError: no data source with id '{id}'",
            "deleted",
        ),
    ],
)  # fmt: skip
def test_each_refusal_reaches_the_client_as_domino_words_it_and_is_recorded(
    world: World,
    case: str,
    user: str,
    run: str | None,
    data_source: str,
    key: str,
    error: str,
    reason: str,
) -> None:
    since = now_iso()
    ds_id = world.ds_ids[data_source]
    [result] = world.client(world.env(user, run=run), ["key_url", ds_id, key])
    assert result == {"error": error.format(run=world.runs.get(run or "", ""), id=ds_id)}, case
    assert world.events(since) == []
    [refused] = world.events(since, "AccessDataSourceRefused")
    assert refused["dataSourceId"] == ds_id
    assert refused["performedBy"] == world.user_ids[user]
    assert (refused["metadata"]["reason"], refused["metadata"]["objectKey"]) == (reason, key)


def test_an_unknown_key_is_not_found_for_the_client(world: World) -> None:
    since = now_iso()
    ds_id = world.ds_ids["dataset-ds"]
    [result] = world.client(world.env("alice"), ["key_url", ds_id, "reports/q9.csv"])
    assert result == {
        "error": "Exception: notFoundError: no object 'reports/q9.csv' in data source 'dataset-ds'"
    }
    # nothing was handed out, so nothing is recorded: the access's event was rolled back with it
    assert world.events(since) == []
    assert world.events(since, "AccessDataSourceRefused") == []
