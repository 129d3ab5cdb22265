"""The real client against ``dstrail serve``: name lookup and object stores, each audited."""

from __future__ import annotations

import httpx

from tests.client.conftest import BUCKET, GENERIC_BUCKET, World, now_iso, s3_client

RUN_KEYS = ("runType", "projectId", "runId", "dataPlaneId")


def test_get_datasource_returns_the_dto_and_records_the_lookup(world: World) -> None:
    since = now_iso()
    [result] = world.client(world.env("alice", run="alice"), ["get_datasource", "s3-ds"])
    assert result["ok"] == {
        "id": world.ds_ids["s3-ds"],
        "name": "s3-ds",
        "type": "S3Config",
        "owner": "alice",
        # as from Domino: the config's own type and data source type come with it
        "config": {
            "type": "DataSourceS3Config", "dataSourceType": "S3Config", "bucket": BUCKET,
            "region": "us-east-1",
        },
    }  # fmt: skip
    [event] = world.events(since, names=("s3-ds",))
    assert event["metadata"] == {
        "performedByUsername": "alice",
        "runType": "Workspace",
        "projectId": world.project_id,
        "runId": world.runs["alice"],
        "dataPlaneId": "000000000000000000000000",
        "clientSource": "Python",
        "operation": "getDataSource",
    }
    assert event["performedBy"] == world.user_ids["alice"]


def test_get_datasource_errors_are_clear(world: World) -> None:
    since = now_iso()
    unknown, forbidden = world.client(
        world.env("carol"), ["get_datasource", "no-such-ds"], ["get_datasource", "private-ds"]
    )
    assert unknown["error"] == "Exception: Datasource with name no-such-ds does not exist"
    assert "user 'carol' may not use data source 'private-ds'" in forbidden["error"]
    assert world.events(since) == []
    [refused] = world.events(since, "AccessDataSourceRefused")
    assert refused["dataSourceName"] == "private-ds"
    assert refused["metadata"]["reason"] == "notPermitted"
    assert refused["metadata"]["operation"] == "getDataSource"


def test_dataset_files_through_signed_urls(world: World) -> None:
    since = now_iso()
    results = world.client(
        world.env("bob", run="bob"),
        ["get", "dataset-ds", "reports/q1.csv"],
        ["list", "dataset-ds", "reports/"],
        ["put", "dataset-ds", "out/result.txt", "written by bob"],
        ["download_file", "dataset-ds", "out/result.txt"],
        ["upload_file", "dataset-ds", "out/uploaded.txt", "uploaded"],
        ["download_fileobj", "dataset-ds", "out/uploaded.txt"],
        ["download", "dataset-ds", "readme.txt"],
        ["list", "dataset-ds", ""],
    )
    assert [r.get("error") for r in results] == [None] * len(results)
    assert results[0]["ok"] == "quarter,revenue\nq1,100\n"
    assert results[1]["ok"] == ["reports/q1.csv", "reports/q2.csv"]
    assert results[3]["ok"] == "written by bob"
    assert results[5]["ok"] == "uploaded"
    assert results[6]["ok"] == "demo dataset"
    assert results[7]["ok"] == [
        "out/result.txt", "out/uploaded.txt", "readme.txt", "reports/q1.csv", "reports/q2.csv"
    ]  # fmt: skip
    events = world.events(since, names=("dataset-ds",))
    access = [
        e["metadata"] for e in reversed(events) if e["metadata"]["operation"] != "getDataSource"
    ]
    assert [(m["operation"], m.get("objectKey", m.get("prefix")), m.get("isReadWrite")) for m in access] == [
        ("objectKey", "reports/q1.csv", "false"),
        ("listObjects", "reports/", None),
        ("objectKey", "out/result.txt", "true"),
        ("objectKey", "out/result.txt", "false"),
        ("objectKey", "out/uploaded.txt", "true"),
        ("objectKey", "out/uploaded.txt", "false"),
        ("objectKey", "readme.txt", "false"),
        ("listObjects", "", None),
    ]  # fmt: skip
    for metadata in access:
        assert metadata["runId"] == world.runs["bob"]
        assert metadata["runType"] == "Batch"
        assert metadata["clientSource"] == "Python"


def test_s3_through_presigned_urls(world: World, moto_url: str) -> None:
    since = now_iso()
    results = world.client(
        world.env("alice", run="alice-model", DOMINO_CLIENT_SOURCE="R"),
        ["get", "s3-ds", "data/seed.csv"],
        ["put", "s3-ds", "out/model.bin", "weights"],
        ["upload_file", "s3-ds", "out/file.txt", "from a file"],
        ["download_file", "s3-ds", "out/file.txt"],
        ["download_fileobj", "s3-ds", "out/model.bin"],
        ["list", "s3-ds", "out/"],
    )
    assert [r.get("error") for r in results] == [None] * len(results)
    assert results[0]["ok"] == "a,b\n1,2\n"
    assert results[3]["ok"] == "from a file"
    assert results[4]["ok"] == "weights"
    assert results[5]["ok"] == ["out/file.txt", "out/model.bin"]
    stored = s3_client(moto_url).get_object(Bucket=BUCKET, Key="out/model.bin")
    assert stored["Body"].read() == b"weights"
    events = world.events(since, names=("s3-ds",))
    proxied = [e["metadata"] for e in events if e["metadata"]["operation"] != "getDataSource"]
    assert len(proxied) == 6
    assert {m["clientSource"] for m in proxied} == {"R"}
    assert {m["runType"] for m in proxied} == {"Endpoint"}
    assert {m["runId"] for m in proxied} == {world.runs["alice-model"]}
    assert "moto-secret-value" not in str(events)


