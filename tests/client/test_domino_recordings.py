"""The 53 requests Domino's own client recorded against a real Domino, replayed on dstrail.

``domino_recordings.RECORDINGS`` holds what Domino answered (status, shape, ``errorType``,
keys); this module creates what the recordings name through dstrail's public HTTP API, sends
each request as recorded with plain httpx and asserts those facts, plus, for every 200 lookup,
the keys and types of Domino's data source DTO. Nothing is read from the cassettes at run time.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import httpx
import pytest

from tests.client.conftest import World, now_iso, s3_client
from tests.client.domino_recordings import (
    BOTH,
    DATASET_DS,
    HAND_EDITS,
    NO_CREDENTIALS,
    RECORDINGS,
    REDSHIFT,
    S3,
    Recording,
)

BUCKET = "s3regression"
REGION = "us-west-2"
S3_KEYS = {"accessKeyID": "AKIATESTING", "secretAccessKey": "moto-secret-value"}
BY_ID = {recording.id: recording for recording in RECORDINGS}

UNLISTABLE = os.fsdecode(b"listing-\xff.csv")
"""A file name that is not UTF-8: no JSON listing can name it, so the listing fails for real,
as Domino's "Error listing files" did (dstrail names the file). Making the dataset's directory
unreadable cannot fail it (the tests run as root, and ``os.walk`` skips what it cannot read),
nor can replacing the directory with a file (an absent directory lists as ``[]``)."""

DTO_KEYS = frozenset(
    {
        "id", "name", "ownerId", "ownerInfo", "addedBy", "authType", "dataSourceType", "config",
        "credentialType", "lastUpdated", "lastUpdatedBy", "lastAccessed",
        "addedToProjectTimeMap", "isEveryone", "userIds", "projectIds", "status",
    }
)  # fmt: skip
"""Top-level keys of every lookup Domino recorded (``description`` only of some)."""


@dataclass(frozen=True, slots=True)
class Recorded:
    """The data sources the recordings name, as created on this module's dstrail."""

    world: World
    moto_url: str
    ids: dict[str, str]
    specs: dict[str, dict[str, Any]]
    dataset_dir: Path


def _specs(world: World) -> dict[str, dict[str, Any]]:
    def spec(
        name: str,
        kind: str,
        auth: str,
        credential_type: str,
        config: dict[str, str],
        credentials: dict[str, str] | None,
        user_ids: list[str],
    ) -> dict[str, Any]:
        return {
            "name": name, "dataSourceType": kind, "authType": auth,
            "credentialType": credential_type, "config": config, "credentials": credentials,
            "permissions": {"isEveryone": False, "userIds": user_ids},
        }  # fmt: skip

    s3_config = {"bucket": BUCKET, "region": REGION}
    redshift = {"host": "redshift-regression.example.com", "port": "5439", "database": "dev"}
    return {
        # admin is listed so that a SysAdmin's lookup (with adminInfo) is allowed too
        S3: spec(
            S3, "S3Config", "AWSIAMBasic", "Shared", s3_config, S3_KEYS, [world.user_ids["admin"]]
        ),
        REDSHIFT: spec(
            REDSHIFT,
            "RedshiftConfig",
            "Basic",
            "Shared",
            redshift,
            {"username": "sdk", "password": "redshift-test-password"},
            [],
        ),
        DATASET_DS: spec(DATASET_DS, "DatasetConfig", "NoAuth", "Individual", {}, None, []),
        # Individual credentials and none stored for anybody
        NO_CREDENTIALS: spec(
            NO_CREDENTIALS, "S3Config", "AWSIAMBasic", "Individual", s3_config, None, []
        ),
    }


def _as(world: World, user: str) -> dict[str, str]:
    return {"X-Domino-Api-Key": world.keys[user]}


@pytest.fixture(scope="module")
def recorded(world: World, moto_url: str) -> Recorded:
    """The bucket, the dataset files and the four data sources, created through the API by
    alice and (but for ``no-credentials-s3``) attached to her project."""
    s3 = s3_client(moto_url)
    if BUCKET not in {b["Name"] for b in s3.list_buckets()["Buckets"]}:  # one per session
        s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
    for name in BOTH:
        s3.put_object(Bucket=BUCKET, Key=name, Body=b"Pregnancies,Glucose\n2,138\n")
    specs = _specs(world)
    ids: dict[str, str] = {}
    for name, spec in specs.items():
        created = httpx.post(
            world.base_url + "/api/datasource/v1/datasources",
            json=spec,
            headers=_as(world, "alice"),
            timeout=10,
        )
        assert created.status_code == 201, created.text
        ids[name] = created.json()["id"]
        if name == NO_CREDENTIALS:
            continue
        attached = httpx.post(
            f"{world.base_url}/v4/datasource/{ids[name]}/projects/{world.project_id}",
            headers=_as(world, "alice"),
            timeout=10,
        )
        assert attached.status_code == 200, attached.text
    dataset_dir = world.settings.data_dir / "datasets" / ids[DATASET_DS]
    dataset_dir.mkdir(parents=True, exist_ok=True)
    for name in BOTH:
        (dataset_dir / name).write_text("Pregnancies,Glucose\n2,138\n")
    return Recorded(world, moto_url, ids, specs, dataset_dir)


