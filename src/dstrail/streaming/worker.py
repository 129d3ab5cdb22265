"""The workers: each active destination's events after its cursor, in ``seq`` order, in
batches: read, filter, format, deliver, then move the cursor. At least once and in order:
the cursor moves only after the transport says the receiver has the batch, and a batch that
failed is sent again (receivers drop duplicates by ``seq`` or event id).

They never slow the write path: events are read by primary key after the cursor (the audit
head lock is never taken), and each worker write (the lease, the cursor, the last error) is a
one-row update in a short transaction of its own. One asyncio loop in one thread runs a task a
destination, so a slow or failing receiver delays only its own destination: it is retried
with exponential backoff and full jitter, keeps its cursor and backlog, and its last error is
kept for ``stream list``. A lease in the database lets only one process deliver a destination
at a time (``dstrail serve`` and ``dstrail stream run`` may run side by side).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import socket
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from dstrail.domain.streams import Destination
from dstrail.domain.trail import CheckpointRecord, SealedRow
from dstrail.services.credentials import CredentialVault
from dstrail.settings import Settings
from dstrail.store import Store
from dstrail.streaming.formats import encode
from dstrail.streaming.transports import DeliveryError, Transport, open_transport

logger = logging.getLogger("dstrail.streaming")


@dataclass(frozen=True, slots=True)
class WorkerSettings:
    """How the workers pace themselves."""

    poll_seconds: float = 0.1
    """How often an idle destination looks for new events (the lag's floor)."""
    batch_size: int = 1000
    lease_seconds: float = 30.0
    """How long a lease lasts without renewal: how soon another process takes over a dead
    one's destinations."""
    refresh_seconds: float = 1.0
    """How often the list of destinations is read again (added, removed, resumed)."""
    backoff_first_seconds: float = 0.5
    backoff_max_seconds: float = 60.0


def worker_settings(settings: Settings) -> WorkerSettings:
    """The workers' pace from dstrail's settings (``DSTRAIL_STREAM_*``)."""
    return WorkerSettings(
        poll_seconds=settings.stream_poll_seconds,
        batch_size=settings.stream_batch_size,
        lease_seconds=settings.stream_lease_seconds,
    )


def new_owner() -> str:
    """A worker process's lease-holder name: host, pid and a random part."""
    return f"{socket.gethostname()[:32]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def backoff_seconds(failures: int, settings: WorkerSettings) -> float:
    """Full-jitter exponential backoff after ``failures`` failures in a row."""
    ceiling = min(
        settings.backoff_max_seconds, settings.backoff_first_seconds * 2 ** (failures - 1)
    )
    return random.uniform(0, ceiling)  # noqa: S311 - jitter, not a secret


class StreamWorkers:
    """Delivers every active destination, in a thread of its own (``start``/``stop``) or in
    the calling thread (``run``)."""

    def __init__(
        self,
        store: Store,
        vault: CredentialVault,
        *,
        clock: Callable[[], int],
        settings: WorkerSettings | None = None,
        owner: str | None = None,
    ) -> None:
        self._store = store
        self._vault = vault
        self._clock = clock
        self.settings = settings or WorkerSettings()
        self.owner = owner or new_owner()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()

    # -- running ---------------------------------------------------------------------------------

    def start(self) -> None:
        """Run in a daemon thread (``dstrail-streams``) until ``stop``."""
        self._thread = threading.Thread(target=self.run, name="dstrail-streams", daemon=True)
        self._thread.start()
        self._ready.wait(10)

    def stop(self, timeout: float = 15.0) -> None:
        """Ask every destination's task to finish its batch and give its lease up; wait.
        Stopping stopped workers does nothing."""
        loop, stopping = self._loop, self._stopping
        if loop is not None and stopping is not None:
            with contextlib.suppress(RuntimeError):  # the loop has ended already
                loop.call_soon_threadsafe(stopping.set)
        if self._thread is not None:
            self._thread.join(timeout)

    def run(self) -> None:
        """Deliver until ``stop`` (blocks)."""
        asyncio.run(self._main())

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stopping = asyncio.Event()
        self._ready.set()
        tasks: dict[str, asyncio.Task[None]] = {}
        logger.info("stream workers started (lease holder %s)", self.owner)
        try:
            while not self._stopping.is_set():
                for destination in self._active():
                    task = tasks.get(destination.id)
                    if task is None or task.done():
                        tasks[destination.id] = asyncio.create_task(
                            self._deliver(destination.id), name=f"stream {destination.name}"
                        )
                await self._pause(self.settings.refresh_seconds)
        finally:
            self._stopping.set()
            await asyncio.gather(*tasks.values(), return_exceptions=True)
            logger.info("stream workers stopped")

    async def _pause(self, seconds: float) -> None:
        assert self._stopping is not None
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), timeout=seconds)

    # -- the database ----------------------------------------------------------------------------

    def _active(self) -> list[Destination]:
        with self._store.read() as tx:
            return [d for d in tx.streams.all() if not d.paused]

    def _current(self, destination_id: str) -> tuple[Destination | None, str | None]:
        with self._store.read() as tx:
            destination = tx.streams.by_id(destination_id)
            sealed = tx.streams.secret_of(destination_id) if destination else None
        return destination, sealed

    def _batch(self, after: int) -> tuple[list[SealedRow], CheckpointRecord | None]:
        with self._store.read() as tx:
            rows = tx.integrity.events_after(after, limit=self.settings.batch_size)
            checkpoint = tx.integrity.latest_checkpoint() if rows else None
        return rows, checkpoint

    def _take_lease(self, destination_id: str) -> bool:
        now = self._clock()
        until = now + int(self.settings.lease_seconds * 1000)
        with self._store.write() as tx:
            return tx.streams.take_lease(
                destination_id, owner=self.owner, now_ms=now, until_ms=until
            )

    def _release(self, destination_id: str) -> None:
        with self._store.write() as tx:
            tx.streams.release_lease(destination_id, owner=self.owner)

    def _advance(self, destination: Destination, cursor: int, delivered: int) -> bool:
        with self._store.write() as tx:
            return tx.streams.advance(
                destination.id, owner=self.owner, generation=destination.generation,
                cursor=cursor, delivered=delivered, now_ms=self._clock(),
            )  # fmt: skip

    def _note_error(self, destination_id: str, error: str) -> None:
        with self._store.write() as tx:
            tx.streams.note_error(
                destination_id, owner=self.owner, error=error, now_ms=self._clock()
            )

    # -- one destination -------------------------------------------------------------------------

    async def _deliver(self, destination_id: str) -> None:
        assert self._stopping is not None
        transport: Transport | None = None
        opened_with: str | None = None
        lease_until = 0.0
        failures = 0
        loop = asyncio.get_running_loop()
        try:
            while not self._stopping.is_set():
                destination, sealed = self._current(destination_id)
                if destination is None or destination.paused:
                    return
                if lease_until - loop.time() < self.settings.lease_seconds / 2:
                    if not self._take_lease(destination_id):
                        lease_until = 0.0  # another process delivers it: look again later
                        await self._pause(self.settings.lease_seconds / 3)
                        continue
                    lease_until = loop.time() + self.settings.lease_seconds
                rows, checkpoint = self._batch(destination.cursor)
                if not rows:
                    await self._pause(self.settings.poll_seconds)
                    continue
                if transport is not None and sealed != opened_with:
                    await transport.close()  # the secret was rotated
                    transport = None
                try:
                    if transport is None:
                        secret = self._vault.open(sealed)["secret"] if sealed else None
                        transport, opened_with = open_transport(destination, secret), sealed
                    delivered = await self._send(transport, destination, rows, checkpoint)
                except Exception as error:
                    failures += 1
                    reason = str(error) if isinstance(error, DeliveryError) else repr(error)
                    self._note_error(destination_id, reason)
                    wait = backoff_seconds(failures, self.settings)
                    logger.warning(
                        "stream %s: delivery failed (%d in a row, next try in %.1f s): %s",
                        destination.name, failures, wait, reason,
                    )  # fmt: skip
                    await self._pause(wait)
                    continue
                failures = 0
                self._advance(destination, int(rows[-1][7]), delivered)
                if len(rows) < self.settings.batch_size:
                    await self._pause(self.settings.poll_seconds)
        finally:
            if transport is not None:
                await transport.close()
            self._release(destination_id)

    async def _send(
        self,
        transport: Transport,
        destination: Destination,
        rows: list[SealedRow],
        checkpoint: CheckpointRecord | None,
    ) -> int:
        """Deliver the rows the destination's filter takes; how many records went."""
        taken = [row for row in rows if destination.filter.takes(row[3], row[1])]
        if not taken:
            return 0
        records = encode(destination.format, taken, checkpoint)
        await transport.send(records)
        return len(records)
