"""Verifying the trail: a whole database against its checkpoints, or an exported bundle alone.

A report names the first wrong sequence number and what happened there (see ``FindingKind``).
Event-level findings come from comparing each row with the leaf hash stored when it was
appended; checkpoint findings from recomputing the tree root at every signed size. How each
kind of tampering shows, and what cannot be seen, is in docs/integrity.md.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Final

import orjson

from dstrail.audit.checkpoints import (
    check_ed25519,
    key_id_of,
    public_key_from_text,
    verify_signature,
)
from dstrail.audit.report import (
    Finding,
    FindingKind,
    VerifyReport,
    note_findings,
    witnessing_summary,
)
from dstrail.domain.trail import (
    EVENT_COLUMNS,
    LEAF_HASH,
    METADATA,
    PERFORMED_BY_USERNAME,
    PROJECT_ID,
    RUN_ID,
    SEALED_COLUMNS,
    SEQ,
    CheckpointRecord,
    EventRow,
    SealedRow,
    checkpoint_from_document,
    event_leaf,
    merkle,
    note,
    row_of_document,
)
from dstrail.domain.trail.trust import TrustPolicy
from dstrail.errors import DstrailError, InvalidInput
from dstrail.store import Repositories, Store
from dstrail.store.integrity import IntegrityRepository

__all__ = [
    "BUNDLE_FORMAT",
    "Finding",
    "FindingKind",
    "VerifyReport",
    "WitnessedNote",
    "load_checkpoint_file",
    "read_external",
    "verify_bundle",
    "verify_store",
]

BUNDLE_FORMAT = "dstrail-audit-bundle/v1"
CHUNK_ROWS = 20_000
MAX_ANOMALIES = 100_000
MAX_REORDER_CANDIDATES = 512

_EVENT: Final = 8
"""A sealed row's ``EventRow``, the columns its leaf hashes: ``row[:_EVENT]``."""
if SEALED_COLUMNS[:_EVENT] != EVENT_COLUMNS:
    raise AssertionError("a sealed row does not begin with the columns of an event row")


def _derived_columns_match(row: SealedRow, metadata: dict[str, Any]) -> bool:
    """The filter columns a row carries beside its metadata still say what the metadata says."""
    return (
        row[PERFORMED_BY_USERNAME] == metadata.get("performedByUsername")
        and (row[RUN_ID] is None or row[RUN_ID] == metadata.get("runId"))
        and (row[PROJECT_ID] is None or row[PROJECT_ID] == metadata.get("projectId"))
    )


@dataclass(frozen=True, slots=True)
class WitnessedNote:
    """A cosigned checkpoint note from outside the store, as a witness serves it (``source``:
    where it came from, to name it in findings)."""

    source: str
    text: str


def verify_store(
    store: Store,
    *,
    public_key: bytes,
    external: Sequence[CheckpointRecord] = (),
    trust: TrustPolicy | None = None,
    witnessed: Sequence[WitnessedNote] = (),
    chunk_rows: int = CHUNK_ROWS,
) -> VerifyReport:
    """Check every event and checkpoint of a database; ``external`` checkpoints (saved
    elsewhere earlier) reveal a tail cut off together with its checkpoints.

    With ``trust`` (the log's vkey, whose key must be ``public_key``, and witnesses): the
    latest C2SP checkpoint must be cosigned by the policy's witnesses (its stored
    cosignatures and those of the same checkpoint among ``witnessed``), and each
    ``witnessed`` note signed by the log is a claim on the trail: larger than the trail is a
    rollback, another root at its size a split view."""
    if trust is not None and trust.log.public_key != public_key:
        raise InvalidInput("--vkey: its key is not the key the trail is verified with")
    if witnessed and trust is None:
        raise InvalidInput("--witnessed: give the log's --vkey to check the notes with")
    started = time.perf_counter()
    report = VerifyReport(source=store.url.split("@")[-1], key_id=key_id_of(public_key))
    with store.read() as tx:
        head_size, head_frontier = tx.integrity.head()
        stored = tx.integrity.checkpoints()
        check = _StoreCheck(head_size, public_key, report.key_id, report.findings)
        check.gather(stored, "checkpoint")
        check.gather(external, "external checkpoint")
        if trust is not None:
            notes = _witnessed_claims(trust, witnessed, check)
            report.witnessing = _latest_cosigned(tx, trust, notes, report.findings)
        purged = tx.retention.state().purge_through
        if purged:
            check.resume_after_purge(tx.integrity, purged)
        else:
            check.begin()
        for rows in _chunks(tx.integrity, chunk_rows, after=purged):
            check.check_chunk(rows)
    check.tail(head_frontier)
    report.findings.extend(_classify(check.anomalies, check.anomaly_count))
    report.checkpoints = len(stored)
    report.tree_size = check.builder.size
    report.events = check.builder.size - purged
    report.purged_through = purged
    report.root_hash = check.builder.root().hex()
    report.seconds = time.perf_counter() - started
    return report


