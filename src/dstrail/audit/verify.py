"""Verifying the trail: a whole database against its checkpoints, or an exported bundle alone.

A report names the first wrong sequence number and what happened there (see ``FindingKind``).
Event-level findings come from comparing each row with the leaf hash stored when it was
appended; checkpoint findings from recomputing the tree root at every signed size. How each
kind of tampering shows, and what cannot be seen, is in docs/integrity.md.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import orjson

from dstrail.audit import merkle
from dstrail.audit.checkpoints import (
    checkpoint_from_document,
    key_id_of,
    public_key_from_text,
    verify_signature,
)
from dstrail.audit.encoding import document_leaf, event_leaf, row_leaf
from dstrail.errors import DstrailError, InvalidInput
from dstrail.store import Store
from dstrail.store.integrity import CheckpointRecord, IntegrityRow

BUNDLE_FORMAT = "dstrail-audit-bundle/v1"
CHUNK_ROWS = 20_000
MAX_ANOMALIES = 100_000
MAX_REORDER_CANDIDATES = 512


class FindingKind(StrEnum):
    """What verification found wrong."""

    MODIFIED = "event-modified"
    DELETED = "event-deleted"
    INSERTED = "event-inserted"
    REORDERED = "events-reordered"
    TRUNCATED = "tail-truncated"
    BAD_SIGNATURE = "checkpoint-signature-invalid"
    ROOT_MISMATCH = "checkpoint-root-mismatch"
    HEAD_MISMATCH = "tree-head-mismatch"
    BAD_PROOF = "inclusion-proof-invalid"


EVENT_KINDS = frozenset(
    {
        FindingKind.MODIFIED,
        FindingKind.DELETED,
        FindingKind.INSERTED,
        FindingKind.REORDERED,
        FindingKind.TRUNCATED,
    }
)
"""Findings about events themselves; they explain the checkpoint findings that follow them."""


@dataclass(frozen=True, slots=True)
class Finding:
    """One thing wrong, at a sequence number (for a checkpoint: the tree size it signs)."""

    kind: FindingKind
    seq: int
    message: str

    def document(self) -> dict[str, Any]:
        """JSON form."""
        return {"kind": self.kind.value, "seq": self.seq, "message": self.message}


@dataclass(slots=True)
class VerifyReport:
    """What was checked and what was found."""

    source: str
    events: int = 0
    checkpoints: int = 0
    tree_size: int = 0
    root_hash: str = ""
    key_id: str = ""
    seconds: float = 0.0
    findings: list[Finding] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Nothing wrong was found."""
        return not self.findings

    @property
    def first(self) -> Finding | None:
        """The headline: the first wrong event, else the first wrong checkpoint."""
        events = [f for f in self.findings if f.kind in EVENT_KINDS]
        chosen = events or self.findings
        return min(chosen, key=lambda f: f.seq) if chosen else None

    def document(self) -> dict[str, Any]:
        """JSON form."""
        first = self.first
        return {
            "ok": self.ok,
            "source": self.source,
            "events": self.events,
            "checkpoints": self.checkpoints,
            "treeSize": self.tree_size,
            "rootHash": self.root_hash,
            "keyId": self.key_id,
            "seconds": round(self.seconds, 3),
            "firstWrongSeq": first.seq if first else None,
            "first": first.document() if first else None,
            "findings": [f.document() for f in sorted(self.findings, key=lambda f: f.seq)[:1000]],
            "findingCount": len(self.findings),
        }

    def text(self) -> str:
        """Readable lines."""
        lines = [
            f"verified {self.source}: {self.events} events, {self.checkpoints} checkpoints, "
            f"tree size {self.tree_size}, key {self.key_id or '-'} ({self.seconds:.2f} s)"
        ]
        first = self.first
        if first is None:
            lines.append("OK: the trail matches its signed checkpoints")
            return "\n".join(lines)
        lines.append(f"FAILED: first wrong seq {first.seq}: {first.kind.value}: {first.message}")
        ordered = sorted(self.findings, key=lambda f: f.seq)
        lines.extend(f"  seq {f.seq}: {f.kind.value}: {f.message}" for f in ordered[:50])
        if len(ordered) > 50:
            lines.append(f"  ... {len(ordered) - 50} more")
        return "\n".join(lines)


