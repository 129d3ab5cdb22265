"""Data files are the owner's alone: the data directory 0700, the keys and (SQLite) the database
and its WAL 0600, whatever the process's umask lets through."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from dstrail.context import open_dstrail
from dstrail.settings import Settings
from tests.support import create_dataset, make_user


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_new_data_directory_and_its_files_are_private(database_url: str, tmp_path: Path) -> None:
    previous = os.umask(0o022)  # the usual umask: files 0644 unless created otherwise
    try:
        data_dir = tmp_path / "fresh" / "data"
        dstrail = open_dstrail(Settings(data_dir=data_dir, database_url=database_url))
        try:
            create_dataset(dstrail, make_user(dstrail, "alice"), "files")
            files = sorted(p.name for p in data_dir.iterdir())
            assert _mode(data_dir) == 0o700
            for key in ("signing.key", "credentials.key", "audit-signing.key"):
                assert _mode(data_dir / key) == 0o600, key
            if database_url.startswith("sqlite"):
                database = Path(database_url.removeprefix("sqlite:///"))
                assert _mode(database.parent) == 0o700
                assert _mode(database) == 0o600
                wal = database.with_name(database.name + "-wal")
                assert wal.exists() and _mode(wal) == 0o600, files
        finally:
            dstrail.store.dispose()
    finally:
        os.umask(previous)
