"""Exporting a verifiable bundle: the events of a filtered window, a checkpoint that covers
them, and an inclusion proof for each, checkable with no database. Two forms: dstrail's JSON
bundle (``verify.verify_bundle``), and one C2SP tlog-proof an event with the log's vkey
(``tlog_proof.verify_tlog_bundle``)."""

from __future__ import annotations

from typing import Any

from dstrail.audit.checkpoints import checkpoint_now, public_key_document
from dstrail.audit.query import iter_chunks
from dstrail.audit.tlog_proof import TLOG_BUNDLE_FORMAT, prove_events
from dstrail.audit.verify import BUNDLE_FORMAT
from dstrail.domain.audit_filter import AuditFilter
from dstrail.domain.timestamps import format_ms
from dstrail.domain.trail import (
    ENCODING_VERSION,
    SEQ,
    CheckpointRecord,
    EventRow,
    checkpoint_document,
    event_document,
    event_leaf,
)
from dstrail.errors import NotFound
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
    rows = _window_rows(store, audit_filter)
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


def _window_rows(store: Store, audit_filter: AuditFilter) -> list[EventRow]:
    """Every event matching ``audit_filter``, oldest first."""
    rows: list[EventRow] = [row for chunk in iter_chunks(store, audit_filter) for row in chunk]
    rows.sort(key=lambda row: row[SEQ])
    return rows


def _note_checkpoint(store: Store, *, newest: int, now_ms: int) -> CheckpointRecord:
    """The latest checkpoint a witness cosigned when it covers event ``newest``, else the
    latest C2SP checkpoint when it does, else one signed now (not cosigned yet)."""
    with store.read() as tx:
        _, cosigned = tx.transparency.cosigned_sizes(at_least=newest)
        checkpoint = tx.integrity.checkpoint_at(cosigned) if cosigned is not None else None
        if checkpoint is None or checkpoint.origin is None:
            checkpoint = tx.integrity.latest_note_checkpoint()
    if checkpoint is None or checkpoint.tree_size < newest:
        checkpoint = checkpoint_now(store, now_ms=now_ms)
    if checkpoint.origin is None:
        raise NotFound(
            "no C2SP checkpoint covers these events yet: the latest checkpoint is of the former "
            "form and nothing was appended since; the next checkpoint signed will (or export "
            "--format json)"
        )
    return checkpoint


def build_tlog_bundle(
    store: Store,
    audit_filter: AuditFilter,
    *,
    vkey: str,
    now_ms: int,
    window: dict[str, Any],
) -> dict[str, Any]:
    """The tlog-proof bundle of every event matching ``audit_filter``, oldest first: one
    C2SP tlog-proof an event, all against the latest C2SP checkpoint (signed first when it
    does not cover the newest of them), with the cosignatures stored for it, and the log's
    ``vkey``."""
    rows = _window_rows(store, audit_filter)
    proofs: list[str] = []
    tree_size: int | None = None
    if rows:
        checkpoint = _note_checkpoint(store, newest=rows[-1][SEQ], now_ms=now_ms)
        tree_size = checkpoint.tree_size
        with store.read() as tx:
            proofs = [proof.encode() for proof in prove_events(tx, rows, checkpoint)]
    return {
        "format": TLOG_BUNDLE_FORMAT,
        "encoding": ENCODING_VERSION,
        "createdAt": format_ms(now_ms),
        "window": window,
        "vkey": vkey,
        "treeSize": tree_size,
        "proofs": proofs,
    }
