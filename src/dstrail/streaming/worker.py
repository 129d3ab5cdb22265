"""The workers: each active destination's events after its cursor, in ``seq`` order, in
batches: read, filter, format, deliver, then move the cursor. At least once and in order:
the cursor moves only after the transport says the receiver has the batch, and a batch that
failed is sent again (receivers drop duplicates by ``seq`` or event id).

They never slow the write path: events are read by primary key after the cursor (the audit
head lock is never taken), and each worker write (the lease, the cursor, the last error) is a
one-row update in a short transaction of its own. The reads are shared (``reads``): one look
at the trail's size a poll for every destination, and a batch read and formatted once for the
destinations at the same cursor. One asyncio loop in one thread runs a task a destination, so
a slow or failing receiver delays only its own destination: it is retried with exponential
backoff and full jitter, keeps its cursor and backlog, and its last error is kept for
``stream list``. A lease in the database lets only one process deliver a destination at a
time (``dstrail serve`` and ``dstrail stream run`` may run side by side).

The cursor's move is conditional on the lease, the generation (a replay bumps it) and the
destination not being paused, so a pause or a replay takes effect at the next batch; other
changes (a rotated secret) are read again within ``refresh_seconds``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace

from dstrail.domain.streams import Destination, StreamRecord
from dstrail.services.credentials import CredentialVault
from dstrail.settings import Settings
from dstrail.store import Store
from dstrail.streaming.reads import Batch, TrailReads
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
        self._appended = asyncio.Event()
        self.reads = TrailReads(store, batch_size=self.settings.batch_size)

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
        self._appended = asyncio.Event()
        self._ready.set()
        tasks: dict[str, asyncio.Task[None]] = {}
        watcher = asyncio.create_task(self._watch_head(tasks), name="stream head")
        logger.info("stream workers started (lease holder %s)", self.owner)
        try:
            while not self._stopping.is_set():
                for destination in self._active():
                    task = tasks.get(destination.id)
                    if task is None or task.done():
                        courier = _Courier(self, destination.id)
                        tasks[destination.id] = asyncio.create_task(
                            courier.run(), name=f"stream {destination.name}"
                        )
                await self.pause(self.settings.refresh_seconds)
        finally:
            self._stopping.set()
            await asyncio.gather(watcher, *tasks.values(), return_exceptions=True)
            logger.info("stream workers stopped")

    async def _watch_head(self, tasks: dict[str, asyncio.Task[None]]) -> None:
        """Read the trail's size once a poll while a destination is delivered, and wake the
        destinations waiting for new events when it grew."""
        assert self._stopping is not None
        while not self._stopping.is_set():
            if any(not task.done() for task in tasks.values()):
                before = self.reads.head
                try:
                    grown = self.reads.read_head() > before
                except Exception as error:  # the database is away: the couriers say so too
                    logger.warning("stream workers: cannot read the trail's size: %r", error)
                    grown = False
                if grown:
                    self._appended, appended = asyncio.Event(), self._appended
                    appended.set()
            await self.pause(self.settings.poll_seconds)

    async def appended_after(self, seq: int) -> None:
        """Return once the trail holds an event after ``seq`` (as the head watcher last
        saw), a refresh interval passed, or the workers are stopping."""
        if self.reads.head > seq:
            return
        assert self._stopping is not None
        stopping = asyncio.ensure_future(self._stopping.wait())
        appended = asyncio.ensure_future(self._appended.wait())
        try:
            await asyncio.wait(
                (stopping, appended), timeout=self.settings.refresh_seconds,
                return_when=asyncio.FIRST_COMPLETED,
            )  # fmt: skip
        finally:
            stopping.cancel()
            appended.cancel()

    @property
    def stopping(self) -> bool:
        """Whether ``stop`` was asked."""
        return self._stopping is None or self._stopping.is_set()

    async def pause(self, seconds: float) -> None:
        """Sleep ``seconds``, or less when the workers stop."""
        assert self._stopping is not None
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), timeout=seconds)

    # -- the database (each a short transaction of its own) ----------------------------------

    def _active(self) -> list[Destination]:
        with self._store.read() as tx:
            return [d for d in tx.streams.all() if not d.paused]

    def current(self, destination_id: str) -> tuple[Destination | None, str | None]:
        """A destination as stored, and its sealed secret."""
        with self._store.read() as tx:
            destination = tx.streams.by_id(destination_id)
            sealed = tx.streams.secret_of(destination_id) if destination else None
        return destination, sealed

    def open_secret(self, sealed: str | None) -> str | None:
        """A destination's secret in clear (``None`` when it has none)."""
        return self._vault.open(sealed)["secret"] if sealed else None

    def take_lease(self, destination_id: str) -> bool:
        """Hold (or renew) the lease of a destination for ``lease_seconds``."""
        now = self._clock()
        until = now + int(self.settings.lease_seconds * 1000)
        with self._store.write() as tx:
            return tx.streams.take_lease(
                destination_id, owner=self.owner, now_ms=now, until_ms=until
            )

    def release(self, destination_id: str) -> None:
        """Give a destination's lease up."""
        with self._store.write() as tx:
            tx.streams.release_lease(destination_id, owner=self.owner)

    def advance(self, destination: Destination, cursor: int, delivered: int) -> bool:
        """Move the cursor; ``False`` when the lease was lost, a replay happened or the
        destination was paused since it was read."""
        with self._store.write() as tx:
            return tx.streams.advance(
                destination.id, owner=self.owner, generation=destination.generation,
                cursor=cursor, delivered=delivered, now_ms=self._clock(),
            )  # fmt: skip

    def note_error(self, destination_id: str, error: str) -> None:
        """Keep a delivery's failure for ``stream list``."""
        with self._store.write() as tx:
            tx.streams.note_error(
                destination_id, owner=self.owner, error=error, now_ms=self._clock()
            )


