"""Forensics fixtures: the follower of the test's dstrail, and fresh databases of the test's
kind for property tests (one per example)."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

import pytest

from dstrail.context import Dstrail, open_dstrail
from dstrail.services.forensics import Follower
from dstrail.settings import Settings
from tests.conftest import _pg_admin, _pg_url
from tests.forensics.histories import START_MS
from tests.support import SettableClock

Fresh = Callable[[], AbstractContextManager[tuple[Dstrail, SettableClock]]]


@pytest.fixture
def follower(dstrail: Dstrail) -> Follower:
    """The follower of the test's dstrail, batches of 3 events (so a few events span several),
    deriving the grants alone (the detection rules' consumers are tested with the rules)."""
    return Follower(
        dstrail.store, settings=dstrail.settings, clock=dstrail.clock, batch_events=3,
        consumers=(),
    )  # fmt: skip


@pytest.fixture
def fresh_dstrail(database_url: str, tmp_path: Path, pg_template: str | None) -> Fresh:
    """Opens a new, migrated dstrail of the test's database kind (a SQLite file, or a copy of
    the migrated PostgreSQL template), with its own clock at ``START_MS``; disposed and
    dropped when the block ends."""
    made = iter(range(1_000_000))

    @contextmanager
    def fresh() -> Iterator[tuple[Dstrail, SettableClock]]:
        number = next(made)
        name = ""
        if database_url.startswith("sqlite"):
            url = f"sqlite:///{tmp_path / f'history-{number}.sqlite3'}"
        else:
            assert pg_template is not None
            name = f"dstrail_h_{uuid.uuid4().hex[:12]}"
            with _pg_admin() as admin:
                admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{pg_template}"')
            url = _pg_url(name)
        clock = SettableClock(START_MS)
        settings = Settings(data_dir=tmp_path / f"data-{number}", database_url=url)
        opened = open_dstrail(settings, clock=clock)
        try:
            yield opened, clock
        finally:
            opened.store.dispose()
            if name:
                with _pg_admin() as admin:
                    admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    return fresh
