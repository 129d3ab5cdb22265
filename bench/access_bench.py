"""Audited data source lookups per second, against the same server's health check.

Starts ``dstrail serve`` (uvicorn, as in production) on SQLite and on PostgreSQL, then drives
``GET /v4/datasource/name/{name}?runId=`` (authentication, permission and run checks, an
``AccessDataSource`` event committed per request) and ``GET /healthz`` (no database work) with
8 concurrent keep-alive clients on loopback, and prints requests per second, the ratio of the
two and p50/p99 latencies.

    .venv/bin/python bench/access_bench.py [--seconds 10] [--rounds 5] [--clients 8] [--only sqlite|postgresql]
"""

from __future__ import annotations

import argparse
import http.client
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import psycopg

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


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def populate(settings: Settings) -> tuple[str, str]:
    """A user with a running run and a data source in its project; returns (api key, run id)."""
    dstrail = open_dstrail(settings)
    now = dstrail.clock()
    with dstrail.store.write() as tx:
        user, key = user_service.create_user(
            tx, actor=OPERATOR, username="bench", email="bench@example.com", role=Role.USER,
            now_ms=now,
        )  # fmt: skip
        project = project_service.create_project(
            tx, actor=user, name="bench", owner=user, collaborators=[], now_ms=now
        )
        run = run_service.start_run(
            tx, actor=user, project=project, user=user, run_type=RunType.BATCH, now_ms=now
        )
        spec = ds_service.DataSourceCreate(
            name="bench-ds",
            data_source_type="DatasetConfig",
            auth_type="NoAuth",
            credential_type=CredentialType.SHARED,
            config={},
            permissions=Permissions(is_everyone=True),
        )
        ds = ds_service.create_data_source(
            tx, CredentialVault(dstrail.keys.encryption_key), spec=spec, actor=user, now_ms=now
        )
        # in the run's project, as on Domino: each lookup also keeps the project's last access
        ds_service.attach_to_project(
            tx, data_source_id=ds.id, project_id=project.id, actor=user, now_ms=now
        )
    dstrail.store.dispose()
    return key.secret, run.id


def measure(
    port: int, path: str, headers: dict[str, str], *, clients: int, seconds: float
) -> tuple[float, list[float], int]:
    """(requests/s, sorted latencies in ms, failures) of ``clients`` keep-alive loops."""
    latencies: list[list[float]] = [[] for _ in range(clients)]
    failures = [0] * clients
    start_at = time.perf_counter() + 0.2
    stop_at = start_at + seconds

    def loop(index: int) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        mine = latencies[index]
        while time.perf_counter() < start_at:
            time.sleep(0.001)
        while True:
            began = time.perf_counter()
            if began >= stop_at:
                break
            connection.request("GET", path, headers=headers)
            response = connection.getresponse()
            response.read()
            if response.status != 200:
                failures[index] += 1
            mine.append((time.perf_counter() - began) * 1000)
        connection.close()

    threads = [threading.Thread(target=loop, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    merged = sorted(x for mine in latencies for x in mine)
    return len(merged) / seconds, merged, sum(failures)


def percentile(values: list[float], fraction: float) -> float:
    return values[min(len(values) - 1, int(len(values) * fraction))] if values else float("nan")


def median_round(
    rounds: list[tuple[float, list[float], int]],
) -> tuple[float, list[float], int]:
    """The round of median throughput, with every round's latencies and failures."""
    ordered = sorted(rounds, key=lambda r: r[0])
    latencies = sorted(x for r in rounds for x in r[1])
    return ordered[len(ordered) // 2][0], latencies, sum(r[2] for r in rounds)


def bench_database(
    label: str, database_url: str, *, clients: int, seconds: float, rounds: int
) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        settings = Settings(data_dir=Path(scratch) / "data", database_url=database_url)
        key, run_id = populate(settings)
        port = free_port()
        server = subprocess.Popen(
            [
                str(Path(sys.executable).parent / "dstrail"), "serve",
                "--database-url", database_url, "--data-dir", str(settings.data_dir),
                "--port", str(port), "--flight-port", str(free_port()),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
                    connection.request("GET", "/healthz")
                    if connection.getresponse().status == 200:
                        break
                except OSError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.1)
            lookup = f"/v4/datasource/name/bench-ds?runId={run_id}"
            auth = {"X-Domino-Api-Key": key}
            measure(port, lookup, auth, clients=clients, seconds=1)  # warm up
            measure(port, "/healthz", {}, clients=clients, seconds=1)
            # Alternate short rounds so both see the same machine load; keep the median round.
            health_rounds, audited_rounds = [], []
            for _ in range(rounds):
                health_rounds.append(
                    measure(port, "/healthz", {}, clients=clients, seconds=seconds / rounds)
                )
                audited_rounds.append(
                    measure(port, lookup, auth, clients=clients, seconds=seconds / rounds)
                )
            health_rps, health, health_failed = median_round(health_rounds)
            audited_rps, audited, audited_failed = median_round(audited_rounds)
        finally:
            server.terminate()
            server.wait(timeout=10)
    assert health_failed == 0 and audited_failed == 0, "some requests failed"
    print(
        f"{label:<11} healthz {health_rps:8.0f} req/s (p50 {percentile(health, 0.5):6.2f} ms, "
        f"p99 {percentile(health, 0.99):6.2f} ms) | audited lookup {audited_rps:8.0f} req/s "
        f"(p50 {percentile(audited, 0.5):6.2f} ms, p99 {percentile(audited, 0.99):6.2f} ms) | "
        f"ratio {audited_rps / health_rps:.2f} (target >= 0.40)",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10, help="per endpoint, in total")
    parser.add_argument("--rounds", type=int, default=5, help="alternating rounds")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--only", choices=["sqlite", "postgresql"])
    args = parser.parse_args()
    print(
        f"{args.clients} concurrent clients, loopback, {args.seconds:g} s per endpoint in "
        f"{args.rounds} alternating rounds (median round; latencies over all rounds)"
    )
    if args.only in (None, "sqlite"):
        with tempfile.TemporaryDirectory() as scratch:
            url = f"sqlite:///{Path(scratch) / 'bench.sqlite3'}"
            bench_database(
                "SQLite", url, clients=args.clients, seconds=args.seconds, rounds=args.rounds
            )
    if args.only in (None, "postgresql"):
        name = f"dstrail_bench_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
            admin.execute(f'CREATE DATABASE "{name}"')
        try:
            url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
            bench_database(
                "PostgreSQL", url, clients=args.clients, seconds=args.seconds, rounds=args.rounds
            )
        finally:
            with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    main()