def _send(recorded: Recorded, recording: Recording) -> httpx.Response:
    world = recorded.world
    if recording.auth == "jwt":
        headers = {"Authorization": f"Bearer {world.tokens[recording.caller]}"}
    elif recording.auth == "invalidKey":
        headers = {"X-Domino-Api-Key": "NOTAKEY"}
    else:
        headers = _as(world, recording.caller)
    body = None
    if recording.body is not None:
        body = {"datasourceId": recorded.ids[recording.data_source], **recording.body}
    return httpx.request(
        recording.method, world.base_url + recording.path, json=body, headers=headers, timeout=30
    )


@contextmanager
def _staged(recorded: Recorded, recording: Recording) -> Iterator[None]:
    """The objects that exist only during ``recording`` (and the unlistable file)."""
    s3 = s3_client(recorded.moto_url)
    objects = [k for k in recording.staged if recording.data_source == S3]
    files = [recorded.dataset_dir / k for k in recording.staged if recording.data_source != S3]
    if recording.break_listing:
        files.append(recorded.dataset_dir / UNLISTABLE)
    for name in objects:
        s3.put_object(Bucket=BUCKET, Key=name, Body=b"col1,col2\n")
    for path in files:
        path.write_text("staged\n")
    try:
        yield
    finally:
        for name in objects:
            s3.delete_object(Bucket=BUCKET, Key=name)
        for path in files:
            path.unlink()


def _project_map(value: object, project_ids: list[str], kind: type) -> dict[str, Any]:
    """A map keyed by exactly the data source's project ids, of ``kind`` values."""
    assert isinstance(value, dict), value
    assert set(value) == set(project_ids), value
    assert all(type(v) is kind for v in value.values()), value
    return value


def _check_dto(recorded: Recorded, recording: Recording, doc: dict[str, Any]) -> None:
    world = recorded.world
    spec = recorded.specs[recording.data_source]
    project = world.project_id
    assert set(doc) >= DTO_KEYS, f"missing {sorted(DTO_KEYS - set(doc))}"
    assert (doc["id"], doc["name"], doc["status"]) == (
        recorded.ids[recording.data_source], recording.data_source, "Active"
    )  # fmt: skip
    assert (doc["dataSourceType"], doc["authType"], doc["credentialType"]) == (
        spec["dataSourceType"], spec["authType"], spec["credentialType"]
    )  # fmt: skip
    kind = spec["dataSourceType"]
    # Domino's dataset DTOs held its snapshotID/datasetID in config; dstrail keeps no snapshots
    expected_config = {**spec["config"], "type": f"DataSource{kind}", "dataSourceType": kind}
    assert doc["config"].items() >= expected_config.items(), doc["config"]
    assert doc["ownerId"] == world.user_ids["alice"]
    assert doc["ownerInfo"] == {
        "ownerName": "alice", "ownerEmail": "alice@example.com", "isOwnerAdmin": False
    }  # fmt: skip
    assert type(doc["lastUpdated"]) is int
    assert doc["lastUpdated"] > 0
    assert doc["lastUpdatedBy"] == world.user_ids["alice"]
    assert doc["isEveryone"] is False
    assert doc["userIds"] == spec["permissions"]["userIds"]
    assert doc["projectIds"] == [project]
    assert _project_map(doc["addedBy"], doc["projectIds"], str) == {project: "alice"}
    accessed = _project_map(doc["lastAccessed"], doc["projectIds"], int)
    assert all(ms >= 0 for ms in accessed.values()), accessed  # 0: never
    added = _project_map(doc["addedToProjectTimeMap"], doc["projectIds"], int)
    assert all(ms > 0 for ms in added.values()), added
    if recording.caller != "admin":
        return
    admin_info = doc["adminInfo"]
    assert set(admin_info) == {"projectNames", "projectIdOwnerUsernameMap", "projectLastActiveMap"}
    assert admin_info["projectNames"] == {project: "churn"}
    assert admin_info["projectIdOwnerUsernameMap"] == {project: "alice"}
    [(key, last_active)] = admin_info["projectLastActiveMap"].items()
    assert key == project
    if last_active is not None:
        assert datetime.fromisoformat(last_active.replace("Z", "+00:00")).tzinfo is not None


