"""Building the tests' Go programs with Debian's Go and golang.org/x/mod, in GOPATH mode
(offline: no module download)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

GOPATH = Path("/usr/share/gocode")
X_MOD = GOPATH / "src" / "golang.org" / "x" / "mod"


def go_environment(cache: Path) -> dict[str, str]:
    """GOPATH mode over Debian's sources: no module download, no network."""
    env = {**os.environ, "GO111MODULE": "off", "GOPATH": str(GOPATH), "GOFLAGS": ""}
    if "GOCACHE" not in env and "HOME" not in env:
        env["GOCACHE"] = str(cache)
    return env


def build_go(source: Path, into: Path, *, what: str) -> Path:
    """``source`` built into the directory ``into``; skips when Go or x/mod is missing, but
    fails under ``CI=true`` (``.ci/run`` installs them)."""
    go = shutil.which("go")
    if go is None or not X_MOD.is_dir():
        missing = "go" if go is None else str(X_MOD)
        reason = f"{missing} is missing (apt-get install golang-go golang-golang-x-mod-dev)"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{what} is required under CI=true: {reason}")
        pytest.skip(reason)
    built = into / source.stem
    result = subprocess.run(
        [go, "build", "-o", str(built), str(source)],
        env=go_environment(into / "cache"), capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return built