def test_generic_s3_with_individual_credentials(world: World, moto_url: str) -> None:
    ds_id = world.ds_ids["generic-s3-ds"]
    [missing] = world.client(world.env("bob"), ["get", "generic-s3-ds", "raw/seed.txt"])
    assert "uses Individual credentials and user 'bob' has none stored" in missing["error"]
    stored = httpx.put(
        f"{world.base_url}/api/datasource/v1/datasources/{ds_id}/credentials",
        json={"credentials": {"accessKeyID": "AKIABOB", "secretAccessKey": "bob-secret-value"}},
        headers={"X-Domino-Api-Key": world.keys["bob"]},
    )
    assert stored.status_code == 200, stored.text
    assert stored.json() == {
        "dataSourceId": ds_id,
        "credentialType": "Individual",
        "fields": ["accessKeyID", "secretAccessKey"],
        "userId": world.user_ids["bob"],
    }
    since = now_iso()
    got, listed, put = world.client(
        world.env("bob"),
        ["get", "generic-s3-ds", "raw/seed.txt"],
        ["list", "generic-s3-ds", "raw/se"],
        ["put", "generic-s3-ds", "raw/new.txt", "via generic"],
    )
    assert got == {"ok": "generic seed"}
    assert listed == {"ok": ["raw/seed.txt"]}
    assert put == {"ok": None}
    body = s3_client(moto_url).get_object(Bucket=GENERIC_BUCKET, Key="team/raw/new.txt")["Body"]
    assert body.read() == b"via generic"
    events = world.events(since, names=("generic-s3-ds",))
    assert {e["metadata"]["operation"] for e in events} == {
        "getDataSource",
        "objectKey",
        "listObjects",
    }
    assert all(not set(e["metadata"]) & set(RUN_KEYS) for e in events)  # outside any run
    audit = world.events("2000-01-01T00:00:00Z", "DataSourceCredentialsUpdated")
    assert audit[0]["metadata"]["credentialUserId"] == world.user_ids["bob"]
    assert "bob-secret-value" not in str(audit)


def test_config_overwrites_from_ds_update_are_served_and_recorded(world: World) -> None:
    since = now_iso()
    update = ["update_then", "dataset-ds", "DatasetConfig", {"subfolder": "reports"}]
    listed, read = world.client(
        world.env("alice"),
        [*update, ["list", "dataset-ds", ""]],
        [*update, ["get", "dataset-ds", "q1.csv"]],
    )
    assert listed == {"ok": ["q1.csv", "q2.csv"]}
    assert read == {"ok": "quarter,revenue\nq1,100\n"}
    recorded = [e["metadata"] for e in world.events(since) if "configOverwrites" in e["metadata"]]
    assert [(m["operation"], m["configOverwrites"]) for m in reversed(recorded)] == [
        ("listObjects", '{"subfolder":"reports"}'),
        ("objectKey", '{"subfolder":"reports"}'),
    ]


def test_a_data_source_that_forbids_overwrites_refuses_them_and_records_it(world: World) -> None:
    url = f"{world.base_url}/api/datasource/v1/datasources/{world.ds_ids['dataset-ds']}"
    owner = {"X-Domino-Api-Key": world.keys["alice"]}

    def allow(allowed: bool) -> None:
        body = {"configOverwritesAllowed": allowed}
        assert httpx.patch(url, json=body, headers=owner, timeout=10).status_code == 200

    allow(False)
    try:
        since = now_iso()
        refused, plain = world.client(
            world.env("bob"),
            ["update_then", "dataset-ds", "DatasetConfig", {"subfolder": "reports"},
             ["list", "dataset-ds", ""]],
            ["list", "dataset-ds", "reports/"],
        )  # fmt: skip
    finally:
        allow(True)
    assert refused == {
        "error": "Exception: credentialsError: data source 'dataset-ds' does not accept "
        "configOverwrites: its owner turned them off; call without them"
    }
    assert plain == {"ok": ["reports/q1.csv", "reports/q2.csv"]}
    [refusal] = world.events(since, "AccessDataSourceRefused")
    assert refusal["performedBy"] == world.user_ids["bob"]
    assert refusal["metadata"]["reason"] == "configOverwritesForbidden"
    assert refusal["metadata"]["configOverwrites"] == '{"subfolder":"reports"}'
    changes = world.events(since, "UpdateDataSource")
    assert [c["metadata"]["configOverwritesAllowed"] for c in changes] == ["true"]
