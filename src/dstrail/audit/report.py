"""What verification reports: the kinds of findings, a finding, the report (JSON and text),
and the findings of a checkpoint note checked against an auditor's trust policy. Used by
store verification (``verify``) and by offline proofs and bundles (``verify``,
``tlog_proof``)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from dstrail.domain.trail.trust import CheckedNote, TrustPolicy

TEXT_EVENTS = 5
"""How many wrong events the text report lists (the JSON report lists up to 1,000)."""


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
    ORIGIN_MISMATCH = "checkpoint-origin-mismatch"
    """A checkpoint note names another log than the trusted vkey's."""
    BAD_COSIGNATURE = "cosignature-invalid"
    """A given witness's cosignature line does not verify (forged or altered)."""
    WITNESS_POLICY = "witness-policy-unmet"
    """Fewer than the required witnesses cosigned the checkpoint."""
    ROLLBACK = "rollback"
    """A witnessed checkpoint is larger than the trail: the trail was rolled back."""
    SPLIT_VIEW = "split-view"
    """A witnessed checkpoint's root is not the trail's at that size: two views were shown."""
    ARCHIVE_INVALID = "archive-invalid"
    """An archive of purged events does not prove what its manifest says."""
    ARCHIVE_MISSING = "archive-missing"
    """Purged events that no archive holds."""


EVENT_KINDS = frozenset(
    {
        FindingKind.MODIFIED,
        FindingKind.DELETED,
        FindingKind.INSERTED,
        FindingKind.REORDERED,
        FindingKind.TRUNCATED,
        FindingKind.ROLLBACK,
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
    witnessing: str = ""
    """Which witnesses cosigned, against the policy (empty: no witness policy was given)."""
    verdict: str = "the trail matches its signed checkpoints"
    """What OK means for this source."""
    purged_through: int = 0
    """Events 1 to this were purged by retention: checked from their kept tree hashes (their
    bodies are in the archive, which ``--archive`` checks)."""
    archives: list[str] = field(default_factory=list)
    """The archives checked (``--archive``), each as ``location: events first-last``."""

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
            "witnessing": self.witnessing or None,
            "purgedThrough": self.purged_through,
            "archives": self.archives,
            "firstWrongSeq": first.seq if first else None,
            "first": first.document() if first else None,
            "findings": [f.document() for f in sorted(self.findings, key=lambda f: f.seq)[:1000]],
            "findingCount": len(self.findings),
        }

    def text(self) -> str:
        """Readable lines, a screenful at most: the first wrong event, a count of each kind of
        finding, the first events found wrong and the first checkpoint that no longer holds."""
        lines = [
            f"verified {self.source}: {self.events} events, {self.checkpoints} checkpoints, "
            f"tree size {self.tree_size}, key {self.key_id or '-'} ({self.seconds:.2f} s)"
        ]
        if self.witnessing:
            lines.append(f"witnesses: {self.witnessing}")
        if self.purged_through:
            lines.append(
                f"purged: events 1-{self.purged_through} (archived; their tree hashes are kept "
                "and checked)"
            )
        lines.extend(f"archive: {archive}" for archive in self.archives)
        first = self.first
        if first is None:
            lines.append(f"OK: {self.verdict}")
            return "\n".join(lines)
        lines.append(f"FAILED: first wrong seq {first.seq}: {first.kind.value}: {first.message}")
        counts = Counter(f.kind.value for f in self.findings)
        lines.append("found: " + ", ".join(f"{n} {kind}" for kind, n in counts.most_common()))
        ordered = sorted(self.findings, key=lambda f: f.seq)
        events = [f for f in ordered if f.kind in EVENT_KINDS]
        checkpoints = [f for f in ordered if f.kind not in EVENT_KINDS]
        for group, shown, noun in (
            (events, TEXT_EVENTS, "events"),
            (checkpoints, 1, "checkpoints"),
        ):
            lines.extend(f"  seq {f.seq}: {f.kind.value}: {f.message}" for f in group[:shown])
            if len(group) > shown:
                lines.append(
                    f"  ... and {len(group) - shown} more {noun} (--format json lists them)"
                )
        return "\n".join(lines)


def note_findings(checked: CheckedNote, policy: TrustPolicy, *, what: str) -> list[Finding]:
    """What is wrong with a checkpoint note (``what``: how to name it) under ``policy``: an
    origin of another log, no valid signature of the log's key, a cosignature of a given
    witness that does not verify, fewer cosigners than the policy asks."""
    size = checked.checkpoint.tree_size
    findings: list[Finding] = []
    if not checked.origin_matches:
        message = (
            f"the {what} names the log {checked.checkpoint.origin!r}, not {policy.log.name!r} "
            "(the vkey's name)"
        )
        findings.append(Finding(FindingKind.ORIGIN_MISMATCH, size, message))
    if checked.log_signed is not True:
        state = "does not verify" if checked.log_signed is False else "is missing"
        message = f"the {what}'s signature by {policy.log.name}+{policy.log.key_id.hex()} {state}"
        findings.append(Finding(FindingKind.BAD_SIGNATURE, size, message))
    for name in checked.bad_cosignatures:
        message = f"the cosignature of witness {name} on the {what} does not verify"
        findings.append(Finding(FindingKind.BAD_COSIGNATURE, size, message))
    if len(checked.cosigned_by) < policy.min_witnesses:
        message = (
            f"the {what} is cosigned by {len(checked.cosigned_by)} of the given witnesses; "
            f"the policy asks for {policy.describe()}"
        )
        findings.append(Finding(FindingKind.WITNESS_POLICY, size, message))
    return findings


def witnessing_summary(checked: CheckedNote, policy: TrustPolicy, *, what: str) -> str:
    """``checkpoint 40 cosigned by a, b; policy: 2 of 3 witnesses (a, b, c)``."""
    names = ", ".join(checked.cosigned_by) or "none of the given witnesses"
    return f"{what} {checked.checkpoint.tree_size} cosigned by {names}; policy: {policy.describe()}"