def _chunks(
    integrity: IntegrityRepository, chunk_rows: int, *, after: int = 0
) -> Iterator[list[SealedRow]]:
    """Every event after ``after`` in seq order, ``chunk_rows`` at a time."""
    while True:
        rows = integrity.events_after(after, limit=chunk_rows)
        yield rows
        if len(rows) < chunk_rows:
            return
        after = rows[-1][SEQ]


def _witnessed_claims(
    trust: TrustPolicy, witnessed: Sequence[WitnessedNote], check: _StoreCheck
) -> list[note.Note]:
    """Check each witnessed note; the ones the log signed become claims on the trail. Returns
    the parsed notes (their cosignatures count for the latest checkpoint when it is theirs)."""
    evidence = replace(trust, min_witnesses=0)  # the policy is for the trail's checkpoint
    parsed_notes = []
    for item in witnessed:
        try:
            parsed = note.parse_note(item.text)
            checked = trust.check_note(parsed, check_ed25519)
        except InvalidInput as error:
            raise InvalidInput(f"--witnessed {item.source}: {error.message}") from None
        if not checked.origin_matches:
            raise InvalidInput(
                f"--witnessed {item.source}: a checkpoint of the log "
                f"{checked.checkpoint.origin!r}, not of {trust.log.name!r}"
            )
        what = f"witnessed checkpoint {item.source}"
        check.findings.extend(note_findings(checked, evidence, what=what))
        parsed_notes.append(parsed)
        if checked.log_signed:
            names = ", ".join(checked.cosigned_by) or "no given witness"
            statement = checked.checkpoint
            record = CheckpointRecord(
                tree_size=statement.tree_size,
                root_hash=statement.root_hash,
                timestamp_ms=0,
                key_id=trust.log.key_id.hex(),
                signature=b"",
                origin=statement.origin,
            )
            check.claim(_Claim(f"{what} (cosigned by {names})", record, witnessed=True))
    return parsed_notes


def _latest_cosigned(
    tx: Repositories, trust: TrustPolicy, notes: Sequence[note.Note], findings: list[Finding]
) -> str:
    """Findings when fewer witnesses than the policy asks cosigned the latest C2SP checkpoint
    (or a cosignature of it does not verify); returns who cosigned it, for the report."""
    latest = tx.integrity.latest_note_checkpoint()
    if latest is None:
        if trust.witnessed:
            message = f"no C2SP checkpoint yet for the policy's {trust.describe()} to cosign"
            findings.append(Finding(FindingKind.WITNESS_POLICY, 0, message))
        return ""
    cosigned = latest.note(tx.transparency.cosignatures_of(latest.tree_size))
    for other in notes:
        if other.text == cosigned.text:
            cosigned = note.with_signatures(cosigned, other.signatures)
    checked = trust.check_note(cosigned, check_ed25519)
    what = "latest C2SP checkpoint"
    # Its own signature is checked with the other stored checkpoints.
    findings.extend(
        f
        for f in note_findings(checked, trust, what=what)
        if f.kind is not FindingKind.BAD_SIGNATURE
    )
    return witnessing_summary(checked, trust, what=what) if trust.witnesses else ""


@dataclass(frozen=True, slots=True)
class _Claim:
    """A signed root to check: where the checkpoint came from and the checkpoint;
    ``witnessed``: from outside, as a witness saw it (a mismatch is a split view)."""

    source: str
    record: CheckpointRecord
    witnessed: bool = False


Claims = dict[int, list[_Claim]]
"""Signed roots to check, by tree size."""


