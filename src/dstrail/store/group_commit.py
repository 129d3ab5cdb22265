"""Group commit: many small write units share one transaction and one durable commit.

Access decisions are frequent and tiny; committing each one alone makes every request wait
for its own flush while holding the audit head lock, so throughput is one flush per request.
Here a single writer thread takes every unit waiting in the queue, runs them one after the
other in one transaction, commits once, and only then hands each caller its result. Nothing
is acknowledged before it is durable, and each unit's reads, decision and event are still in
one transaction. A unit that raises leaves nothing behind: the batch is rolled back and the
other units run again, each in its own savepoint (so units run at most twice, and the common
case pays for no savepoint). The events units record are appended together at the end of the
batch, still inside its transaction (one head lock, one round trip on PostgreSQL).

Units may run twice: they must have no effect outside their transaction.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from dstrail.store.driver import savepoint
from dstrail.store.repositories import ReadAhead, Repositories

T = TypeVar("T")

MAX_UNITS_PER_COMMIT = 64


def _held_lock() -> threading.Lock:
    lock = threading.Lock()
    lock.acquire()
    return lock


@dataclass(eq=False)
class _Unit(Generic[T]):
    work: Callable[[Repositories], T]
    read_ahead: ReadAhead | None
    # Released when the unit is done: a plain lock wakes its caller for a fraction of what
    # ``threading.Event`` (a Python-level condition) costs.
    done: threading.Lock = field(default_factory=_held_lock)
    result: T | None = None
    error: BaseException | None = None


class GroupCommitWriter:
    """Runs write units in shared transactions from one writer thread."""

    def __init__(
        self,
        open_transaction: Callable[[], AbstractContextManager[Repositories]],
        *,
        max_units: int = MAX_UNITS_PER_COMMIT,
    ) -> None:
        self._open_transaction = open_transaction
        self._max_units = max_units
        self._queue: queue.SimpleQueue[_Unit[Any] | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()

    def run(self, work: Callable[[Repositories], T], read_ahead: ReadAhead | None = None) -> T:
        """Run ``work`` in a shared transaction; return once it is committed.

        ``read_ahead``: rows ``work`` will read, read with those of the other units of its
        batch in one round trip. An exception raised by ``work`` (its changes rolled back) or
        by the commit (nothing of the batch kept) is raised here.
        """
        self._ensure_started()
        unit: _Unit[T] = _Unit(work, read_ahead)
        self._queue.put(unit)
        unit.done.acquire()
        if unit.error is not None:
            raise unit.error
        return unit.result  # type: ignore[return-value]

    def close(self) -> None:
        """Stop the writer thread after the units already queued."""
        with self._start_lock:
            if self._thread is not None:
                self._queue.put(None)
                self._thread.join(timeout=10)
                self._thread = None

    def _ensure_started(self) -> None:
        if self._thread is not None:
            return
        with self._start_lock:
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._loop, name="dstrail-group-commit", daemon=True
                )
                self._thread.start()

    def _loop(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            batch = [first, *self._drain()]
            stop = None in batch
            self._commit([unit for unit in batch if unit is not None])
            if stop:
                return

    def _drain(self) -> Iterator[_Unit[Any] | None]:
        for _ in range(self._max_units - 1):
            try:
                yield self._queue.get_nowait()
            except queue.Empty:
                return

    def _commit(self, units: list[_Unit[Any]]) -> None:
        try:
            failed = self._run_optimistically(units)
            if failed is not None:
                # Its transaction was rolled back: run the others again, each in a savepoint
                # (so a unit raising now costs only its own work).
                self._run_carefully([unit for unit in units if unit is not failed])
        finally:
            for unit in units:
                unit.done.release()

    def _run_optimistically(self, units: list[_Unit[Any]]) -> _Unit[Any] | None:
        """All units in one transaction without savepoints (a savepoint is a round trip each
        way on PostgreSQL). The first unit to raise keeps its error, the transaction is rolled
        back and that unit is returned; else the batch is committed and None returned."""
        failed: _Unit[Any] | None = None
        try:
            with self._open_transaction() as tx:
                tx.read_ahead(*(unit.read_ahead for unit in units if unit.read_ahead))
                for unit in units:
                    try:
                        unit.result = unit.work(tx)
                    except Exception as error:
                        unit.error, failed = error, unit
                        raise _RollBack from error
        except _RollBack:
            for unit in units:
                unit.result = None
            return failed
        except BaseException as error:
            for unit in units:
                unit.result, unit.error = None, error
        return None

    def _run_carefully(self, units: list[_Unit[Any]]) -> None:
        try:
            with self._open_transaction() as tx:
                for unit in units:
                    try:
                        with savepoint(tx.connection):
                            if unit.read_ahead:
                                tx.read_ahead(unit.read_ahead)
                            unit.result = unit.work(tx)
                            tx.audit.append_deferred()
                    except Exception as error:
                        tx.audit.drop_deferred()
                        unit.error = error
        except BaseException as error:
            for unit in units:
                if unit.error is None:
                    unit.result, unit.error = None, error


class _RollBack(Exception):
    """Raised out of a batch's transaction to roll all of it back."""
