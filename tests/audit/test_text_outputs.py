"""Text outputs keep one line per event: a value a user controls (an object key, a prefix)
cannot start a line of its own or send escape sequences to a terminal."""

from __future__ import annotations

import os
import subprocess
import sys

from fastapi.testclient import TestClient

from dstrail.context import Dstrail
from tests.support import Login, create_dataset

FORGED = (
    "a\n2026-01-01T00:00:00.000Z DeleteDataSource dataSource=payroll (S3Config, x) by=admin\r"
    "\x1b[2J\x1b[31mred\x07\x85\u2028"
)
ESCAPED = (
    r"a\n2026-01-01T00:00:00.000Z DeleteDataSource dataSource=payroll (S3Config, x) by=admin\r"
    r"\u001b[2J\u001b[31mred\u0007\u0085\u2028"
)


def _forge(client: TestClient, dstrail: Dstrail, alice: Login) -> None:
    ds = create_dataset(dstrail, alice, "files")
    for body in (
        {
            "datasourceId": ds.id,
            "objectKey": FORGED,
            "isReadWrite": True,
        },  # a write: no such file yet
        {"datasourceId": ds.id, "prefix": FORGED},
    ):
        path = "/objectstore/key" if "objectKey" in body else "/objectstore/list"
        assert client.post(path, json=body, headers=alice.headers).status_code == 200


def _check_one_line_per_event(text: str, events: int) -> None:
    lines = text.splitlines()
    assert len(lines) == events
    assert not any(line.startswith("2026-01-01") for line in lines)
    assert not any(c in text for c in "\r\x1b\x07\x85\u2028")
    assert sum(f"objectKey={ESCAPED}" in line for line in lines) == 1
    assert sum(f"prefix={ESCAPED}" in line for line in lines) == 1


def test_the_text_download_and_the_console_file_keep_one_line_per_event(
    client: TestClient, dstrail: Dstrail, admin: Login, alice: Login
) -> None:
    _forge(client, dstrail, alice)
    download = client.get("/v4/datasource/audit/download?jsonFile=false", headers=admin.headers)
    assert download.status_code == 200
    _check_one_line_per_event(download.text, 3)  # the creation and the two accesses
    signin = client.get("/signin")
    token = signin.text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    client.post("/signin", data={"api_key": admin.api_key, "csrf_token": token})
    console = client.get("/audit/six-months.txt")
    assert console.status_code == 200
    _check_one_line_per_event(console.text, 3)


def test_the_cli_text_format_keeps_one_line_per_event(
    client: TestClient, dstrail: Dstrail, alice: Login
) -> None:
    _forge(client, dstrail, alice)
    environment = {k: v for k, v in os.environ.items() if not k.startswith("DSTRAIL_")}
    result = subprocess.run(
        [sys.executable, "-m", "dstrail.cli", "audit", "query", "--format", "text"],
        capture_output=True,
        text=True,
        env={
            **environment,
            "DSTRAIL_DATABASE_URL": dstrail.settings.resolved_database_url(),
            "DSTRAIL_DATA_DIR": str(dstrail.settings.data_dir),
        },
        timeout=120,
        check=True,
    )
    _check_one_line_per_event(result.stdout, 3)


def test_escaping_is_reversible() -> None:
    from dstrail.audit.serialize import escape_text, unescape_text

    assert escape_text(FORGED) == ESCAPED
    for value in (FORGED, "plain", "\\", "\\u0041", "x\\ny", "\t"):
        escaped = escape_text(value)
        assert unescape_text(escaped) == value
        assert escaped.isprintable() or "\\" in escaped
        assert "\n" not in escaped and "\r" not in escaped
