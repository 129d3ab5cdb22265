"""The retention policy over REST and the CLI, on both databases: SysAdmins set it, a locked
one only lengthens (409, nothing changed, the attempt recorded), bad input is a 400 naming
what is accepted; purges over REST and the CLI, to a directory and to S3 (moto's server), and
``dstrail audit verify --archive`` over the hot range and the archives."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient

from dstrail.cli import main
from dstrail.context import Dstrail
from dstrail.domain.trail import EventKind
from dstrail.domain.users import Role
from dstrail.settings import Settings
from tests.client.conftest import moto_url, s3_client  # noqa: F401 - the session fixture
from tests.retention.conftest import NOW, recorded
from tests.retention.test_purge import MONTHS, PER_MONTH, fill
from tests.support import Login, make_user

ROUTE = "/api/dstrail/v1/retention"


@pytest.fixture
def root(dstrail: Dstrail) -> Login:
    return make_user(dstrail, "root", Role.SYS_ADMIN)


def put(client: TestClient, login: Login, body: Any) -> Any:
    return client.put(ROUTE, headers=login.headers, json=body)


def test_a_locked_policy_is_lengthened_but_never_shortened(
    dstrail: Dstrail, client: TestClient, root: Login
) -> None:
    shown = client.get(ROUTE, headers=root.headers).json()
    assert (shown["days"], shown["locked"], shown["nextPurgeAt"]) == (None, False, None)
    response = put(client, root, {"days": 365, "lock": True})
    assert response.status_code == 200, response.text
    assert (response.json()["days"], response.json()["locked"]) == (365, True)

    for body in ({"days": 30, "lock": True}, {"days": 365, "lock": False},
                 {"days": "forever", "lock": False}, {"days": 364, "lock": True}):  # fmt: skip
        refused = put(client, root, body)
        assert refused.status_code == 409, (body, refused.text)
        assert "locked" in refused.text
        after = client.get(ROUTE, headers=root.headers).json()
        assert (after["days"], after["locked"]) == (365, True)
    assert len(recorded(dstrail, EventKind.RETENTION_REFUSED)) == 4
    refusal = recorded(dstrail, EventKind.RETENTION_REFUSED)[0]
    assert refusal["days"] == "30" and "never shortened" in refusal["reason"]

    longer = put(client, root, {"days": 400, "lock": True})
    assert longer.status_code == 200 and longer.json()["days"] == 400
    forever = put(client, root, {"days": "forever", "lock": True})
    assert forever.status_code == 200 and forever.json()["days"] is None
    assert put(client, root, {"days": 400, "lock": True}).status_code == 409
    changes = recorded(dstrail, EventKind.RETENTION_SET)
    assert [(c["days"], c["locked"]) for c in changes] == [
        ("365", "true"), ("400", "true"), ("forever", "true"),
    ]  # fmt: skip


@pytest.mark.parametrize(
    "body",
    [
        {"days": 0},
        {"days": -3},
        {"days": "ten"},
        {"days": 36_501},
        {"days": 1.5},
        {"days": True},
        {"days": 30, "lock": "yes please"},
        {"days": 30, "unknown": 1},
        [],
    ],
    ids=str,
)
def test_bad_input_is_a_400_that_changes_nothing(
    dstrail: Dstrail, client: TestClient, root: Login, body: Any
) -> None:
    response = put(client, root, body)
    assert response.status_code == 400, response.text
    with dstrail.store.read() as tx:
        assert tx.retention.state().policy.days is None
    assert recorded(dstrail, EventKind.RETENTION_SET) == []


def test_only_a_sysadmin_manages_retention(
    dstrail: Dstrail, client: TestClient, alice: Login
) -> None:
    auditor = make_user(dstrail, "auditor", Role.AUDITOR)
    assert client.get(ROUTE, headers=auditor.headers).status_code == 200
    assert put(client, auditor, {"days": 30}).status_code == 403
    assert client.post(f"{ROUTE}/apply", headers=auditor.headers, json={}).status_code == 403
    assert client.get(ROUTE, headers=alice.headers).status_code == 403
    assert put(client, alice, {"days": 30}).status_code == 403
    assert client.post(f"{ROUTE}/apply", headers=alice.headers, json={}).status_code == 403
    assert client.get(ROUTE).status_code == 401
    with dstrail.store.read() as tx:
        assert tx.retention.state().policy.days is None


def test_a_purge_over_rest(dstrail: Dstrail, client: TestClient, tmp_path: Path) -> None:
    fill(dstrail)
    root = make_user(dstrail, "root", Role.SYS_ADMIN)
    assert put(client, root, {"days": 60}).status_code == 200
    dry = client.post(f"{ROUTE}/apply", headers=root.headers, json={"dryRun": True}).json()
    assert (dry["firstSeq"], dry["lastSeq"], dry["archive"]) == (1, 2 * PER_MONTH, None)
    done = client.post(f"{ROUTE}/apply", headers=root.headers, json={}).json()
    assert done["events"] == 2 * PER_MONTH and done["archive"].startswith(str(tmp_path))
    shown = client.get(ROUTE, headers=root.headers).json()
    assert shown["purgedThroughSeq"] == 2 * PER_MONTH
    assert shown["oldestHotSeq"] == 2 * PER_MONTH + 1
    assert shown["lastArchive"] == done["archive"]
    again = client.post(f"{ROUTE}/apply", headers=root.headers, json={}).json()
    assert again["events"] == 0 and again["reason"]
    bad = client.post(f"{ROUTE}/apply", headers=root.headers, json={"dryRun": "maybe"})
    assert bad.status_code == 400


@pytest.fixture
def aws_environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Credentials as boto3 finds them in the environment (moto accepts any)."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    yield


def cli(settings: Settings, *argv: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    """Run the CLI on the test's store (the caller set its environment); exit code, stdout
    (stderr follows stdout after a line ``--stderr--``)."""
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out + ("--stderr--\n" + captured.err if captured.err else "")


def test_the_cli_purges_to_s3_and_verifies_the_archive(
    dstrail: Dstrail,
    settings: Settings,
    moto_url: str,  # noqa: F811
    aws_environment: None,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fill(dstrail)
    s3_client(moto_url).create_bucket(Bucket="trail-archive")
    monkeypatch.setenv("DSTRAIL_ARCHIVE_S3_ENDPOINT", moto_url)
    archive = "s3://trail-archive/dstrail"
    monkeypatch.setenv("DSTRAIL_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("DSTRAIL_DATABASE_URL", str(settings.database_url))

    code, out = cli(settings, "retention", "set", "--days", "60", capsys=capsys)
    assert code == 0 and orjson.loads(out)["days"] == 60
    code, out = cli(settings, "retention", "apply", "--archive", archive, capsys=capsys)
    assert code == 0, out
    applied = orjson.loads(out)
    # The CLI runs on the real clock: every month of the test's trail has left the window.
    purged = len(MONTHS) * PER_MONTH
    folder = f"dstrail/trail-000000000001-{purged:012d}"
    assert applied["events"] == purged
    assert applied["archive"] == f"s3://trail-archive/{folder}"
    keys = [
        o["Key"] for o in s3_client(moto_url).list_objects_v2(Bucket="trail-archive")["Contents"]
    ]
    assert sorted(keys) == [
        *(f"{folder}/events-{month}.parquet" for month in MONTHS),
        f"{folder}/manifest.json",
    ]
    code, out = cli(settings, "audit", "verify", "--archive", archive, "--format", "json",
                    capsys=capsys)  # fmt: skip
    report = orjson.loads(out)
    assert code == 0, out
    assert report["purgedThrough"] == purged and len(report["archives"]) == 1
    vkey = dstrail.signer.verifier.vkey()
    code, out = cli(settings, "audit", "verify", "--archive", archive, "--archive-only",
                    "--vkey", vkey, capsys=capsys)  # fmt: skip
    assert code == 0, out
    assert "OK" in out

    # An archive that lost a file: the store's purged range is no longer held.
    s3_client(moto_url).delete_object(
        Bucket="trail-archive",
        Key=f"{folder}/events-2026-03.parquet",
    )
    code, out = cli(settings, "audit", "verify", "--archive", archive, "--format", "json",
                    capsys=capsys)  # fmt: skip
    report = orjson.loads(out)
    assert code == 1
    assert {f["kind"] for f in report["findings"]} == {"archive-invalid", "archive-missing"}


def test_a_locked_policy_refused_on_the_cli_exits_1_and_is_recorded(
    dstrail: Dstrail, settings: Settings, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    monkeypatch.setenv("DSTRAIL_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("DSTRAIL_DATABASE_URL", str(settings.database_url))
    assert cli(settings, "retention", "set", "--days", "90", "--lock", capsys=capsys)[0] == 0
    code, out = cli(settings, "retention", "set", "--days", "30", "--lock", capsys=capsys)
    assert code == 1 and "never shortened" in out
    code, out = cli(settings, "retention", "set", "--days", "x", capsys=capsys)
    assert code == 2 and "accepted: a whole number of days" in out
    with dstrail.store.read() as tx:
        policy = tx.retention.state().policy
    assert (policy.days, policy.locked) == (90, True)
    assert len(recorded(dstrail, EventKind.RETENTION_REFUSED)) == 1


def test_apply_takes_no_body(dstrail: Dstrail, client: TestClient, root: Login) -> None:
    response = client.post(f"{ROUTE}/apply", headers=root.headers)
    assert response.status_code == 200, response.text
    assert response.json()["reason"] == "the policy keeps everything"


def test_the_server_applies_the_policy_on_its_schedule(dstrail: Dstrail, tmp_path: Path) -> None:
    import time

    from dstrail.audit.archive_targets import DirectoryTarget
    from dstrail.domain.users import OPERATOR
    from dstrail.services.retention import RetentionScheduler, set_retention

    fill(dstrail)
    set_retention(dstrail.store, actor=OPERATOR, days=60, lock=False, now_ms=NOW)
    scheduler = RetentionScheduler(
        dstrail.store, DirectoryTarget(tmp_path / "archive"),
        public_key=dstrail.signer.public_raw, clock=dstrail.clock, every_seconds=0.1,
    )  # fmt: skip
    scheduler.start()
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with dstrail.store.read() as tx:
                if tx.retention.state().removed_through == 2 * PER_MONTH:
                    break
            time.sleep(0.05)
        time.sleep(0.5)  # five more rounds: they find nothing more to purge
    finally:
        scheduler.stop()
    purges = recorded(dstrail, EventKind.TRAIL_PURGED)
    assert len(purges) == 1 and purges[0]["lastSeq"] == str(2 * PER_MONTH)