def _derived_columns_match(row: IntegrityRow, metadata: dict[str, Any]) -> bool:
    return (
        row[8] == metadata.get("performedByUsername")
        and (row[9] is None or row[9] == metadata.get("runId"))
        and (row[10] is None or row[10] == metadata.get("projectId"))
    )


def verify_store(
    store: Store,
    *,
    public_key: bytes,
    external: Sequence[CheckpointRecord] = (),
    chunk_rows: int = CHUNK_ROWS,
) -> VerifyReport:
    """Check every event and checkpoint of a database; ``external`` checkpoints (saved
    elsewhere earlier) reveal a tail cut off together with its checkpoints."""
    started = time.perf_counter()
    report = VerifyReport(source=store.url.split("@")[-1], key_id=key_id_of(public_key))
    findings = report.findings
    with store.read() as tx:
        head_size, head_frontier = tx.integrity.head()
        stored_checkpoints = tx.integrity.checkpoints()
        targets: dict[int, list[tuple[str, CheckpointRecord]]] = {}
        for record in stored_checkpoints:
            if verify_signature(record, public_key):
                targets.setdefault(record.tree_size, []).append(("checkpoint", record))
            else:
                findings.append(
                    Finding(
                        FindingKind.BAD_SIGNATURE,
                        record.tree_size,
                        f"the checkpoint of tree size {record.tree_size} (key "
                        f"{record.key_id}) does not verify under key {report.key_id}",
                    )
                )
        for record in external:
            if verify_signature(record, public_key):
                targets.setdefault(record.tree_size, []).append(("external checkpoint", record))
            else:
                findings.append(
                    Finding(
                        FindingKind.BAD_SIGNATURE,
                        record.tree_size,
                        f"the external checkpoint of tree size {record.tree_size} does not "
                        f"verify under key {report.key_id}",
                    )
                )
        report.checkpoints = len(stored_checkpoints)
        builder = merkle.FrontierBuilder()
        anomalies: list[IntegrityRow] = []
        anomaly_count = 0
        last_good_size = 0
        expected = 1
        after = 0
        while True:
            rows = tx.integrity.events_after(after, limit=chunk_rows)
            for row in rows:
                seq = row[7]
                if seq > head_size:
                    findings.append(
                        Finding(
                            FindingKind.INSERTED,
                            seq,
                            f"event {seq} lies beyond the tree head (size {head_size}): "
                            "it was never appended through dstrail",
                        )
                    )
                elif seq > expected:
                    missing = f"{expected}" if seq == expected + 1 else f"{expected}-{seq - 1}"
                    findings.append(
                        Finding(FindingKind.DELETED, expected, f"event(s) {missing} are missing")
                    )
                metadata = orjson.loads(row[4])
                leaf = event_leaf(
                    seq=seq,
                    data_source_id=row[0],
                    data_source_name=row[1],
                    data_source_type=row[2],
                    event_kind=row[3],
                    metadata=metadata,
                    performed_by=row[5],
                    timestamp_ms=row[6],
                )
                if row[11] != leaf:
                    anomaly_count += 1
                    if len(anomalies) < MAX_ANOMALIES:
                        anomalies.append(row)
                elif not _derived_columns_match(row, metadata):
                    findings.append(
                        Finding(
                            FindingKind.MODIFIED,
                            seq,
                            "a filter column (user name, run or project id) no longer matches "
                            "the event's metadata",
                        )
                    )
                builder.add(leaf)
                expected = seq + 1
                claims = targets.get(builder.size)
                if claims:
                    root = builder.root()
                    for source, record in claims:
                        if record.root_hash == root:
                            last_good_size = max(last_good_size, record.tree_size)
                        else:
                            findings.append(
                                Finding(
                                    FindingKind.ROOT_MISMATCH,
                                    last_good_size + 1,
                                    f"the first {record.tree_size} events do not hash to the "
                                    f"root the {source} of that size signed; the difference "
                                    f"lies in seq {last_good_size + 1}-{record.tree_size}",
                                )
                            )
            if len(rows) < chunk_rows:
                break
            after = rows[-1][7]
        count = builder.size
        report.events = count
        report.tree_size = count
        report.root_hash = builder.root().hex()
    if head_size > expected - 1:
        findings.append(
            Finding(
                FindingKind.DELETED,
                expected,
                f"the tree head counts {head_size} events but the last stored is {expected - 1}",
            )
        )
    for size, claims in sorted(targets.items()):
        if size > count:
            for source, record in claims:
                findings.append(
                    Finding(
                        FindingKind.TRUNCATED,
                        count + 1,
                        f"the {source} of tree size {record.tree_size} "
                        f"(signed {record.timestamp_ms} ms) proves events up to "
                        f"{record.tree_size} existed; the store ends at {count}",
                    )
                )
    if (head_size, head_frontier) != (count, builder.frontier) and count == head_size:
        findings.append(
            Finding(
                FindingKind.HEAD_MISMATCH,
                count,
                "the stored frontier of the tree does not match the events",
            )
        )
    findings.extend(_classify(anomalies, anomaly_count))
    report.seconds = time.perf_counter() - started
    return report


