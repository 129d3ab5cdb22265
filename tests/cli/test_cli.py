"""SPEC 6: the operator CLI, run as a real process against both databases."""

from __future__ import annotations

import csv
import io
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
import orjson
import pytest

from dstrail.audit.query import read_page
from dstrail.audit.recorder import record_event
from dstrail.context import Dstrail, open_dstrail
from dstrail.domain.audit_filter import AuditFilter
from dstrail.domain.datasources import CredentialType, Permissions
from dstrail.domain.timestamps import DAY_MS, format_ms, system_clock
from dstrail.domain.trail import EVENT_KIND, PERFORMED_BY, PLATFORM_KINDS, EventKind
from dstrail.domain.users import OPERATOR, Role
from dstrail.services import datasources as ds_service
from dstrail.services import users as user_service
from dstrail.services.credentials import CredentialVault
from dstrail.settings import Settings
from tests.support import DOMINO_EVENT_FIELDS


@dataclass(frozen=True)
class Target:
    """One database and data directory the CLI is pointed at."""

    database_url: str
    data_dir: Path

    def run(
        self, *args: str, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        return run_cli(
            [*args, "--database-url", self.database_url, "--data-dir", str(self.data_dir)], env=env
        )

    def open(self) -> Dstrail:
        return open_dstrail(Settings(data_dir=self.data_dir, database_url=self.database_url))

    def state(self) -> tuple[Any, ...]:
        """Everything a command could add or change."""
        opened = self.open()
        try:
            with opened.store.read() as tx:
                db = tx.connection
                return (
                    tx.users.all(),
                    sorted(db.exec_driver_sql("SELECT key_hash FROM api_keys").all()),
                    tx.projects.all(),
                    sorted(db.exec_driver_sql("SELECT id, ended_at FROM runs").all()),
                    tx.data_sources.all(include_deleted=True),
                    tx.audit.size(),
                )
        finally:
            opened.store.dispose()


def run_cli(
    args: Sequence[str], env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("DSTRAIL_")}
    environment.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "dstrail.cli", *args],
        capture_output=True,
        text=True,
        env=environment,
        timeout=120,
        check=False,
    )


def ok_json(result: subprocess.CompletedProcess[str]) -> Any:
    """The one JSON object a create command prints."""
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 1, result.stdout
    return orjson.loads(lines[0])


def refused(result: subprocess.CompletedProcess[str], *named: str, status: int = 2) -> str:
    """Exit ``status`` (2: the command's input is wrong; 1: what it names is not so, e.g. an
    unknown user) and one stderr line naming each of ``named``."""
    assert result.returncode == status, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    line = lines[0]
    assert line.startswith("dstrail: error: "), line
    for word in named:
        assert word in line, line
    assert result.stdout == ""
    return line


PLATFORM_CHANGES = AuditFilter(
    start_ms=0, end_ms=2**62, event_kinds=tuple(k for k in EventKind if k in PLATFORM_KINDS)
)


@pytest.fixture
def target(database_url: str, tmp_path: Path) -> Target:
    return Target(database_url=database_url, data_dir=tmp_path / "cli-data")


def test_users_projects_runs(target: Target) -> None:
    admin = ok_json(target.run("users", "create", "ops-admin", "--role", "SysAdmin"))
    assert set(admin) == {"id", "username", "role", "apiKey", "apiKeyId"}
    assert (admin["username"], admin["role"]) == ("ops-admin", "SysAdmin")
    alice = ok_json(target.run("users", "create", "alice", "--email", "alice@example.com"))
    assert alice["role"] == "User"
    project = ok_json(
        target.run("projects", "create", "churn", "--owner", "alice", "--collaborator", "ops-admin")
    )
    assert set(project) == {"id", "name", "ownerId"}
    assert (project["name"], project["ownerId"]) == ("churn", alice["id"])
    run = ok_json(
        target.run("runs", "start", "--project", "churn", "--user", "ops-admin", "--type", "Batch")
    )
    assert set(run) == {"id", "runType", "projectId", "dataPlaneId", "token"}
    assert (run["runType"], run["projectId"]) == ("Batch", project["id"])
    assert run["dataPlaneId"] == "000000000000000000000000"
    claims = jwt.decode(run["token"], options={"verify_signature": False})
    assert (claims["sub"], claims["run_id"]) == (admin["id"], run["id"])
    stopped = target.run("runs", "stop", run["id"])
    assert stopped.returncode == 0, stopped.stderr

    opened = target.open()
    try:
        with opened.store.read() as tx:
            found = user_service.user_by_api_key(tx, alice["apiKey"])
            assert found is not None
            assert found.username == "alice"
            assert found.email == "alice@example.com"
            assert tx.projects.by_id(project["id"]) is not None
            stored_run = tx.runs.by_id(run["id"])
            assert stored_run is not None
            assert not stored_run.is_running
            keys = [r[0] for r in tx.connection.exec_driver_sql("SELECT key_hash FROM api_keys")]
            assert alice["apiKey"] not in keys
            recorded = read_page(tx, PLATFORM_CHANGES, after=None, size=100).rows
    finally:
        opened.store.dispose()
    # each change is in the trail, made by the operator (the CLI signs in as nobody)
    assert [row[EVENT_KIND] for row in reversed(recorded)] == [
        "UserCreated", "ApiKeyIssued", "UserCreated", "ApiKeyIssued", "ProjectCreated",
        "RunStarted", "RunStopped",
    ]  # fmt: skip
    assert {row[PERFORMED_BY] for row in recorded} == {OPERATOR.id}

    # a second key, and the JSON-lines listing
    again = ok_json(target.run("users", "api-key", "alice"))
    assert again["apiKey"] != alice["apiKey"]
    listing = target.run("users", "list")
    assert listing.returncode == 0
    assert [orjson.loads(line)["username"] for line in listing.stdout.splitlines()] == [
        "alice",
        "ops-admin",
    ]
    # a run that already ended cannot be stopped again; nothing changes
    before = target.state()
    refused(target.run("runs", "stop", run["id"]), run["id"], "ended", status=1)
    assert target.state() == before


