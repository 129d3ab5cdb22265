"""Group commit: many small write units share one transaction and one durable commit.

Access decisions are frequent and tiny; committing each one alone makes every request wait
for its own flush while holding the audit head lock, so throughput is one flush per request.
Here a single writer thread takes every unit waiting in the queue, runs each in its own
savepoint of one transaction (a unit that raises leaves nothing behind, the others stay),
commits once, and only then hands each caller its result. Nothing is acknowledged before it
is durable, and each unit's reads, decision and event are still in one transaction.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from dstrail.store.repositories import Repositories

T = TypeVar("T")

MAX_UNITS_PER_COMMIT = 64


@dataclass(eq=False)
class _Unit(Generic[T]):
    work: Callable[[Repositories], T]
    done: threading.Event = field(default_factory=threading.Event)
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

    def run(self, work: Callable[[Repositories], T]) -> T:
        """Run ``work`` in a savepoint of a shared transaction; return once it is committed.

        An exception raised by ``work`` (its changes rolled back) or by the commit (nothing of
        the batch kept) is raised here.
        """
        self._ensure_started()
        unit: _Unit[T] = _Unit(work)
        self._queue.put(unit)
        unit.done.wait()
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
            with self._open_transaction() as tx:
                for unit in units:
                    try:
                        with tx.connection.begin_nested():
                            unit.result = unit.work(tx)
                    except Exception as error:
                        unit.error = error
        except BaseException as error:
            for unit in units:
                if unit.error is None:
                    unit.result, unit.error = None, error
        finally:
            for unit in units:
                unit.done.set()
