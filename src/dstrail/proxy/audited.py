"""Running an access in its own transaction, and recording a refusal in another one."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from dstrail.context import Dstrail
from dstrail.services.access import AccessRefused, record_refusal
from dstrail.store import ReadAhead, Repositories

T = TypeVar("T")


def audited(
    dstrail: Dstrail, decide: Callable[[Repositories], T], *, read_ahead: ReadAhead | None = None
) -> T:
    """``decide`` in a write transaction (its event commits with it), returned once durable.

    Concurrent accesses share one commit (``Store.write_grouped``); ``read_ahead`` names the
    rows ``decide`` reads, read with those of the others in one round trip. When ``decide`` raises
    ``AccessRefused`` its transaction keeps nothing, the refusal is recorded and committed in a
    write of its own, and the refusal is raised on (403).
    """
    try:
        return dstrail.store.write_grouped(decide, read_ahead=read_ahead)
    except AccessRefused as refusal:
        _record_refusal(dstrail, refusal)
        raise


def _record_refusal(dstrail: Dstrail, refusal: AccessRefused) -> None:
    dstrail.store.write_grouped(
        lambda tx: record_refusal(tx, refusal=refusal, now_ms=dstrail.clock())
    )
