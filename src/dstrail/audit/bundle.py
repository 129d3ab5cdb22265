"""Exporting a verifiable bundle: the events of a filtered window, a checkpoint that covers
them, and an inclusion proof for each, checkable with no database (``verify_bundle``)."""

from __future__ import annotations

from typing import Any

from dstrail.audit.checkpoints import checkpoint_now, public_key_document
from dstrail.audit.query import iter_chunks
from dstrail.audit.verify import BUNDLE_FORMAT
from dstrail.domain.audit_filter import AuditFilter
from dstrail.domain.timestamps import format_ms
from dstrail.domain.trail import (
    ENCODING_VERSION,
    SEQ,
    EventRow,
    checkpoint_document,
    event_document,
    event_leaf,
)
from dstrail.store import Store


def build_bundle(
    store: Store,
    audit_filter: AuditFilter,
    *,
    public_key: bytes,
    now_ms: int,
    window: dict[str, Any],
) -> dict[str, Any]:
    """The bundle of every event matching ``audit_filter``, oldest first. When the latest
    checkpoint does not cover the newest of them, a new one is signed first."""
    rows: list[EventRow] = [row for chunk in iter_chunks(store, audit_filter) for row in chunk]
    rows.sort(key=lambda row: row[SEQ])
    with store.read() as tx:
        checkpoint = tx.integrity.latest_checkpoint()
    newest = rows[-1][SEQ] if rows else 0
    if checkpoint is None or checkpoint.tree_size < newest:
        checkpoint = checkpoint_now(store, now_ms=now_ms)
    entries: list[dict[str, Any]] = []
    with store.read() as tx:
        for row in rows:
            path = tx.integrity.inclusion_proof(row[SEQ], checkpoint.tree_size)
            entries.append(
                {
                    "seq": row[SEQ],
                    "event": event_document(row),
                    "leafHash": event_leaf(row).hex(),
                    "auditPath": [node.hex() for node in path],
                }
            )
    return {
        "format": BUNDLE_FORMAT,
        "encoding": ENCODING_VERSION,
        "createdAt": format_ms(now_ms),
        "window": window,
        "publicKey": public_key_document(public_key),
        "checkpoint": checkpoint_document(checkpoint),
        "events": entries,
    }