class _StoreCheck:
    """The running state of ``verify_store``: the tree rebuilt from the events so far, the
    checkpoints it must meet, and what was found wrong."""

    __slots__ = (
        "anomalies",
        "anomaly_count",
        "builder",
        "expected",
        "findings",
        "head_size",
        "key_id",
        "last_good_size",
        "public_key",
        "targets",
    )

    def __init__(
        self, head_size: int, public_key: bytes, key_id: str, findings: list[Finding]
    ) -> None:
        self.head_size = head_size
        self.public_key = public_key
        self.key_id = key_id
        self.findings = findings
        self.targets: Claims = {}
        self.builder = merkle.FrontierBuilder()
        self.expected = 1
        """The seq the next row should have."""
        self.last_good_size = 0
        """The largest signed size whose root the events met."""
        self.anomalies: list[SealedRow] = []
        """Rows that do not hash to their stored leaf (the first ``MAX_ANOMALIES``)."""
        self.anomaly_count = 0

    # (1) The checkpoints to check ---------------------------------------------------------

    def gather(self, records: Iterable[CheckpointRecord], source: str) -> None:
        """Keep the checkpoints whose signature verifies; a finding for each other one."""
        for record in records:
            if verify_signature(record, self.public_key):
                self.claim(_Claim(source, record))
                continue
            named = f" (key {record.key_id})" if source == "checkpoint" else ""
            self.findings.append(
                Finding(
                    FindingKind.BAD_SIGNATURE,
                    record.tree_size,
                    f"the {source} of tree size {record.tree_size}{named} does not verify "
                    f"under key {self.key_id}",
                )
            )

    def claim(self, claim: _Claim) -> None:
        """A root the events must meet at its tree size."""
        self.targets.setdefault(claim.record.tree_size, []).append(claim)

    def begin(self) -> None:
        """Claims on the empty tree, met before any event."""
        if 0 in self.targets:
            self._meet(self.targets[0])

    def resume_after_purge(self, integrity: IntegrityRepository, purged: int) -> None:
        """Events 1 to ``purged`` were purged by retention: go on from the tree of ``purged``
        leaves as their kept hashes make it, and check the claims on trees of at most that
        size against roots from those hashes (the archive holds the bodies)."""
        nodes = merkle.frontier_nodes(purged)
        stored = integrity.nodes(set(nodes))
        if any(node not in stored for node in nodes):
            message = f"the kept tree hashes of the purged events 1-{purged} are incomplete"
            self.findings.append(Finding(FindingKind.DELETED, 1, message))
            return
        for size, claims in sorted(self.targets.items()):
            if size <= purged:
                self._meet(claims, root=integrity.root(size) if size else merkle.EMPTY_ROOT)
        self.builder = merkle.FrontierBuilder.resume(purged, [stored[node] for node in nodes])
        self.expected = purged + 1

    # (2, 3, 4) Each chunk of events -------------------------------------------------------

    def check_chunk(self, rows: list[SealedRow]) -> None:
        """Check each row against its stored leaf and add it to the tree. Hot: plain work a
        row, locals bound once; anything unusual is a method call."""
        head_size, targets, expected = self.head_size, self.targets, self.expected
        builder, loads = self.builder, orjson.loads
        for row in rows:
            seq = row[SEQ]
            if seq > expected or seq > head_size:
                self._out_of_place(seq, expected)
            metadata = loads(row[METADATA])
            leaf = event_leaf(row[:_EVENT], metadata=metadata)
            if row[LEAF_HASH] != leaf:
                self._anomaly(row)
            elif not _derived_columns_match(row, metadata):
                self._filter_mismatch(seq)
            builder.add(leaf)
            expected = seq + 1
            claims = targets.get(builder.size)
            if claims:
                self._meet(claims)
        self.expected = expected

    def _out_of_place(self, seq: int, expected: int) -> None:
        """A row past the head, or after a gap."""
        if seq > self.head_size:
            message = (
                f"event {seq} lies beyond the tree head (size {self.head_size}): "
                "it was never appended through dstrail"
            )
            self.findings.append(Finding(FindingKind.INSERTED, seq, message))
            return
        missing = f"{expected}" if seq == expected + 1 else f"{expected}-{seq - 1}"
        self.findings.append(
            Finding(FindingKind.DELETED, expected, f"event(s) {missing} are missing")
        )

    def _anomaly(self, row: SealedRow) -> None:
        """A row that does not hash to its stored leaf: kept for ``_classify``."""
        self.anomaly_count += 1
        if len(self.anomalies) < MAX_ANOMALIES:
            self.anomalies.append(row)

    def _filter_mismatch(self, seq: int) -> None:
        message = (
            "a filter column (user name, run or project id) no longer matches the event's metadata"
        )
        self.findings.append(Finding(FindingKind.MODIFIED, seq, message))

    def _meet(self, claims: list[_Claim], *, root: bytes | None = None) -> None:
        """The tree reached a signed size: its root (``root``, else the builder's) must be the
        signed one."""
        if root is None:
            root = self.builder.root()
        for claim in claims:
            record = claim.record
            if record.root_hash == root:
                self.last_good_size = max(self.last_good_size, record.tree_size)
                continue
            start = self.last_good_size + 1
            if claim.witnessed:
                message = (
                    f"the {claim.source} signs another root for the first {record.tree_size} "
                    f"events than they hash to: the log showed a different trail (a split "
                    f"view); the difference lies in seq {start}-{record.tree_size}"
                )
                self.findings.append(Finding(FindingKind.SPLIT_VIEW, start, message))
                continue
            message = (
                f"the first {record.tree_size} events do not hash to the root the "
                f"{claim.source} of that size signed; the difference lies in seq "
                f"{start}-{record.tree_size}"
            )
            self.findings.append(Finding(FindingKind.ROOT_MISMATCH, start, message))

    # (5) The tail and the head ------------------------------------------------------------

    def tail(self, head_frontier: list[bytes]) -> None:
        """After the last row: events the head or a checkpoint counts but the store lacks,
        and the head's frontier against the tree rebuilt."""
        count, last = self.builder.size, self.expected - 1
        if self.head_size > last:
            message = f"the tree head counts {self.head_size} events but the last stored is {last}"
            self.findings.append(Finding(FindingKind.DELETED, self.expected, message))
        for size, claims in sorted(self.targets.items()):
            if size > count:
                self.findings.extend(_truncated(claim, count) for claim in claims)
        if count == self.head_size and head_frontier != self.builder.frontier:
            message = "the stored frontier of the tree does not match the events"
            self.findings.append(Finding(FindingKind.HEAD_MISMATCH, count, message))