def _classify(anomalies: list[IntegrityRow], total: int) -> list[Finding]:
    """Name what happened to rows whose content no longer hashes to their stored leaf."""
    found: dict[int, Finding] = {}
    by_seq = {row[7]: row for row in anomalies}
    shifted_up: set[int] = set()
    shifted_down: set[int] = set()
    candidates = sorted(by_seq)[:MAX_REORDER_CANDIDATES]
    for row in anomalies:
        seq, stored = row[7], row[11]
        event_row: Any = row[:8]
        if stored is None:
            found[seq] = Finding(
                FindingKind.INSERTED,
                seq,
                f"event {seq} has no leaf hash: it was written around dstrail",
            )
        elif stored == row_leaf(event_row, seq - 1):
            shifted_up.add(seq)
        elif stored == row_leaf(event_row, seq + 1):
            shifted_down.add(seq)
        else:
            other = next(
                (
                    t
                    for t in candidates
                    if t != seq and len(candidates) > 1 and stored == row_leaf(event_row, t)
                ),
                None,
            )
            if other is not None:
                first = min(seq, other)
                found.setdefault(
                    first,
                    Finding(
                        FindingKind.REORDERED,
                        first,
                        f"events {min(seq, other)} and {max(seq, other)} trade places",
                    ),
                )
            else:
                found.setdefault(
                    seq,
                    Finding(
                        FindingKind.MODIFIED,
                        seq,
                        f"event {seq} does not hash to the leaf recorded when it was appended",
                    ),
                )
    for seq in sorted(shifted_down):
        if seq + 1 in shifted_up and seq - 1 not in shifted_down:  # two neighbours swapped
            shifted_down.discard(seq)
            shifted_up.discard(seq + 1)
            found.setdefault(
                seq,
                Finding(FindingKind.REORDERED, seq, f"events {seq} and {seq + 1} trade places"),
            )
    for seq in sorted(shifted_up):
        if seq - 1 not in shifted_up:
            found[seq - 1] = Finding(
                FindingKind.INSERTED,
                seq - 1,
                f"an event was inserted at {seq - 1}: the events from {seq} on were appended "
                "one place earlier",
            )
    for seq in sorted(shifted_down):
        if seq - 1 not in shifted_down:
            found[seq] = Finding(
                FindingKind.DELETED,
                seq,
                f"an event was deleted at {seq}: the events from {seq} on were appended one "
                "place later",
            )
    result = sorted(found.values(), key=lambda f: f.seq)
    if total > len(anomalies):
        result.append(
            Finding(
                FindingKind.MODIFIED,
                max(by_seq) + 1,
                f"{total - len(anomalies)} more rows do not match their leaf hashes",
            )
        )
    return result


