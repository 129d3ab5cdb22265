"""Offline proofs of events in the C2SP ``tlog-proof`` form, and bundles of them.

``prove_event`` makes one (the event's canonical encoding as the extra, its inclusion proof,
and a cosigned C2SP checkpoint note covering it); ``verify_tlog_proof`` and
``verify_tlog_bundle`` check them with no database, against what the auditor trusts (the
log's vkey, witness vkeys and how many must have cosigned): c2sp.org/tlog-proof, "Verifying
a tlog proof". The text format is ``dstrail.domain.trail.tlog_proof``.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from dstrail.audit.checkpoints import check_ed25519
from dstrail.audit.report import (
    Finding,
    FindingKind,
    VerifyReport,
    note_findings,
    witnessing_summary,
)
from dstrail.domain.trail import SEQ, CheckpointRecord, EventRow, merkle, note
from dstrail.domain.trail.tlog_proof import (
    TlogProof,
    event_of_extra,
    event_proof,
    parse_tlog_proof,
)
from dstrail.domain.trail.trust import CheckedNote, TrustPolicy
from dstrail.errors import InvalidInput, NotFound
from dstrail.store import Repositories

TLOG_BUNDLE_FORMAT: Final = "dstrail-tlog-proof-bundle/v1"
PROOF_VERDICT: Final = "the event is in the log's signed checkpoint"
BUNDLE_VERDICT: Final = "every event is in the log's signed checkpoint"


# Making proofs -------------------------------------------------------------------------------


def proof_checkpoint(
    tx: Repositories, *, seq: int, tree_size: int | None = None
) -> CheckpointRecord:
    """The C2SP checkpoint a proof of event ``seq`` is made against: the one of ``tree_size``
    events, else the smallest covering the event that a witness cosigned, else the smallest
    covering it. ``NotFound`` saying why there is none."""
    if tree_size is not None:
        record = tx.integrity.checkpoint_at(tree_size)
        if record is None:
            raise NotFound(f"no checkpoint of tree size {tree_size}")
        if record.origin is None:
            raise NotFound(
                f"the checkpoint of tree size {tree_size} is of the former form (signed before "
                "dstrail spoke C2SP, no origin): no tlog-proof can be made against it"
            )
        if tree_size < seq:
            raise InvalidInput(f"treeSize: {tree_size} does not cover seq {seq}")
        return record
    cosigned, _ = tx.transparency.cosigned_sizes(at_least=seq)
    record = tx.integrity.checkpoint_at(cosigned) if cosigned is not None else None
    if record is not None and record.origin is not None:
        return record
    record = tx.integrity.note_checkpoint_covering(seq)
    if record is not None:
        return record
    former = tx.integrity.checkpoint_covering(seq)
    if former is not None:
        raise NotFound(
            f"no C2SP checkpoint covers seq {seq} yet: only checkpoints of the former form "
            "(signed before dstrail spoke C2SP) do; the next checkpoint signed after an event "
            "is appended will (its JSON proof: /api/datasource/v1/audit/integrity/inclusion)"
        )
    raise NotFound(f"no checkpoint covers seq {seq} yet (`dstrail audit checkpoint` signs one)")


def prove_event(tx: Repositories, *, seq: int, tree_size: int | None = None) -> TlogProof:
    """The tlog-proof of event ``seq`` against ``proof_checkpoint``, with the cosignatures
    stored for that checkpoint."""
    event = tx.audit.by_sequence(seq)
    if event is None:
        raise NotFound(f"no event with seq {seq}")
    [proof] = prove_events(tx, [event], proof_checkpoint(tx, seq=seq, tree_size=tree_size))
    return proof


def prove_events(
    tx: Repositories, events: Sequence[EventRow], record: CheckpointRecord
) -> list[TlogProof]:
    """A tlog-proof of each of ``events``, all against ``record`` (which covers them)."""
    cosigned = record.note(tx.transparency.cosignatures_of(record.tree_size)).encode()
    size = record.tree_size
    return [
        event_proof(event, path=tx.integrity.inclusion_proof(event[SEQ], size), note=cosigned)
        for event in events
    ]


# Verifying proofs ----------------------------------------------------------------------------


@dataclass(slots=True)
class ProofVerdict:
    """The report of a proof's check, and the event it proves (None when its extra is not
    an event)."""

    report: VerifyReport
    event: dict[str, Any] | None

    def document(self) -> dict[str, Any]:
        """JSON form: the report and the event."""
        return {**self.report.document(), "event": self.event}


class _NoteCache:
    """Each distinct checkpoint note is checked once (a bundle repeats the same one)."""

    def __init__(self, trust: TrustPolicy) -> None:
        self.trust = trust
        self.checked: dict[str, tuple[CheckedNote, list[Finding]]] = {}

    def check(self, text: str) -> tuple[CheckedNote, list[Finding]]:
        known = self.checked.get(text)
        if known is None:
            checked = self.trust.check_note(note.parse_note(text), check_ed25519)
            what = f"checkpoint of tree size {checked.checkpoint.tree_size}"
            known = checked, note_findings(checked, self.trust, what=what)
            self.checked[text] = known
        return known


def _event_findings(
    proof: TlogProof, checked: CheckedNote
) -> tuple[list[Finding], dict[str, Any] | None]:
    """Steps 1 and 4: the leaf from the extra, and its inclusion under the note's root."""
    seq = proof.index + 1
    if proof.extra is None:
        message = "the proof has no extra line: it does not carry the event"
        return [Finding(FindingKind.MODIFIED, seq, message)], None
    try:
        row, document = event_of_extra(proof.extra)
    except InvalidInput as error:
        return [Finding(FindingKind.MODIFIED, seq, f"event at index {proof.index}: {error}")], None
    findings = []
    if row[-1] != seq:
        message = f"the extra is event {row[-1]}, but the proof is for index {proof.index}"
        findings.append(Finding(FindingKind.BAD_PROOF, seq, message))
    statement = checked.checkpoint
    leaf = merkle.leaf_hash(proof.extra)  # the event's leaf: the extra is its canonical form
    if not merkle.verify_inclusion(
        leaf, proof.index, statement.tree_size, proof.path, statement.root_hash
    ):
        message = (
            f"event {seq} (index {proof.index}) is not included in the checkpoint of tree size "
            f"{statement.tree_size} as given"
        )
        findings.append(Finding(FindingKind.BAD_PROOF, seq, message))
    return findings, document