def test_roles_keys_and_collaborators(target: Target) -> None:
    alice = ok_json(target.run("users", "create", "alice"))
    ok_json(target.run("users", "create", "bob"))
    ok_json(target.run("projects", "create", "churn", "--owner", "alice"))
    assert ok_json(target.run("users", "set-role", "alice", "Auditor"))["role"] == "Auditor"
    keys = target.run("users", "api-keys", "alice")
    assert keys.returncode == 0, keys.stderr
    (listed,) = [orjson.loads(line) for line in keys.stdout.splitlines()]
    assert set(listed) == {"id", "label", "created", "revoked", "live"}
    assert (listed["id"], listed["live"]) == (alice["apiKeyId"], True)
    assert alice["apiKey"] not in keys.stdout
    revoked = ok_json(target.run("users", "revoke-key", "alice", alice["apiKeyId"]))
    assert revoked["live"] is False
    added = ok_json(target.run("projects", "add-collaborator", "churn", "bob"))
    assert len(added["collaboratorIds"]) == 1
    removed = ok_json(target.run("projects", "remove-collaborator", "churn", "bob"))
    assert removed["collaboratorIds"] == []

    before = target.state()
    refused(target.run("users", "set-role", "alice", "Root"), "Root", "SysAdmin")
    refused(target.run("users", "revoke-key", "alice", alice["apiKeyId"]), "no live", status=1)
    refused(target.run("projects", "remove-collaborator", "churn", "bob"), "bob", status=1)
    refused(target.run("projects", "add-collaborator", "churn", "nobody"), "nobody", status=1)
    assert target.state() == before
    opened = target.open()
    try:
        with opened.store.read() as tx:
            assert user_service.user_by_api_key(tx, alice["apiKey"]) is None
            recorded = read_page(tx, PLATFORM_CHANGES, after=None, size=100).rows
    finally:
        opened.store.dispose()
    assert [row[EVENT_KIND] for row in recorded[:4]] == [
        "ProjectCollaboratorRemoved", "ProjectCollaboratorAdded", "ApiKeyRevoked",
        "UserRoleChanged",
    ]  # fmt: skip


@pytest.fixture
def history(target: Target) -> Iterator[dict[str, str]]:
    """Events an hour ago and three days ago, written in-process at real times."""
    opened = target.open()
    now = system_clock()
    vault = CredentialVault(opened.keys.encryption_key)
    with opened.store.write() as tx:
        admin, _ = user_service.create_user(
            tx,
            actor=OPERATOR,
            username="admin",
            email=None,
            role=Role.SYS_ADMIN,
            now_ms=now - 4 * DAY_MS,
        )
    ids: dict[str, str] = {"admin": admin.id}
    for name, when in (("old-ds", now - 3 * DAY_MS), ("=formula-ds", now - 3_600_000)):
        with opened.store.write() as tx:
            ds = ds_service.create_data_source(
                tx,
                vault,
                spec=ds_service.DataSourceCreate(
                    name=name.lstrip("="),
                    data_source_type="S3Config",
                    auth_type="AWSIAMBasic",
                    credential_type=CredentialType.SHARED,
                    config={"bucket": "b"},
                    permissions=Permissions(is_everyone=True),
                ),
                actor=admin,
                now_ms=when,
            )
            record_event(
                tx,
                kind=EventKind.ACCESS_DATA_SOURCE,
                data_source=ds,
                actor=admin,
                now_ms=when + 1,
                metadata={"clientSource": "Python", "operation": "prefix", "prefix": "=cmd|x"},
            )
            ids[name] = ds.id
    ids["now"] = str(now)
    opened.store.dispose()
    yield ids


