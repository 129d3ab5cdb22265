"""Store.migrate() from several processes at once on a new database (``dstrail serve`` started
twice): every one succeeds, and the schema is migrated once, to the head revision."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import text

from dstrail.store import Store
from dstrail.store.engine import MIGRATIONS_DIR
from tests.conftest import _pg_admin, _pg_url

MIGRATORS = 6

# Each child builds its store and opens a connection first (imports and connecting take far
# longer than the race window), says so, and migrates when the parent closes its stdin: all
# of them at the same moment.
_CHILD = """
import sys
from dstrail.store import Store
store = Store(sys.argv[1])
store.engine.connect().close()
print("ready", flush=True)
sys.stdin.read()
store.migrate()
store.dispose()
"""


@pytest.fixture(params=["sqlite", "postgresql"])
def new_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database that exists and has no schema at all (never migrated)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'new.sqlite3'}"
        return
    try:
        admin = _pg_admin()
    except psycopg.OperationalError as error:
        if os.environ.get("CI") == "true":
            pytest.fail(f"PostgreSQL is required under CI=true: {error}")
        pytest.skip("PostgreSQL is not reachable at 127.0.0.1:5432")
    name = f"dstrail_mig_{uuid.uuid4().hex[:12]}"
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    yield _pg_url(name)
    with _pg_admin() as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _head_revision() -> str:
    config = Config(str(MIGRATIONS_DIR / "alembic.ini"))
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    head = ScriptDirectory.from_config(config).get_current_head()
    assert head is not None
    return head


def test_concurrent_migrations_of_a_new_database_all_succeed(new_url: str) -> None:
    children = [
        subprocess.Popen(
            [sys.executable, "-c", _CHILD, new_url],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(MIGRATORS)
    ]
    try:
        for child in children:
            assert child.stdout is not None
            assert child.stdout.readline() == "ready\n", child.communicate(timeout=60)
        for child in children:
            assert child.stdin is not None
            child.stdin.close()  # go
        results = [(child.wait(timeout=120), child.stderr) for child in children]
        failures = [
            (code, stderr.read() if stderr else "") for code, stderr in results if code != 0
        ]
    finally:
        for child in children:
            if child.poll() is None:
                child.kill()
                child.wait()
    assert failures == [], f"{len(failures)} of {MIGRATORS} migrators failed: {failures[0][1]}"

    store = Store(new_url)
    try:
        with store.engine.connect() as connection:
            versions = connection.execute(text("SELECT version_num FROM alembic_version")).all()
            heads = connection.execute(text("SELECT id, size FROM audit_head")).all()
        assert [row[0] for row in versions] == [_head_revision()]
        assert [tuple(row) for row in heads] == [(1, 0)]
        with store.read() as tx:
            assert tx.audit.size() == 0
        store.migrate()  # at head already: nothing to do, and no error
    finally:
        store.dispose()
