"""A real ``dstrail serve`` (HTTP + Arrow Flight) per database per module, a moto S3 server,
and the real ``dominodatalab-data`` client in a subprocess.

One server per module keeps the suite fast; tests isolate their events by time window.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import httpx
import psycopg
import pymysql
import pytest

from dstrail.context import open_dstrail
from dstrail.domain.datasources import CredentialType, Permissions
from dstrail.domain.projects import RunType
from dstrail.domain.users import OPERATOR, Role
from dstrail.services import datasources as ds_service
from dstrail.services import projects as project_service
from dstrail.services import runs as run_service
from dstrail.services import users as user_service
from dstrail.services.credentials import CredentialVault
from dstrail.settings import Settings

PG_ADMIN_URL = os.environ.get("DSTRAIL_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
MARIADB = {"host": "127.0.0.1", "port": 3306, "user": "root", "password": "", "database": "test"}
BUCKET = "dstrail-client-tests"
GENERIC_BUCKET = "dstrail-generic-tests"
SCRIPT = Path(__file__).with_name("client_script.py")
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_for(url: str, process: subprocess.Popen[bytes], what: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with {process.returncode}")
        try:
            if httpx.get(url, timeout=1).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{what} did not start")


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@pytest.fixture(scope="session")
def moto_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """moto's standalone S3-compatible server on a free loopback port, with two buckets."""
    port = free_port()
    log = (tmp_path_factory.mktemp("moto") / "moto.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_for(url + "/moto-api/", process, "moto")
        s3 = s3_client(url)
        s3.create_bucket(Bucket=BUCKET)
        s3.create_bucket(Bucket=GENERIC_BUCKET)
        s3.put_object(Bucket=BUCKET, Key="data/seed.csv", Body=b"a,b\n1,2\n")
        s3.put_object(Bucket=GENERIC_BUCKET, Key="team/raw/seed.txt", Body=b"generic seed")
        yield url
    finally:
        _stop(process)
        log.close()


def s3_client(url: str) -> Any:
    """A boto3 client of the moto server (any keys are accepted)."""
    return boto3.client(
        "s3",
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


@pytest.fixture(scope="session")
def mariadb_available() -> bool:
    """Whether the MariaDB at 127.0.0.1:3306 answers (required under CI=true)."""
    try:
        pymysql.connect(**MARIADB, connect_timeout=3).close()
    except pymysql.err.Error as error:
        if os.environ.get("CI") == "true":
            pytest.fail(f"MariaDB is required under CI=true: {error}")
        return False
    return True


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def module_database_url(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    pg_template: str | None,
) -> Iterator[str]:
    """A fresh, migrated database of each kind, shared by one module's tests."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('db') / 'dstrail.sqlite3'}"
        return
    if pg_template is None:
        pytest.skip("PostgreSQL is not reachable at 127.0.0.1:5432")
    name = f"dstrail_c_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{pg_template}"')
    yield PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@dataclass
class World:
    """A running dstrail with users, a project, runs and data sources of every served kind."""

    base_url: str
    flight_url: str
    settings: Settings
    keys: dict[str, str] = field(default_factory=dict)
    user_ids: dict[str, str] = field(default_factory=dict)
    runs: dict[str, str] = field(default_factory=dict)
    tokens: dict[str, str] = field(default_factory=dict)
    ds_ids: dict[str, str] = field(default_factory=dict)
    project_id: str = ""
    scratch: Path = Path()

    def env(
        self,
        user: str | None = "alice",
        *,
        run: str | None = None,
        token_of: str | None = None,
        **extra: str,
    ) -> dict[str, str]:
        """The DOMINO_* variables code inside a run sets."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("DOMINO_", "AWS_"))}
        env.update(
            DOMINO_API_HOST=self.base_url,
            DOMINO_DATASOURCE_PROXY_HOST=self.base_url,
            DOMINO_DATASOURCE_PROXY_FLIGHT_HOST=self.flight_url,
        )
        if user is not None:
            env["DOMINO_USER_API_KEY"] = self.keys[user]
        if run is not None:
            env["DOMINO_RUN_ID"] = self.runs.get(run, run)
        if token_of is not None:
            token_file = self.scratch / f"token-{token_of}-{uuid.uuid4().hex[:6]}"
            token_file.write_text(self.tokens[token_of] + "\n")
            env["DOMINO_TOKEN_FILE"] = str(token_file)
        env.update(extra)
        return env

    def client(self, env: dict[str, str], *operations: list[Any]) -> list[dict[str, Any]]:
        """Run the real client on ``operations`` in a subprocess; one result per operation."""
        done = subprocess.run(
            [sys.executable, str(SCRIPT), json.dumps(list(operations))],
            env=env,
            capture_output=True,
            timeout=120,
            check=False,
        )
        lines = [json.loads(line) for line in done.stdout.decode().splitlines() if line.strip()]
        assert len(lines) == len(operations), done.stderr.decode()[-3000:]
        return lines

    def events(self, since: str, *kinds: str, names: tuple[str, ...] = ()) -> list[dict[str, Any]]:
        """Events (newest first) from the audit API since ``since``."""
        params: list[tuple[str, str]] = [("startTime", since)]
        params += [("eventKinds", k) for k in kinds or ("AccessDataSource",)]
        params += [("dataSourceNames", n) for n in names]
        response = httpx.get(
            self.base_url + "/api/datasource/v1/audit",
            params=params,
            headers={"X-Domino-Api-Key": self.keys["admin"]},
            timeout=10,
        )
        assert response.status_code == 200, response.text
        events: list[dict[str, Any]] = response.json()
        return events


def now_iso() -> str:
    """The current time as the audit API takes it (ms precision, Z)."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _populate(world: World, moto: str) -> None:
    dstrail = open_dstrail(world.settings)
    vault = CredentialVault(dstrail.keys.encryption_key)
    now = dstrail.clock()
    with dstrail.store.write() as tx:
        users = {}
        for name, role in (
            ("admin", Role.SYS_ADMIN),
            ("alice", Role.USER),
            ("bob", Role.USER),
            ("carol", Role.USER),
        ):
            user, key = user_service.create_user(
                tx,
                actor=OPERATOR,
                username=name,
                email=f"{name}@example.com",
                role=role,
                now_ms=now,
            )
            users[name] = user
            world.keys[name] = key.secret
            world.user_ids[name] = user.id
        project = project_service.create_project(
            tx,
            actor=users["alice"],
            name="churn",
            owner=users["alice"],
            collaborators=[users["bob"]],
            now_ms=now,
        )
        world.project_id = project.id
        for label, who, kind in (
            ("alice", "alice", RunType.WORKSPACE),
            ("alice-model", "alice", RunType.ENDPOINT),
            ("bob", "bob", RunType.BATCH),
            ("alice-ended", "alice", RunType.APP),
        ):
            run = run_service.start_run(
                tx, actor=users[who], project=project, user=users[who], run_type=kind, now_ms=now
            )
            world.runs[label] = run.id
            world.tokens[label] = run_service.issue_run_token(
                run, signing_key=dstrail.keys.signing_key, now_ms=now
            )
        run_service.stop_run(tx, run_id=world.runs["alice-ended"], now_ms=now, actor=OPERATOR)

        def create(
            name: str,
            kind: str,
            auth: str,
            config: dict[str, str],
            credentials: dict[str, str] | None,
            credential_type: CredentialType = CredentialType.SHARED,
            shared_with: tuple[str, ...] = ("bob",),
        ) -> None:
            spec = ds_service.DataSourceCreate(
                name=name,
                data_source_type=kind,
                auth_type=auth,
                credential_type=credential_type,
                config=config,
                permissions=Permissions(
                    is_everyone=False, user_ids=tuple(users[u].id for u in shared_with)
                ),
                credentials=credentials,
            )
            ds = ds_service.create_data_source(
                tx, vault, spec=spec, actor=users["alice"], now_ms=now
            )
            world.ds_ids[name] = ds.id

        s3_keys = {"accessKeyID": "AKIATESTING", "secretAccessKey": "moto-secret-value"}
        create("dataset-ds", "DatasetConfig", "NoAuth", {}, None)
        create("private-ds", "DatasetConfig", "NoAuth", {}, None, shared_with=())
        create(
            "s3-ds", "S3Config", "AWSIAMBasic", {"bucket": BUCKET, "region": "us-east-1"}, s3_keys
        )
        create(
            "generic-s3-ds",
            "GenericS3Config",
            "AWSIAMBasic",
            {"bucket": GENERIC_BUCKET, "host": moto, "region": "us-east-1", "subfolder": "team"},
            s3_keys,
            CredentialType.INDIVIDUAL,
        )
        pg = {"host": "127.0.0.1", "port": "5432", "database": "postgres"}
        create("pg-ds", "PostgreSQLConfig", "Basic", pg, {"username": "postgres", "password": "x"})
        mysql = {"host": "127.0.0.1", "port": "3306", "database": "test"}
        create("mysql-ds", "MySQLConfig", "Basic", mysql, {"username": "root", "password": ""})
        create(
            "maria-ds",
            "MariaDBConfig",
            "Basic",
            mysql,
            {"username": "root", "password": ""},
            CredentialType.INDIVIDUAL,
        )
        create("gone-ds", "DatasetConfig", "NoAuth", {}, None)
        ds_service.delete_data_source(
            tx, data_source_id=world.ds_ids["gone-ds"], actor=users["alice"], now_ms=now
        )
    files = world.settings.data_dir / "datasets" / world.ds_ids["dataset-ds"]
    (files / "reports").mkdir(parents=True)
    (files / "reports" / "q1.csv").write_text("quarter,revenue\nq1,100\n")
    (files / "reports" / "q2.csv").write_text("quarter,revenue\nq2,120\n")
    (files / "readme.txt").write_text("demo dataset")
    dstrail.store.dispose()


@pytest.fixture(scope="module")
def world(
    module_database_url: str, moto_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[World]:
    """``dstrail serve`` on free ports over the module's database, populated."""
    base = tmp_path_factory.mktemp("dstrail")
    settings = Settings(data_dir=base / "data", database_url=module_database_url)
    port, flight_port = free_port(), free_port()
    world = World(
        base_url=f"http://127.0.0.1:{port}",
        flight_url=f"grpc://127.0.0.1:{flight_port}",
        settings=settings,
        scratch=base,
    )
    _populate(world, moto_url)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DSTRAIL_", "AWS_"))}
    env["AWS_ENDPOINT_URL_S3"] = moto_url
    log = (base / "serve.log").open("wb")
    process = subprocess.Popen(
        [
            str(BIN / "dstrail"),
            "serve",
            "--database-url",
            module_database_url,
            "--data-dir",
            str(settings.data_dir),
            "--port",
            str(port),
            "--flight-port",
            str(flight_port),
        ],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        _wait_for(world.base_url + "/healthz", process, "dstrail serve")
        yield world
    finally:
        _stop(process)
        log.close()
        served = (base / "serve.log").read_text()
        for secret in ("moto-secret-value", "AKIATESTING"):
            assert secret not in served, "a credential reached the server log"
