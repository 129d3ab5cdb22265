"""``dstrail serve`` and ``dstrail stream run`` as real processes for the stream tests."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import httpx

from dstrail.context import Dstrail
from tests.client.conftest import free_port
from tests.support import Login

BIN = Path(sys.executable).parent
FAST_ENVIRONMENT = {"DSTRAIL_STREAM_LEASE_SECONDS": "1", "DSTRAIL_STREAM_POLL_SECONDS": "0.02"}
_STARTED = re.compile(r"stream delivery started \(pid (\d+)\)")


def environment(**settings: str) -> dict[str, str]:
    """This environment without any DSTRAIL_ setting, then the fast lease and poll, then
    ``settings``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DSTRAIL_")}
    return {**env, **FAST_ENVIRONMENT, **settings}


def storage_flags(dstrail: Dstrail) -> list[str]:
    return [
        "--database-url", dstrail.settings.resolved_database_url(),
        "--data-dir", str(dstrail.settings.data_dir),
    ]  # fmt: skip


def serve(dstrail: Dstrail, port: int, log: Path, **settings: str) -> subprocess.Popen[bytes]:
    """``dstrail serve`` on ``port``, its log appended to ``log``, once it answers /healthz."""
    process = subprocess.Popen(
        [str(BIN / "dstrail"), "serve", "--port", str(port), "--flight-port", str(free_port()),
         *storage_flags(dstrail)],
        env=environment(**settings), stdout=log.open("ab"), stderr=subprocess.STDOUT,
    )  # fmt: skip
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert process.poll() is None, log.read_text()[-2000:]
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return process
        except httpx.HTTPError:
            time.sleep(0.1)
    process.kill()
    raise AssertionError(log.read_text()[-2000:])


def stream_run(dstrail: Dstrail, log: Path) -> subprocess.Popen[bytes]:
    """``dstrail stream run``, its log appended to ``log``."""
    return subprocess.Popen(
        [str(BIN / "dstrail"), "stream", "run", *storage_flags(dstrail)],
        env=environment(), stdout=log.open("ab"), stderr=subprocess.STDOUT,
    )  # fmt: skip


def delivery_pids(log: Path) -> list[int]:
    """The process ids of the delivery children ``dstrail serve`` logged starting, in order."""
    return [int(pid) for pid in _STARTED.findall(log.read_text())]


def create(port: int, login: Login, name: str) -> None:
    """A dataset data source made through the API (one CreateDataSource event)."""
    response = httpx.post(
        f"http://127.0.0.1:{port}/api/datasource/v1/datasources",
        json={"name": name, "dataSourceType": "DatasetConfig", "authType": "NoAuth"},
        headers=login.headers, timeout=10,
    )  # fmt: skip
    assert response.status_code == 201, response.text


def wait_until(condition: object, what: str, timeout: float = 30.0) -> None:
    """Until ``condition()`` is true; fails saying ``what`` did not happen."""
    assert callable(condition)
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out: {what}"
        time.sleep(0.05)