def _parse(text: str, *, what: str) -> TlogProof:
    try:
        return parse_tlog_proof(text)
    except InvalidInput as error:
        raise InvalidInput(f"{what}: {error.message}") from None


def _checked_note(
    cache: _NoteCache, proof: TlogProof, *, what: str
) -> tuple[CheckedNote, list[Finding]]:
    try:
        return cache.check(proof.note)
    except InvalidInput as error:
        raise InvalidInput(f"{what}: the checkpoint note: {error.message}") from None


def verify_tlog_proof(text: str, trust: TrustPolicy, *, source: str = "tlog-proof") -> ProofVerdict:
    """Check one tlog-proof against ``trust``: the note's origin is the vkey's name and the
    log signed it, ``trust.min_witnesses`` of its witnesses cosigned it, the extra is a
    canonical event encoding at the proof's index, and its leaf is included under the root.
    ``InvalidInput`` when the text is not a tlog-proof (or its note not a checkpoint)."""
    started = time.perf_counter()
    proof = _parse(text, what=source)
    checked, findings = _checked_note(_NoteCache(trust), proof, what=source)
    events, document = _event_findings(proof, checked)
    report = _report(source, trust, checked, [*findings, *events], events=1, checkpoints=1)
    report.verdict = PROOF_VERDICT
    report.seconds = time.perf_counter() - started
    return ProofVerdict(report, document)


def _report(
    source: str,
    trust: TrustPolicy,
    checked: CheckedNote | None,
    findings: list[Finding],
    *,
    events: int,
    checkpoints: int,
) -> VerifyReport:
    report = VerifyReport(
        source=source,
        events=events,
        checkpoints=checkpoints,
        key_id=f"{trust.log.name}+{trust.log.key_id.hex()}",
        findings=findings,
    )
    if checked is not None:
        report.tree_size = checked.checkpoint.tree_size
        report.root_hash = checked.checkpoint.root_hash.hex()
        if trust.witnesses:
            what = "checkpoint" if checkpoints == 1 else "largest checkpoint"
            report.witnessing = witnessing_summary(checked, trust, what=what)
    return report


# Bundles of proofs ---------------------------------------------------------------------------


def tlog_bundle_vkey(bundle: Mapping[str, Any]) -> note.Verifier:
    """The log vkey a tlog-proof bundle carries (it proves integrity only: pin the vkey to
    prove where the events come from)."""
    if bundle.get("format") != TLOG_BUNDLE_FORMAT:
        raise InvalidInput(f"bundle: format is not {TLOG_BUNDLE_FORMAT!r}")
    return note.parse_vkey(str(bundle.get("vkey", "")), field="bundle vkey")


def split_views(notes: Iterable[CheckedNote]) -> list[Finding]:
    """Two checkpoints the log signed for the same origin and size with different roots: the
    log showed two trails."""
    roots: dict[tuple[str, int], bytes] = {}
    findings = []
    for checked in notes:
        if not checked.log_signed:
            continue
        statement = checked.checkpoint
        key = (statement.origin, statement.tree_size)
        root = roots.setdefault(key, statement.root_hash)
        if root != statement.root_hash:
            message = (
                f"two checkpoints of {statement.origin} at tree size {statement.tree_size}, "
                "both signed by the log, have different roots"
            )
            findings.append(Finding(FindingKind.SPLIT_VIEW, statement.tree_size, message))
    return findings


def verify_tlog_bundle(bundle: Mapping[str, Any], trust: TrustPolicy) -> VerifyReport:
    """Check every tlog-proof of a bundle (``tlog_bundle_vkey``'s format) against ``trust``;
    each event must appear once."""
    started = time.perf_counter()
    tlog_bundle_vkey(bundle)
    proofs = bundle.get("proofs")
    if not isinstance(proofs, list) or not all(isinstance(p, str) for p in proofs):
        raise InvalidInput("bundle: proofs: accepted: a list of tlog-proof texts")
    cache = _NoteCache(trust)
    findings: list[Finding] = []
    seen: set[int] = set()
    largest: CheckedNote | None = None
    for number, text in enumerate(proofs, start=1):
        what = f"bundle proof {number}"
        proof = _parse(text, what=what)
        checked, _ = _checked_note(cache, proof, what=what)
        if largest is None or checked.checkpoint.tree_size > largest.checkpoint.tree_size:
            largest = checked
        if proof.index in seen:
            message = f"event {proof.index + 1} is proven twice in the bundle"
            findings.append(Finding(FindingKind.INSERTED, proof.index + 1, message))
        seen.add(proof.index)
        findings.extend(_event_findings(proof, checked)[0])
    for _, note_problems in cache.checked.values():
        findings.extend(note_problems)
    findings.extend(split_views(checked for checked, _ in cache.checked.values()))
    report = _report(
        "tlog-proof bundle",
        trust,
        largest,
        findings,
        events=len(proofs),
        checkpoints=len(cache.checked),
    )
    report.verdict = BUNDLE_VERDICT
    report.seconds = time.perf_counter() - started
    return report
