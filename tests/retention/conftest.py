"""Retention tests run at a fixed now (20 June 2026, noon UTC), checkpoints every 20 events."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest
from sqlalchemy import select

from dstrail.context import Dstrail
from dstrail.domain.trail import EventKind
from dstrail.settings import Settings
from dstrail.store.schema import audit_events
from tests.support import SettableClock

NOW = int(datetime(2026, 6, 20, 12, tzinfo=UTC).timestamp() * 1000)


@pytest.fixture
def clock() -> SettableClock:
    return SettableClock(NOW)


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return Settings(
        data_dir=tmp_path / "data", database_url=database_url, checkpoint_every_events=20
    )


def recorded(dstrail: Dstrail, kind: EventKind) -> list[dict[str, str]]:
    """The metadata of every event of ``kind`` in the trail, oldest first."""
    with dstrail.store.engine.connect() as connection:
        rows = connection.execute(
            select(audit_events.c.metadata)
            .where(audit_events.c.event_kind == kind.value)
            .order_by(audit_events.c.seq)
        )
        return [orjson.loads(metadata) for (metadata,) in rows]
