"""Settings: a wrong database URL is refused with a message that says what is accepted."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from dstrail.settings import Settings


@pytest.mark.parametrize(
    "url", ["mysql://root@localhost/dstrail", "dstrail.sqlite3", "http://example.com/db", ""]
)
def test_a_bad_database_url_scheme_is_a_clear_error(
    url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DSTRAIL_DATABASE_URL", url)
    if url == "":
        # empty means "not set": the embedded SQLite default
        assert Settings().resolved_database_url().startswith("sqlite:///")
        return
    with pytest.raises(ValidationError) as raised:
        Settings()
    message = str(raised.value)
    assert "database_url" in message
    assert "unsupported database URL scheme" in message
    for accepted in ("sqlite://", "postgresql://"):
        assert accepted in message


@pytest.mark.parametrize(
    "url",
    [
        "sqlite:////tmp/x.sqlite3",
        "postgresql://postgres@127.0.0.1:5432/dstrail",
        "postgresql+psycopg://postgres@127.0.0.1/dstrail",
        "postgres://postgres@127.0.0.1/dstrail",
    ],
)
def test_accepted_database_urls(url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DSTRAIL_DATABASE_URL", url)
    assert Settings().resolved_database_url() == url


def test_the_default_is_sqlite_under_the_data_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DSTRAIL_DATABASE_URL", raising=False)
    monkeypatch.setenv("DSTRAIL_DATA_DIR", str(tmp_path / "here"))
    url = Settings().resolved_database_url()
    assert url == f"sqlite:///{(tmp_path / 'here' / 'dstrail.sqlite3').resolve()}"


def test_unknown_settings_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValidationError, match="database_urll"):
        Settings(database_urll="sqlite:///x")  # type: ignore[call-arg]
