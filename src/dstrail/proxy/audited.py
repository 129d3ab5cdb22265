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

    Concurrent accesses may share one commit (``Store.write_grouped``). When ``decide`` raises
    ``AccessRefused`` its transaction keeps nothing, the refusal is recorded and committed in a
    write of its own, and the refusal is raised on (403).
    """
    try:
        return dstrail.store.write_grouped(decide)
    except AccessRefused as refusal:
        _record_refusal(dstrail, refusal)
        raise


def _record_refusal(dstrail: Dstrail, refusal: AccessRefused) -> None:
    dstrail.store.write_grouped(
        lambda tx: record_refusal(tx, refusal=refusal, now_ms=dstrail.clock())
    )