def _truncated(claim: _Claim, count: int) -> Finding:
    size = claim.record.tree_size
    if claim.witnessed:
        message = (
            f"the {claim.source} shows the trail had {size} events; the store ends at "
            f"{count}: it was rolled back"
        )
        return Finding(FindingKind.ROLLBACK, count + 1, message)
    return Finding(
        FindingKind.TRUNCATED,
        count + 1,
        f"the {claim.source} of tree size {size} (signed {claim.record.timestamp_ms} ms) "
        f"proves events up to {size} existed; the store ends at {count}",
    )


# (6) What happened to rows that no longer match their leaf ---------------------------------


def _classify(anomalies: list[SealedRow], total: int) -> list[Finding]:
    """Name what happened to rows whose content no longer hashes to their stored leaf."""
    names = _Anomalies(sorted(row[SEQ] for row in anomalies)[:MAX_REORDER_CANDIDATES])
    for row in anomalies:
        names.row(row)
    names.pair_swaps()
    names.shifts()
    result = sorted(names.found.values(), key=lambda f: f.seq)
    if total > len(anomalies):
        result.append(
            Finding(
                FindingKind.MODIFIED,
                max(row[SEQ] for row in anomalies) + 1,
                f"{total - len(anomalies)} more rows do not match their leaf hashes",
            )
        )
    return result


