"""Refused management attempts: recorded, in a transaction of their own.

A change the caller may not make to a data source they can see (edit, permissions, transfer,
delete, attach, detach, credentials) raises ``ChangeRefused``. The entry point opens its write
with ``writing``: the refused change's transaction keeps nothing, the refusal is recorded as
``DataSourceChangeRefused`` (the action tried and why it was refused) and committed alone, and
the refusal goes on to the caller as a 403. A data source the caller cannot see stays a 404 and
records nothing, as does a validation error (400).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from dstrail.audit.recorder import record_event
from dstrail.domain.datasources import DataSource
from dstrail.domain.trail import EventKind
from dstrail.domain.users import User
from dstrail.errors import Forbidden
from dstrail.store import Repositories, Store


class Action:
    """The ``action`` metadata of a refusal: what was tried."""

    UPDATE = "updateDataSource"
    SET_PERMISSIONS = "setPermissions"
    TRANSFER = "transferOwnership"
    DELETE = "deleteDataSource"
    ATTACH = "attachToProject"
    DETACH = "detachFromProject"
    SET_CREDENTIALS = "setCredentials"


class ChangeRefused(Forbidden):
    """A refused change to a data source the actor can see (403, recorded by ``writing``)."""

    def __init__(
        self, message: str, *, data_source: DataSource, actor: User, action: str, reason: str
    ) -> None:
        super().__init__(message)
        self.data_source = data_source
        self.actor = actor
        self.action = action
        self.reason = reason


def record_change_refused(tx: Repositories, *, refusal: ChangeRefused, now_ms: int) -> None:
    """Write down a refused change (``DataSourceChangeRefused``); the caller commits it."""
    record_event(
        tx,
        kind=EventKind.CHANGE_REFUSED,
        data_source=refusal.data_source,
        actor=refusal.actor,
        now_ms=now_ms,
        metadata={"action": refusal.action, "reason": refusal.reason},
    )


@contextmanager
def writing(store: Store, clock: Callable[[], int]) -> Iterator[Repositories]:
    """A write transaction for a management change, which records its refusal (see above)."""
    try:
        with store.write() as tx:
            yield tx
    except ChangeRefused as refused:
        refusal = refused
    else:
        return
    with store.write() as tx:
        record_change_refused(tx, refusal=refusal, now_ms=clock())
    raise refusal
