"""PostgreSQL pool: a connection that sat idle is pinged, so one killed behind the pool's back
(a database restart) is replaced instead of failing the next request."""

from __future__ import annotations

import time

import psycopg
import pytest
from sqlalchemy.exc import OperationalError

from dstrail.store import Store, engine


def _kill_other_connections(url: str) -> None:
    with psycopg.connect(
        url.replace("postgresql+psycopg://", "postgresql://"), autocommit=True
    ) as admin:
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )


def _open(database_url: str, idle_seconds: float, monkeypatch: pytest.MonkeyPatch) -> Store:
    if not database_url.startswith("postgresql"):
        pytest.skip("the idle ping is PostgreSQL's (SQLite has no server to lose)")
    monkeypatch.setattr(engine, "IDLE_PING_SECONDS", idle_seconds)
    store = Store(database_url)
    with store.read() as tx:
        tx.audit.size()  # one connection now sits in the pool
    return store


def test_an_idle_connection_killed_behind_the_pool_is_replaced(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = _open(database_url, 0.05, monkeypatch)
    try:
        _kill_other_connections(database_url)
        time.sleep(0.1)
        with store.read() as tx:
            assert tx.audit.size() == 0
    finally:
        store.dispose()


def test_without_the_ping_the_same_kill_fails_the_next_request(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = _open(database_url, 3600, monkeypatch)
    try:
        _kill_other_connections(database_url)
        time.sleep(0.1)
        with pytest.raises(OperationalError), store.read() as tx:
            tx.audit.size()
        with store.read() as tx:  # the pool threw the dead connection away
            assert tx.audit.size() == 0
    finally:
        store.dispose()


def test_the_group_writers_connection_killed_while_idle_is_replaced(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Grouped writes keep one connection between batches; after an idle spell they take a
    pinged one from the pool instead."""
    store = _open(database_url, 0.05, monkeypatch)
    try:
        assert store.write_grouped(lambda tx: tx.audit.size()) == 0
        _kill_other_connections(database_url)
        time.sleep(0.1)
        assert store.write_grouped(lambda tx: tx.audit.size()) == 0
    finally:
        store.dispose()


def test_a_group_writers_connection_killed_while_busy_fails_one_batch_only(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = _open(database_url, 3600, monkeypatch)
    try:
        assert store.write_grouped(lambda tx: tx.audit.size()) == 0
        _kill_other_connections(database_url)
        time.sleep(0.1)
        with pytest.raises(OperationalError):
            store.write_grouped(lambda tx: tx.audit.size())
        assert store.write_grouped(lambda tx: tx.audit.size()) == 0
    finally:
        store.dispose()
