"""Fixtures: every database test runs on a SQLite file and on the real PostgreSQL.

PostgreSQL: a template database is migrated once per session; each test gets a fresh copy.
Under ``CI=true`` a missing PostgreSQL fails the run instead of skipping.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from fastapi.testclient import TestClient

from dstrail.app import create_app
from dstrail.context import Dstrail, open_dstrail
from dstrail.domain.users import Role
from dstrail.settings import Settings
from dstrail.store import Store
from tests.support import Login, SettableClock, make_user

PG_ADMIN_URL = os.environ.get("DSTRAIL_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
TEMPLATE_DB = f"dstrail_tpl_{os.getpid()}"


def _pg_admin() -> psycopg.Connection[tuple[object, ...]]:
    return psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=5)


def _pg_url(database: str) -> str:
    return PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{database}"


@pytest.fixture(scope="session")
def pg_template() -> Iterator[str | None]:
    """A migrated template database, or ``None`` when PostgreSQL is not reachable."""
    try:
        admin = _pg_admin()
    except psycopg.OperationalError as error:
        if os.environ.get("CI") == "true":
            pytest.fail(f"PostgreSQL is required under CI=true: {error}")
        yield None
        return
    with admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{TEMPLATE_DB}"')
        admin.execute(f'CREATE DATABASE "{TEMPLATE_DB}"')
    store = Store(_pg_url(TEMPLATE_DB))
    store.migrate()
    store.dispose()
    yield TEMPLATE_DB
    with _pg_admin() as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{TEMPLATE_DB}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(
    request: pytest.FixtureRequest, tmp_path: Path, pg_template: str | None
) -> Iterator[str]:
    """A fresh, migrated database of each kind."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'dstrail.sqlite3'}"
        return
    if pg_template is None:
        pytest.skip("PostgreSQL is not reachable at 127.0.0.1:5432")
    name = f"dstrail_t_{uuid.uuid4().hex[:12]}"
    with _pg_admin() as admin:
        admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{pg_template}"')
    yield _pg_url(name)
    with _pg_admin() as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def clock() -> SettableClock:
    """The clock every service call of the test reads."""
    return SettableClock()


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    """Settings for one test's database and data directory."""
    return Settings(data_dir=tmp_path / "data", database_url=database_url)


@pytest.fixture
def dstrail(settings: Settings, clock: SettableClock) -> Iterator[Dstrail]:
    """An opened, migrated dstrail."""
    opened = open_dstrail(settings, clock=clock)
    yield opened
    opened.store.dispose()


@pytest.fixture
def client(dstrail: Dstrail) -> Iterator[TestClient]:
    """An in-process HTTP client over the real app."""
    with TestClient(create_app(dstrail)) as test_client:
        yield test_client


@pytest.fixture
def admin(dstrail: Dstrail) -> Login:
    """A SysAdmin."""
    return make_user(dstrail, "sample-admin", Role.SYS_ADMIN)


@pytest.fixture
def alice(dstrail: Dstrail) -> Login:
    """A plain user."""
    return make_user(dstrail, "alice")


@pytest.fixture
def bob(dstrail: Dstrail) -> Login:
    """Another plain user."""
    return make_user(dstrail, "bob")
