"""Retention tests run at a fixed now (20 June 2026, noon UTC), checkpoints every 20 events."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from dstrail.settings import Settings
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