class _Anomalies:
    """Names anomalies one by one: a row moved one place up or down (a shift, resolved once
    all rows are seen), a row that traded places with another, or one just modified."""

    __slots__ = ("candidates", "down", "found", "up")

    def __init__(self, candidates: list[int]) -> None:
        self.candidates = candidates
        """The seqs a reordered row may have come from."""
        self.found: dict[int, Finding] = {}
        self.up: set[int] = set()
        """Rows whose leaf is the one of the seq before: appended one place earlier."""
        self.down: set[int] = set()
        """Rows whose leaf is the one of the seq after: appended one place later."""

    def row(self, row: SealedRow) -> None:
        """Name one anomaly, or note its shift."""
        seq, stored = row[SEQ], row[LEAF_HASH]
        if stored is None:
            message = f"event {seq} has no leaf hash: it was written around dstrail"
            self.found[seq] = Finding(FindingKind.INSERTED, seq, message)
            return
        event, metadata = row[:_EVENT], orjson.loads(row[METADATA])
        if stored == event_leaf(event, metadata=metadata, seq=seq - 1):
            self.up.add(seq)
        elif stored == event_leaf(event, metadata=metadata, seq=seq + 1):
            self.down.add(seq)
        else:
            self._moved_or_modified(seq, stored, event, metadata)

    def _moved_or_modified(
        self, seq: int, stored: bytes, event: EventRow, metadata: dict[str, Any]
    ) -> None:
        """The row holds the leaf of another candidate's seq: the two traded places. Else it
        was modified."""
        candidates = self.candidates if len(self.candidates) > 1 else []
        other = next(
            (
                t
                for t in candidates
                if t != seq and stored == event_leaf(event, metadata=metadata, seq=t)
            ),
            None,
        )
        if other is None:
            message = f"event {seq} does not hash to the leaf recorded when it was appended"
            self.found.setdefault(seq, Finding(FindingKind.MODIFIED, seq, message))
            return
        low, high = min(seq, other), max(seq, other)
        message = f"events {low} and {high} trade places"
        self.found.setdefault(low, Finding(FindingKind.REORDERED, low, message))

    def pair_swaps(self) -> None:
        """Two neighbours swapped: one shifted down next to one shifted up."""
        for seq in sorted(self.down):
            if seq + 1 in self.up and seq - 1 not in self.down:
                self.down.discard(seq)
                self.up.discard(seq + 1)
                message = f"events {seq} and {seq + 1} trade places"
                self.found.setdefault(seq, Finding(FindingKind.REORDERED, seq, message))

    def shifts(self) -> None:
        """The first row of each run shifted up follows an insertion; of each run shifted
        down, a deletion."""
        for seq in sorted(self.up):
            if seq - 1 not in self.up:
                self.found[seq - 1] = Finding(
                    FindingKind.INSERTED,
                    seq - 1,
                    f"an event was inserted at {seq - 1}: the events from {seq} on were "
                    "appended one place earlier",
                )
        for seq in sorted(self.down):
            if seq - 1 not in self.down:
                self.found[seq] = Finding(
                    FindingKind.DELETED,
                    seq,
                    f"an event was deleted at {seq}: the events from {seq} on were appended "
                    "one place later",
                )


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
    carried, checkpoint, events = _bundle_parts(bundle)
    key = public_key or carried
    report = VerifyReport(
        source="bundle",
        checkpoints=1,
        tree_size=checkpoint.tree_size,
        root_hash=checkpoint.root_hash.hex(),
        key_id=key_id_of(key),
        events=len(events),
    )
    if not verify_signature(checkpoint, key):
        message = (
            f"the bundle's checkpoint of tree size {checkpoint.tree_size} does not verify "
            f"under key {report.key_id}"
        )
        report.findings.append(Finding(FindingKind.BAD_SIGNATURE, checkpoint.tree_size, message))
    seen: set[int] = set()
    for entry in events:
        finding = _check_entry(entry, checkpoint, seen)
        if finding is not None:
            report.findings.append(finding)
    report.seconds = time.perf_counter() - started
    return report


def _bundle_parts(bundle: Mapping[str, Any]) -> tuple[bytes, CheckpointRecord, list[Any]]:
    """The key a bundle carries, its checkpoint and its event entries."""
    if bundle.get("format") != BUNDLE_FORMAT:
        raise InvalidInput(f"bundle: format is not {BUNDLE_FORMAT!r}")
    try:
        carried = public_key_from_text(str(bundle["publicKey"]["publicKey"]))
        checkpoint = checkpoint_from_document(bundle["checkpoint"])
        events = list(bundle["events"])
    except (KeyError, TypeError) as error:
        raise InvalidInput(f"bundle: missing {error}") from None
    return carried, checkpoint, events


def _check_entry(entry: Any, checkpoint: CheckpointRecord, seen: set[int]) -> Finding | None:
    """What is wrong with one event entry of a bundle (None: it is included as given)."""
    seq, leaf, path = _bundle_entry(entry)
    size = checkpoint.tree_size
    if seq in seen or not 1 <= seq <= size:
        message = f"event {seq} is repeated or outside the checkpoint's tree"
        return Finding(FindingKind.INSERTED, seq, message)
    seen.add(seq)
    if merkle.verify_inclusion(leaf, seq - 1, size, path, checkpoint.root_hash):
        return None
    recorded = entry.get("leafHash")
    kind = FindingKind.MODIFIED if recorded and recorded != leaf.hex() else FindingKind.BAD_PROOF
    message = f"event {seq} is not included in the checkpoint of tree size {size} as given"
    return Finding(kind, seq, message)


def _bundle_entry(entry: Any) -> tuple[int, bytes, list[bytes]]:
    """An entry's seq, the leaf of its event document, and its audit path."""
    try:
        seq = int(entry["seq"])
        leaf = event_leaf(row_of_document(entry["event"], seq))
        path = [bytes.fromhex(h) for h in entry["auditPath"]]
    except (KeyError, TypeError, ValueError, DstrailError) as error:
        raise InvalidInput(f"bundle: an event entry is malformed ({error})") from None
    return seq, leaf, path


def read_external(files: Iterable[str]) -> tuple[list[CheckpointRecord], bytes | None]:
    """Checkpoints saved elsewhere, and the public key the first of them names."""
    records: list[CheckpointRecord] = []
    key: bytes | None = None
    for text in files:
        record, public = load_checkpoint_file(text)
        records.append(record)
        key = key or public
    return records, key
