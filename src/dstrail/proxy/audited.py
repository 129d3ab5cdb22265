"""Running an access in its own transaction, and recording a refusal in another one."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from dstrail.context import Dstrail
from dstrail.services.access import AccessRefused, record_refusal
from dstrail.store import Repositories

T = TypeVar("T")


def audited(dstrail: Dstrail, decide: Callable[[Repositories], T]) -> T:
    """``decide`` in a write transaction (its event commits with it), returned once durable.

    Concurrent accesses share one commit (``Store.write_grouped``), each in its own savepoint.
    When ``decide`` raises ``AccessRefused`` its changes roll back, the refusal is recorded in
    the same commit, and the refusal is raised on (403).
    """

    def decide_or_record_refusal(tx: Repositories) -> T | AccessRefused:
        try:
            with tx.connection.begin_nested():
                return decide(tx)
        except AccessRefused as refusal:
            record_refusal(tx, refusal=refusal, now_ms=dstrail.clock())
            return refusal

    outcome = dstrail.store.write_grouped(decide_or_record_refusal)
    if isinstance(outcome, AccessRefused):
        raise outcome
    return outcome
