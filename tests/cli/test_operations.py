"""Operating a server: a graceful stop that closes the database, the access log of a real
``dstrail serve``, ``--log-format``, and ``dstrail backup``. Real processes, both databases."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.cli.test_cli import Target, free_port, ok_json, refused, run_cli
from tests.support import data_source_body

V1 = "/api/datasource/v1/datasources"


@pytest.fixture
def target(database_url: str, tmp_path: Path) -> Target:
    return Target(database_url=database_url, data_dir=tmp_path / "ops-data")


@pytest.fixture
def sqlite_target(tmp_path: Path) -> Target:
    data_dir = tmp_path / "sqlite-data"
    return Target(database_url=f"sqlite:///{data_dir / 'dstrail.sqlite3'}", data_dir=data_dir)


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    port: int
    log: Path

    def call(
        self, method: str, path: str, *, key: str | None = None, body: Any = None
    ) -> tuple[int, Any, str]:
        """(status, parsed JSON body, X-Request-Id)."""
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.port}{path}",
            method=method,
            data=None if body is None else orjson.dumps(body),
            headers={
                "Content-Type": "application/json",
                **({"X-Domino-Api-Key": key} if key else {}),
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return (
                    response.status,
                    orjson.loads(response.read()),
                    response.headers["X-Request-Id"],
                )
        except urllib.error.HTTPError as error:
            return error.code, orjson.loads(error.read()), error.headers["X-Request-Id"]

    def log_lines(self) -> list[str]:
        return self.log.read_text().splitlines()


@contextmanager
def serving(target: Target, *options: str) -> Iterator[Server]:
    """``dstrail serve`` on a free port, its stderr in a file; killed if still running after."""
    port = free_port()
    log = target.data_dir.parent / f"serve-{port}.log"
    environment = {k: v for k, v in os.environ.items() if not k.startswith("DSTRAIL_")}
    with log.open("wb") as stderr:
        process = subprocess.Popen(
            [
                sys.executable, "-m", "dstrail.cli", "serve",
                "--port", str(port), "--flight-port", str(free_port()),
                "--database-url", target.database_url, "--data-dir", str(target.data_dir),
                *options,
            ],
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            env=environment,
        )  # fmt: skip
    server = Server(process=process, port=port, log=log)
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, log.read_text()
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2):
                    break
            except OSError:
                assert time.monotonic() < deadline, "the server did not come up"
                time.sleep(0.1)
        yield server
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=30)


def stop(server: Server, how: signal.Signals) -> int:
    server.process.send_signal(how)
    return server.process.wait(timeout=60)


def wal_of(target: Target) -> Path:
    return Path(target.database_url.removeprefix("sqlite:///") + "-wal")


@pytest.mark.parametrize("how", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "Ctrl-C"])
def test_a_stopped_server_closes_the_database_and_exits_0(
    target: Target, how: signal.Signals
) -> None:
    admin = ok_json(target.run("users", "create", "ops-admin", "--role", "SysAdmin"))
    with serving(target) as server:
        for index in range(5):
            status, body, _ = server.call(
                "POST", V1, key=admin["apiKey"], body=data_source_body(f"ds-{index}")
            )
            assert status == 201, body
        if target.database_url.startswith("sqlite"):
            assert wal_of(target).stat().st_size > 0  # the writes are in the WAL, not yet folded
        assert stop(server, how) == 0, server.log.read_text()
        log = server.log.read_text()
    assert "every database connection is closed" in log
    assert "Traceback" not in log
    if target.database_url.startswith("sqlite"):
        wal = wal_of(target)
        assert not wal.exists() or wal.stat().st_size == 0, "the WAL was not folded"
    opened = target.open()
    try:
        with opened.store.read() as tx:
            names = sorted(ds.name for ds in tx.data_sources.all())
    finally:
        opened.store.dispose()
    assert names == [f"ds-{index}" for index in range(5)]


def test_the_access_log_of_a_real_server(target: Target) -> None:
    admin = ok_json(target.run("users", "create", "ops-admin", "--role", "SysAdmin"))
    with serving(target, "--log-format", "json") as server:
        created = server.call("POST", V1 + "?token=in-the-query", key=admin["apiKey"],
                              body=data_source_body("logged"))  # fmt: skip
        refused_answer = server.call("GET", V1, key="not-a-key")
        health = server.call("GET", "/healthz")
        assert stop(server, signal.SIGTERM) == 0
    assert created[0] == 201 and refused_answer[0] == 401 and health[0] == 200
    assert refused_answer[1]["requestId"] == refused_answer[2]
    lines = server.log_lines()
    documents = [orjson.loads(line) for line in lines]  # every line is one JSON object
    access = {d["requestId"]: d for d in documents if d["logger"] == "dstrail.access"}
    assert any(d["logger"] == "uvicorn.error" for d in documents)  # uvicorn's lines too
    post = access[created[2]]
    assert (post["method"], post["path"], post["status"]) == ("POST", V1, 201)
    assert post["userId"] == admin["id"]
    assert access[refused_answer[2]]["status"] == 401
    assert access[refused_answer[2]]["userId"] is None
    assert access[health[2]]["path"] == "/healthz"
    text = server.log.read_text()
    for secret in (admin["apiKey"], "not-a-key", "in-the-query", "s3cr3t-value"):
        assert secret not in text


def test_the_text_access_log(sqlite_target: Target) -> None:
    with serving(sqlite_target) as server:
        _, _, request_id = server.call("GET", "/healthz?x=1")
        assert stop(server, signal.SIGTERM) == 0
    (line,) = [line for line in server.log_lines() if request_id in line]
    assert " INFO dstrail.access GET /healthz 200 " in line
    assert line.endswith(f"ms user=- request={request_id}")


def test_a_bad_log_format_is_refused_before_anything_is_opened(tmp_path: Path) -> None:
    data_dir = tmp_path / "never"
    for command in ("serve", "demo"):
        result = run_cli([command, "--log-format", "xml", "--data-dir", str(data_dir)])
        line = refused(result, "--log-format", "xml", "text", "json")
        assert "accepted" in line
    assert not data_dir.exists()


@contextmanager
def writing_meanwhile(server: Server, key: str) -> Iterator[list[int]]:
    """Data sources created one after another while the block runs; their statuses."""
    statuses: list[int] = []
    done = threading.Event()

    def write() -> None:
        index = 0
        while not done.is_set():
            status, _, _ = server.call("POST", V1, key=key, body=data_source_body(f"w-{index}"))
            statuses.append(status)
            index += 1

    thread = threading.Thread(target=write, daemon=True)
    thread.start()
    try:
        yield statuses
    finally:
        done.set()
        thread.join(timeout=60)


def wait_for(statuses: list[int], count: int) -> None:
    deadline = time.monotonic() + 60
    while len(statuses) < count:
        assert time.monotonic() < deadline, statuses
        time.sleep(0.02)


def test_backup_copies_a_serving_sqlite_database_that_verify_accepts(
    sqlite_target: Target, tmp_path: Path
) -> None:
    target = sqlite_target
    admin = ok_json(target.run("users", "create", "ops-admin", "--role", "SysAdmin"))
    copy = tmp_path / "copies" / "dstrail-backup.sqlite3"
    copy.parent.mkdir()
    with serving(target) as server:
        with writing_meanwhile(server, admin["apiKey"]) as statuses:
            wait_for(statuses, 5)
            result = target.run("backup", "--out", str(copy))  # while writes go on
            at_backup = len(statuses)
            wait_for(statuses, at_backup + 5)
        assert stop(server, signal.SIGTERM) == 0
    assert set(statuses) == {201}
    report = ok_json(result)
    assert report["out"] == str(copy.resolve())
    assert report["bytes"] == copy.stat().st_size > 0
    assert report["keepWithIt"] == [
        str((target.data_dir / name).resolve())
        for name in ("signing.key", "credentials.key", "audit-signing.key")
    ]
    assert report["keySettings"] == []
    assert stat.S_IMODE(copy.stat().st_mode) == 0o600
    assert sorted(p.name for p in copy.parent.iterdir()) == [copy.name]  # one file, no -wal
    verified = run_cli(
        ["audit", "verify", "--format", "json", "--database-url", f"sqlite:///{copy}",
         "--data-dir", str(target.data_dir)]
    )  # fmt: skip
    assert verified.returncode == 0, (verified.stdout, verified.stderr)
    document = orjson.loads(verified.stdout)
    assert document["ok"] is True
    copied = Target(database_url=f"sqlite:///{copy}", data_dir=target.data_dir)
    users, _keys, _projects, _runs, data_sources, events = copied.state()
    assert [u.username for u in users] == ["ops-admin"]
    assert 5 <= len(data_sources) < len(statuses)  # some before the copy, not those after
    assert events >= len(data_sources)  # each creation with its event


def test_backup_refuses_an_existing_file_unless_forced(
    sqlite_target: Target, tmp_path: Path
) -> None:
    target = sqlite_target
    assert target.run("users", "create", "first").returncode == 0
    out = tmp_path / "backup.sqlite3"
    out.write_bytes(b"keep me")
    out.chmod(0o644)
    refused(target.run("backup", "--out", str(out)), "--out", str(out), "exists", "--force")
    assert out.read_bytes() == b"keep me"
    refused(
        target.run("backup", "--out", str(target.data_dir / "dstrail.sqlite3"), "--force"),
        "the database itself",
    )
    refused(target.run("backup", "--out", str(tmp_path / "no-dir" / "x.sqlite3")), "--out")
    report = ok_json(target.run("backup", "--out", str(out), "--force"))
    assert report["bytes"] == out.stat().st_size
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert out.read_bytes().startswith(b"SQLite format 3\x00")
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []
    users, *_ = Target(database_url=f"sqlite:///{out}", data_dir=target.data_dir).state()
    assert [u.username for u in users] == ["first"]


def test_backup_of_postgresql_says_pg_dump_and_which_keys_to_keep(tmp_path: Path) -> None:
    # No database is reached: the store refuses before connecting.
    out, data_dir = tmp_path / "never.sqlite3", tmp_path / "pg-data"
    url = "postgresql://postgres:pw-not-printed@127.0.0.1:5432/dstrail"
    result = run_cli(["backup", "--out", str(out), "--database-url", url,
                      "--data-dir", str(data_dir)])  # fmt: skip
    line = refused(result, "pg_dump", "signing.key", "credentials.key", "audit-signing.key")
    assert str(data_dir.resolve()) in line
    assert "pw-not-printed" not in result.stderr
    assert not out.exists()
    with_settings = run_cli(
        ["backup", "--out", str(out), "--database-url", url],
        env={"DSTRAIL_DATA_DIR": str(data_dir), "DSTRAIL_AUDIT_SIGNING_KEY": "x" * 44},
    )
    line = refused(with_settings, "pg_dump", "DSTRAIL_AUDIT_SIGNING_KEY", "signing.key")
    assert "audit-signing.key" not in line
    assert not out.exists()
