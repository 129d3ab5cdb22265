"""The real client's ``ds.query(sql).to_pandas()`` through dstrail's Arrow Flight server."""

from __future__ import annotations

import hashlib
import json
import subprocess

import pytest
from pyarrow import flight

from tests.client.conftest import BIN, World, now_iso

PG_SQL = "select g as n, 'row ' || g as label from generate_series(1, 3) as g order by g"
MYSQL_SQL = "select 1 as n, 'one' as label union all select 2, 'two'"


def test_postgresql_query_in_a_run(world: World) -> None:
    since = now_iso()
    # With the run's token only: the client sends it to Flight as x-domino-jwt.
    env = world.env(None, run="alice", token_of="alice")
    [result] = world.client(env, ["query", "pg-ds", PG_SQL])
    assert result == {"ok": {"n": ["1", "2", "3"], "label": ["row 1", "row 2", "row 3"]}}
    [query] = [
        e for e in world.events(since, names=("pg-ds",)) if e["metadata"]["operation"] == "query"
    ]
    assert query["metadata"]["queryDigest"] == hashlib.sha256(PG_SQL.encode()).hexdigest()
    assert query["metadata"]["runId"] == world.runs["alice"]
    assert query["metadata"]["runType"] == "Workspace"
    assert query["metadata"]["clientSource"] == "Python"
    assert PG_SQL not in json.dumps(query)


def test_query_errors_reach_the_client_readably(world: World) -> None:
    bad, not_tabular = world.client(
        world.env("alice"),
        ["query", "pg-ds", "select * from no_such_table_here"],
        ["query", "dataset-ds", "select 1"],
    )
    assert 'relation "no_such_table_here" does not exist' in bad["error"]
    assert "error" in not_tabular


def test_mysql_and_mariadb_queries(world: World, mariadb_available: bool) -> None:
    if not mariadb_available:
        pytest.skip("MariaDB is not reachable at 127.0.0.1:3306")
    since = now_iso()
    mysql, maria = world.client(
        world.env("alice", run="alice"),
        ["query", "mysql-ds", MYSQL_SQL],
        ["query", "maria-ds", MYSQL_SQL],
    )
    assert mysql == {"ok": {"n": ["1", "2"], "label": ["one", "two"]}}
    assert maria == mysql
    kinds = {(e["dataSourceName"], e["dataSourceType"]) for e in world.events(since)}
    assert {("mysql-ds", "MySQLConfig"), ("maria-ds", "MariaDBConfig")} <= kinds


def test_individual_credentials_from_the_cli(world: World, mariadb_available: bool) -> None:
    if not mariadb_available:
        pytest.skip("MariaDB is not reachable at 127.0.0.1:3306")
    [missing] = world.client(world.env("bob"), ["query", "maria-ds", "select 1 as one"])
    assert "uses Individual credentials and user 'bob' has none stored" in missing["error"]
    stored = subprocess.run(
        [
            str(BIN / "dstrail"), "datasources", "credentials", "set", "maria-ds",
            "--database-url", world.settings.database_url or "",
            "--data-dir", str(world.settings.data_dir),
            "--user", "bob", "--field", "username=root", "--field", "password",
        ],
        input=b"\n", capture_output=True, check=False, timeout=60,
    )  # fmt: skip
    assert stored.returncode == 0, stored.stderr.decode()
    summary = json.loads(stored.stdout)
    assert summary["fields"] == ["password", "username"]
    assert summary["userId"] == world.user_ids["bob"]
    [result] = world.client(world.env("bob"), ["query", "maria-ds", "select 1 as one"])
    assert result == {"ok": {"one": ["1"]}}


def test_refused_runs_reach_the_client_readably(world: World) -> None:
    since = now_iso()
    refused = flight.FlightClient(world.flight_url)
    ticket = json.dumps({"datasourceId": world.ds_ids["pg-ds"], "sqlQuery": "select 1",
                         "configOverwrites": {}, "credentialOverwrites": {}})  # fmt: skip
    options = flight.FlightCallOptions(
        headers=[
            (b"x-domino-api-key", world.keys["alice"].encode()),
            (b"x-domino-run-id", world.runs["bob"].encode()),
            (b"x-domino-client-source", b"Python"),
        ]
    )
    with pytest.raises(flight.FlightUnauthorizedError, match="was not started by user 'alice'"):
        refused.do_get(flight.Ticket(ticket.encode()), options).read_all()
    with pytest.raises(flight.FlightUnauthenticatedError):
        refused.do_get(flight.Ticket(ticket.encode())).read_all()
    [event] = world.events(since, "AccessDataSourceRefused")
    assert event["metadata"]["reason"] == "runOfAnotherUser"
    assert event["metadata"]["operation"] == "query"
    assert world.events(since) == []


def test_a_database_overwrite_from_ds_update_is_queried_and_recorded(world: World) -> None:
    since = now_iso()
    [result] = world.client(
        world.env("alice"),
        ["update_then", "pg-ds", "PostgreSQLConfig", {"database": "template1"},
         ["query", "pg-ds", "select current_database() as db"]],
    )  # fmt: skip
    assert result == {"ok": {"db": ["template1"]}}
    [event] = [e for e in world.events(since) if e["metadata"]["operation"] == "query"]
    assert event["metadata"]["configOverwrites"] == '{"database":"template1"}'