# Bundles ------------------------------------------------------------------------------------


def load_checkpoint_file(text: str) -> tuple[CheckpointRecord, bytes | None]:
    """A checkpoint saved by ``dstrail audit checkpoint --out`` (or a bare checkpoint object),
    with the public key it names, when it names one."""
    try:
        document = orjson.loads(text)
    except orjson.JSONDecodeError as error:
        raise InvalidInput(f"checkpoint file: not JSON ({error})") from None
    if isinstance(document, dict) and "checkpoint" in document:
        key = document.get("publicKey")
        public = public_key_from_text(str(key["publicKey"])) if isinstance(key, dict) else None
        return checkpoint_from_document(document["checkpoint"]), public
    return checkpoint_from_document(document), None


def verify_bundle(bundle: Mapping[str, Any], *, public_key: bytes | None = None) -> VerifyReport:
    """Check an exported bundle with no database: the checkpoint signature, and each event's
    inclusion under the checkpoint's root. ``public_key`` pins the trusted key (default: the
    key the bundle carries, which only proves integrity, not origin)."""
    started = time.perf_counter()
    if bundle.get("format") != BUNDLE_FORMAT:
        raise InvalidInput(f"bundle: format is not {BUNDLE_FORMAT!r}")
    try:
        carried = public_key_from_text(str(bundle["publicKey"]["publicKey"]))
        checkpoint = checkpoint_from_document(bundle["checkpoint"])
        events: list[Any] = list(bundle["events"])
    except (KeyError, TypeError) as error:
        raise InvalidInput(f"bundle: missing {error}") from None
    key = public_key or carried
    report = VerifyReport(
        source="bundle",
        checkpoints=1,
        tree_size=checkpoint.tree_size,
        root_hash=checkpoint.root_hash.hex(),
        key_id=key_id_of(key),
        events=len(events),
    )
    findings = report.findings
    if not verify_signature(checkpoint, key):
        findings.append(
            Finding(
                FindingKind.BAD_SIGNATURE,
                checkpoint.tree_size,
                f"the bundle's checkpoint of tree size {checkpoint.tree_size} does not verify "
                f"under key {report.key_id}",
            )
        )
    seen: set[int] = set()
    for entry in events:
        try:
            seq = int(entry["seq"])
            leaf = document_leaf(entry["event"], seq)
            path = [bytes.fromhex(h) for h in entry["auditPath"]]
        except (KeyError, TypeError, ValueError, DstrailError) as error:
            raise InvalidInput(f"bundle: an event entry is malformed ({error})") from None
        if seq in seen or not 1 <= seq <= checkpoint.tree_size:
            findings.append(
                Finding(
                    FindingKind.INSERTED,
                    seq,
                    f"event {seq} is repeated or outside the checkpoint's tree",
                )
            )
            continue
        seen.add(seq)
        if not merkle.verify_inclusion(
            leaf, seq - 1, checkpoint.tree_size, path, checkpoint.root_hash
        ):
            recorded = entry.get("leafHash")
            kind = (
                FindingKind.MODIFIED
                if recorded and recorded != leaf.hex()
                else FindingKind.BAD_PROOF
            )
            findings.append(
                Finding(
                    kind,
                    seq,
                    f"event {seq} is not included in the checkpoint of tree size "
                    f"{checkpoint.tree_size} as given",
                )
            )
    report.seconds = time.perf_counter() - started
    return report


def read_external(files: Iterable[str]) -> tuple[list[CheckpointRecord], bytes | None]:
    """Checkpoints saved elsewhere, and the public key the first of them names."""
    records: list[CheckpointRecord] = []
    key: bytes | None = None
    for text in files:
        record, public = load_checkpoint_file(text)
        records.append(record)
        key = key or public
    return records, key