def _signed_region(url: str) -> str:
    [credential] = parse_qs(urlparse(url).query)["X-Amz-Credential"]
    return credential.split("/")[2]  # KEYID/DATE/REGION/s3/aws4_request


def _check_url(recording: Recording, doc: object) -> None:
    assert isinstance(doc, str), doc
    url = urlparse(doc)
    assert url.scheme in ("http", "https"), doc
    assert url.netloc, doc
    [object_key] = recording.keys
    assert url.path.endswith("/" + object_key), doc
    if recording.region:
        assert _signed_region(doc) == recording.region, doc


def _check(recorded: Recorded, recording: Recording, response: httpx.Response) -> None:
    assert response.status_code == recording.status, response.text
    if recording.shape == "empty":
        assert response.content == b""
        return
    doc = response.json()
    if recording.shape == "dto":
        _check_dto(recorded, recording, doc)
    elif recording.shape == "url":
        _check_url(recording, doc)
    elif recording.shape == "keys":
        assert isinstance(doc, list)
        assert all(isinstance(k, str) for k in doc), doc
        assert doc == list(recording.keys)
    elif recording.shape == "proxyError":
        assert set(doc) == {"errorType", "subType", "rawError"}, doc
        assert doc["errorType"] == recording.error_type, doc
        assert isinstance(doc["subType"], str)
        assert recording.message in doc["rawError"], doc
    elif recording.shape == "denied":
        assert set(doc) == {"success", "message", "debugMessage", "reason"}, doc
        assert (doc["success"], doc["message"]) == (False, recording.message)
        assert isinstance(doc["debugMessage"], str)
        assert isinstance(doc["reason"]["required"], list)
        assert isinstance(doc["reason"]["missing"], list)
    else:
        assert recording.shape == "missing"
        assert set(doc) == {"message", "success"}, doc
        # Domino words it "Dataset with name ..." for a dataset lookup; dstrail's one lookup
        # route cannot know what type a missing name would have had, so it says "Datasource
        # with name ..." for every type: the rest of the message, naming the name, is Domino's.
        _, rest = recording.message.split(" ", 1)
        assert doc == {"message": f"Datasource {rest}", "success": False}


CASES = [
    pytest.param(
        recording,
        id=recording.id,
        marks=[pytest.mark.skip(reason=recording.not_reproducible)]
        if recording.not_reproducible
        else [],
    )
    for recording in RECORDINGS
]


def test_the_table_holds_the_53_recorded_requests() -> None:
    assert len(RECORDINGS) == len({r.id for r in RECORDINGS}) == 53
    assert sum(r.id.startswith("test_datasource/") for r in RECORDINGS) == 36 - 4
    assert sum(r.id.startswith("test_dataset/") for r in RECORDINGS) == 22 - 1
    assert set(HAND_EDITS) <= set(BY_ID)


@pytest.mark.parametrize("recording", CASES)
def test_recorded_request(recorded: Recorded, recording: Recording) -> None:
    with _staged(recorded, recording):
        response = _send(recorded, recording)
    _check(recorded, recording, response)


def _access_event(world: World, since: str, operation: str) -> dict[str, Any]:
    events = world.events(since, names=(S3,))
    [event] = [e for e in events if e["metadata"]["operation"] == operation]
    return event


def test_region_overwrite_signs_for_that_region_and_is_recorded(recorded: Recorded) -> None:
    recording = BY_ID["test_datasource/test_client_get_key_url_with_override#2"]
    since = now_iso()
    response = _send(recorded, recording)
    _check(recorded, recording, response)
    assert _signed_region(response.json()) == "us-east-1"
    event = _access_event(recorded.world, since, "objectKey")
    assert event["performedBy"] == recorded.world.user_ids["alice"]
    assert (event["metadata"]["objectKey"], event["metadata"]["isReadWrite"]) == ("akey", "true")
    assert event["metadata"]["configOverwrites"] == '{"region":"us-east-1"}'


def test_bucket_overwrite_fails_the_listing_and_is_recorded(recorded: Recorded) -> None:
    recording = BY_ID["test_datasource/test_client_list_keys_returns_error#2"]
    since = now_iso()
    _check(recorded, recording, _send(recorded, recording))
    # the access was granted (and recorded) before the listing of the other bucket failed
    event = _access_event(recorded.world, since, "listObjects")
    assert event["metadata"]["prefix"] == ""
    assert event["metadata"]["configOverwrites"] == '{"bucket":"notreal"}'