def test_audit_query_formats_and_filters(target: Target, history: dict[str, str]) -> None:
    now = int(history["now"])
    default = target.run("audit", "query")
    assert default.returncode == 0, default.stderr
    events = orjson.loads(default.stdout)
    assert [(e["eventKind"], e["dataSourceName"]) for e in events] == [
        ("AccessDataSource", "formula-ds"),
        ("CreateDataSource", "formula-ds"),
    ]
    assert set(events[0]) == DOMINO_EVENT_FIELDS
    week = format_ms(now - 7 * DAY_MS)
    results = parallel(
        target,
        ["audit", "query", "--start-time", week],
        [
            "audit",
            "query",
            "--start-time",
            week,
            "--event-kind",
            "CreateDataSource",
            "--data-source-name",
            "old-ds",
            "--data-source-name",
            "formula-ds",
        ],
        [
            "audit",
            "query",
            "--start-time",
            week,
            "--data-source-id",
            history["old-ds"],
            "--format",
            "csv",
        ],
        ["audit", "query", "--format", "text", "--performed-by", history["admin"]],
        ["audit", "query", "--end-time", format_ms(now - 3 * DAY_MS), "--format", "json"],
    )
    everything, creates, as_csv, as_text, end_only = results
    assert len(orjson.loads(everything.stdout)) == 4
    assert [e["dataSourceName"] for e in orjson.loads(creates.stdout)] == ["formula-ds", "old-ds"]
    assert [e["dataSourceName"] for e in orjson.loads(end_only.stdout)] == ["old-ds"]

    rows = list(csv.reader(io.StringIO(as_csv.stdout)))
    assert rows[0][:3] == ["timestamp", "eventKind", "dataSourceName"]
    assert [row[1] for row in rows[1:]] == ["AccessDataSource", "CreateDataSource"]
    assert all(not cell.startswith(("=", "+", "-", "@")) for row in rows for cell in row)
    assert orjson.loads(rows[1][7])["prefix"] == "=cmd|x"  # inside a JSON cell, kept as is

    lines = as_text.stdout.splitlines()
    assert len(lines) == 2
    assert lines[0].startswith(format_ms(now - 3_600_000 + 1)[:10])
    assert "AccessDataSource" in lines[0]
    assert "formula-ds" in lines[0]
    assert "admin" in lines[0]


def parallel(target: Target, *commands: list[str]) -> list[subprocess.CompletedProcess[str]]:
    """Several read-only commands at once (each process takes a second to start)."""
    with ThreadPoolExecutor(max_workers=len(commands)) as pool:
        results = list(pool.map(lambda c: target.run(*c), commands))
    for result in results:
        assert result.returncode == 0, result.stderr
    return results


def run_all(
    target: Target, cases: list[tuple[list[str], tuple[str, ...]]], *, status: int = 2
) -> None:
    """Each command is refused with exit ``status`` and one line naming what it should."""
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(lambda case: target.run(*case[0]), cases))
    for (args, named), result in zip(cases, results, strict=True):
        try:
            refused(result, *named, status=status)
        except AssertionError as error:
            raise AssertionError(f"dstrail {' '.join(args)}: {error}") from None


def test_bad_arguments_are_refused_before_anything_is_opened(tmp_path: Path) -> None:
    target = Target(
        database_url=f"sqlite:///{tmp_path / 'db' / 'x.sqlite3'}", data_dir=tmp_path / "d"
    )
    run_all(
        target,
        [
            (["users", "create", "x", "--role", "Root"], ("Root", "SysAdmin", "Auditor", "User")),
            (
                ["runs", "start", "--project", "p", "--user", "u", "--type", "Notebook"],
                ("Notebook", "Workspace", "Batch", "Endpoint"),
            ),
            (["audit", "query", "--format", "xml"], ("--format", "xml", "json", "csv", "text")),
            (
                ["audit", "query", "--start-time", "yesterday"],
                ("--start-time", "yesterday", "ISO-8601"),
            ),
            (["audit", "query", "--end-time", "2023-08-23T21:40:21"], ("--end-time", "zone")),
            (
                [
                    "audit",
                    "query",
                    "--start-time",
                    "2023-08-24T00:00:00Z",
                    "--end-time",
                    "2023-08-23T00:00:00Z",
                ],
                ("--start-time", "--end-time"),
            ),
            (
                ["audit", "query", "--event-kind", "Bogus"],
                ("--event-kind", "Bogus", "CreateDataSource"),
            ),
            (["audit", "query", "--performed-by", "alice"], ("--performed-by", "alice")),
        ],
    )
    assert list(tmp_path.iterdir()) == []