@dataclass(slots=True)
class _Prepared:
    """A batch and the records of it a destination takes."""

    batch: Batch
    records: list[StreamRecord]


class _Courier:
    """One destination's loop: read (shared), format (shared), deliver, advance."""

    def __init__(self, workers: StreamWorkers, destination_id: str) -> None:
        self._workers = workers
        self._id = destination_id
        self._destination: Destination | None = None
        self._sealed: str | None = None
        self._read_at = float("-inf")
        self._transport: Transport | None = None
        self._opened_with: str | None = None
        self._lease_until = 0.0
        self._failures = 0

    async def run(self) -> None:
        """Deliver until the destination is paused or removed, or the workers stop."""
        workers = self._workers
        try:
            while not workers.stopping:
                destination = self._refreshed()
                if destination is None or destination.paused:
                    return
                if not self._leased():
                    await workers.pause(workers.settings.lease_seconds / 3)
                    continue
                prepared = self._prepared(destination)
                if not prepared.batch.rows:
                    await workers.appended_after(destination.cursor)
                    continue
                if not await self._delivered(destination, prepared.records):
                    continue
                if workers.advance(destination, prepared.batch.last_seq, len(prepared.records)):
                    self._destination = replace(destination, cursor=prepared.batch.last_seq)
                else:  # replayed, paused or the lease lost meanwhile: read it again
                    self._read_at = float("-inf")
        finally:
            if self._transport is not None:
                await self._transport.close()
            workers.release(self._id)

    def _refreshed(self) -> Destination | None:
        """The destination, read again once a refresh interval (a rotated secret, a change
        the cursor's conditional advance does not catch)."""
        now = time.monotonic()
        if (
            self._destination is None
            or now - self._read_at >= self._workers.settings.refresh_seconds
        ):
            self._destination, self._sealed = self._workers.current(self._id)
            self._read_at = now
        return self._destination

    def _leased(self) -> bool:
        """Whether this process holds the lease (taken or renewed at half its life)."""
        settings = self._workers.settings
        now = time.monotonic()
        if self._lease_until - now >= settings.lease_seconds / 2:
            return True
        if not self._workers.take_lease(self._id):
            self._lease_until = 0.0  # another process delivers it: look again later
            return False
        self._lease_until = now + settings.lease_seconds
        return True

    def _prepared(self, destination: Destination) -> _Prepared:
        """The batch after the cursor, and the records of it the destination takes."""
        reads = self._workers.reads
        batch = reads.batch(destination.cursor)
        return _Prepared(batch, reads.records(batch, destination))

    async def _delivered(self, destination: Destination, records: list[StreamRecord]) -> bool:
        """Send ``records`` (nothing to send: delivered); on a failure note it, back off,
        and return ``False``."""
        if not records:
            return True
        if self._transport is not None and self._sealed != self._opened_with:
            await self._transport.close()  # the secret was rotated
            self._transport = None
        try:
            if self._transport is None:
                secret = self._workers.open_secret(self._sealed)
                self._transport = open_transport(destination, secret)
                self._opened_with = self._sealed
            await self._transport.send(records)
        except Exception as error:
            self._failures += 1
            reason = str(error) if isinstance(error, DeliveryError) else repr(error)
            self._workers.note_error(self._id, reason)
            wait = backoff_seconds(self._failures, self._workers.settings)
            logger.warning(
                "stream %s: delivery failed (%d in a row, next try in %.1f s): %s",
                destination.name, self._failures, wait, reason,
            )  # fmt: skip
            self._read_at = float("-inf")  # paused or replayed meanwhile?
            await self._workers.pause(wait)
            return False
        self._failures = 0
        return True
