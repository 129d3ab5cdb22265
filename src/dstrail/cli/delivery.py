"""``dstrail serve``'s stream delivery in a child process of its own (the default,
``DSTRAIL_STREAM_WORKERS=process``): ``dstrail stream run``, started with the server, given
the same settings, started again when it dies, and stopped (SIGTERM: each destination
finishes its batch and gives its lease up) when the server stops.

Why a process: delivery reads and formats every event, and in the server's process that
work would compete with requests for the interpreter lock; apart, it runs on its own core
and the audited write path keeps its pace. The child ends by itself when the server dies
without stopping it (``kill -9``): it watches its parent, so no orphan keeps delivering.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
from typing import IO

from dstrail.settings import Settings

logger = logging.getLogger("dstrail.streaming")

RESTART_FIRST_SECONDS = 1.0
RESTART_MAX_SECONDS = 30.0
STOP_SECONDS = 15.0


def delivery_command(log_format: str) -> list[str]:
    """The child's command line: ``dstrail stream run`` that ends with its parent."""
    return [
        sys.executable, "-m", "dstrail.cli", "stream", "run", "--log-format", log_format,
        "--exit-with-parent",
    ]  # fmt: skip


def delivery_environment(settings: Settings) -> dict[str, str]:
    """The child's environment: this one, with the database and data directory the server
    opened (given by flags or defaults, they are not in the environment). Passed in the
    environment, not on the command line, where a database password would show."""
    return {
        **os.environ,
        "DSTRAIL_DATABASE_URL": settings.resolved_database_url(),
        "DSTRAIL_DATA_DIR": str(settings.data_dir.resolve()),
    }


class DeliveryProcess:
    """Runs ``dstrail stream run`` as a child until ``stop``, restarting it (with a growing
    pause, up to 30 s) when it exits by itself."""

    def __init__(
        self, settings: Settings, *, log_format: str, log: IO[bytes] | None = None
    ) -> None:
        """``log``: where the child writes its log (default: the server's stderr)."""
        self._log = log
        self._command = delivery_command(log_format)
        self._environment = delivery_environment(settings)
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._child: subprocess.Popen[bytes] | None = None
        self._thread = threading.Thread(target=self._watch, name="dstrail-delivery", daemon=True)

    @property
    def pid(self) -> int | None:
        """The running child's process id."""
        with self._lock:
            return self._child.pid if self._child is not None else None

    def start(self) -> None:
        """Start the child, and the thread that starts it again when it dies."""
        self._spawn()
        self._thread.start()

    def stop(self) -> None:
        """SIGTERM the child and wait for it (SIGKILL after 15 s)."""
        self._stopping.set()
        with self._lock:
            child = self._child
        if child is not None and child.poll() is None:
            child.send_signal(signal.SIGTERM)
            try:
                child.wait(STOP_SECONDS)
            except subprocess.TimeoutExpired:
                logger.warning("stream delivery (pid %d) did not stop: killed", child.pid)
                child.kill()
                child.wait()
        self._thread.join(STOP_SECONDS)

    def _spawn(self) -> None:
        with self._lock:
            self._child = subprocess.Popen(  # noqa: S603 - our own command
                self._command, env=self._environment, stdout=self._log, stderr=self._log
            )
        logger.info("stream delivery started (pid %d)", self._child.pid)

    def _watch(self) -> None:
        pause = RESTART_FIRST_SECONDS
        while not self._stopping.is_set():
            with self._lock:
                child = self._child
            assert child is not None
            status = child.wait()
            if self._stopping.is_set():
                return
            logger.warning(
                "stream delivery (pid %d) exited with status %d; starting it again in %.0f s",
                child.pid, status, pause,
            )  # fmt: skip
            if self._stopping.wait(pause):
                return
            pause = min(RESTART_MAX_SECONDS, pause * 2)
            self._spawn()