def test_bad_input_exits_2_an_unknown_name_exits_1_and_nothing_changes(target: Target) -> None:
    assert target.run("users", "create", "owner").returncode == 0
    before = target.state()
    run_all(target, [(["users", "create", "bad name"], ("username", "bad name"))])
    run_all(
        target,
        [
            (["users", "create", "owner"], ("owner", "taken")),
            (["users", "api-key", "nobody"], ("nobody",)),
            (["projects", "create", "p", "--owner", "nobody"], ("--owner", "nobody")),
            (
                ["projects", "create", "p", "--owner", "owner", "--collaborator", "ghost"],
                ("--collaborator", "ghost"),
            ),
            (
                ["runs", "start", "--project", "nope", "--user", "owner", "--type", "App"],
                ("nope",),
            ),
            (["runs", "stop", "ffffffffffffffffffffffff"], ("ffffffffffffffffffffffff",)),
        ],
        status=1,  # the input is well formed; what it names is not so
    )
    assert target.state() == before


def test_a_bad_database_url_is_one_clear_line(tmp_path: Path) -> None:
    result = run_cli(
        ["users", "list"],
        env={
            "DSTRAIL_DATABASE_URL": "mysql://root:hunter2-password@db/dstrail",
            "DSTRAIL_DATA_DIR": str(tmp_path),
        },
    )
    line = refused(result, "database_url", "sqlite://", "postgresql://")
    assert "hunter2-password" not in result.stderr
    assert "hunter2" not in line
    assert not any(tmp_path.iterdir())


def test_argparse_errors_are_exit_2(tmp_path: Path) -> None:
    result = run_cli(["users", "create", "--data-dir", str(tmp_path)])
    assert result.returncode == 2
    assert "username" in result.stderr


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def test_serve_and_other_commands_add_no_data(target: Target) -> None:
    migrated = ok_json(target.run("migrate"))
    assert migrated["auditEvents"] == 0
    assert target.run("users", "list").stdout == ""
    assert target.run("audit", "query").stdout.strip() == "[]"
    port = free_port()
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "dstrail.cli",
            "serve",
            "--port",
            str(port),
            "--flight-port",
            str(free_port()),
            "--database-url",
            target.database_url,
            "--data-dir",
            str(target.data_dir),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            assert server.poll() is None, server.stderr.read() if server.stderr else ""
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as r:
                    assert r.status == 200
                    break
            except OSError:
                assert time.monotonic() < deadline, "the server did not come up"
                time.sleep(0.1)
        with urllib.request.urlopen(
            f"http://127.0.0.1:{port}/api/datasource/v1/datasources", timeout=5
        ) as response:
            raise AssertionError(f"no key, yet {response.status}")
    except urllib.error.HTTPError as error:
        assert error.code == 401
    finally:
        server.terminate()
        server.wait(timeout=30)
        if server.stderr:
            server.stderr.close()
    users, keys, projects, runs, data_sources, events = target.state()
    assert (users, keys, projects, runs, data_sources, events) == ([], [], [], [], [], 1)
    # the one event: `audit query` read the trail, and reads of the trail are recorded
    opened = target.open()
    try:
        with opened.store.read() as tx:
            only = tx.audit.by_sequence(1)
    finally:
        opened.store.dispose()
    assert only is not None and only.event_kind == EventKind.TRAIL_READ
    assert orjson.loads(only.metadata)["command"] == "audit query"


def test_demo_loads_once_and_prints_a_key_and_a_curl_line(target: Target) -> None:
    first = target.run("demo", "--no-serve")
    assert first.returncode == 0, first.stderr
    assert "demo data loaded" in first.stdout
    key = next(
        line.split(":", 1)[1].split()[0]
        for line in first.stdout.splitlines()
        if line.startswith("admin API key:")
    )
    curl = next(line.strip() for line in first.stdout.splitlines() if "curl" in line)
    assert curl.startswith("curl ")
    assert key in curl
    assert "http://127.0.0.1:8000/api/datasource/v1/audit" in curl
    state = target.state()
    opened = target.open()
    try:
        with opened.store.read() as tx:
            admin = user_service.user_by_api_key(tx, key)
            assert admin is not None
            assert admin.is_admin
            names = {ds.name: ds.data_source_type for ds in tx.data_sources.all()}
            assert names["snowflake-ds"] == "SnowflakeConfig"
            assert names["s3-ds"] == "S3Config"
            assert tx.audit.size() > 100
    finally:
        opened.store.dispose()

    second = target.run("demo", "--no-serve")
    assert second.returncode == 0, second.stderr
    assert "already present" in second.stdout
    users, keys, *rest, events = target.state()
    assert (users, *rest) == (state[0], *state[2:-1])
    assert len(keys) == len(state[1]) + 1
    assert events == state[-1] + 1  # ApiKeyIssued
