"""Findings of the detection rules: evaluated as the forensics follower meets events, listed,
shown with their events, and acknowledged.

``evaluate_batch`` is the follower's consumer (``services.forensics.FINDINGS_CONSUMERS``): in
the batch's transaction it loads the rules' state for the batch's users, data sources and
pairs (a few statements), runs ``domain.forensics.rules.Detector`` over the events, writes
the state back and stores what it found. Each new finding is recorded in the trail, in the
same transaction, as ``ForensicFindingRaised`` (performed by ``operator``), so it streams to
the configured destinations as its own record; a rebuild's replay (``context.replaying``)
stores the findings again (same ids) and records nothing. Acknowledging a finding records
``ForensicFindingAcknowledged`` in the transaction that notes it; a second one is a 409.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import orjson

from dstrail.domain.datasources import CredentialType
from dstrail.domain.forensics.events import TrailEvent
from dstrail.domain.forensics.findings import (
    Acknowledgement,
    Finding,
    FindingCursor,
    FindingFilter,
    FindingView,
    check_note,
)
from dstrail.domain.forensics.rules import (
    HOUR_MS,
    OUTSIDE_RUN,
    OUTSIDE_RUN_NAME,
    Detector,
    Grants,
    History,
    Thresholds,
    needs_of,
    watched,
)
from dstrail.domain.projects import RunType
from dstrail.domain.timestamps import format_ms
from dstrail.domain.trail import EventKind, NewAuditEvent, StoredEvent
from dstrail.domain.users import OPERATOR, User
from dstrail.errors import Conflict, InvalidInput, NotFound
from dstrail.settings import Settings
from dstrail.store import Repositories


class BatchInfo(Protocol):
    """What the follower tells a consumer about a batch (``services.forensics.BatchContext``)."""

    @property
    def settings(self) -> Settings: ...
    @property
    def now_ms(self) -> int: ...
    @property
    def replaying(self) -> bool: ...
    @property
    def first_seq(self) -> int: ...


# -- thresholds --------------------------------------------------------------------------------


def _names(value: str, *, setting: str, accepted: Sequence[str]) -> frozenset[str]:
    names = frozenset(part.strip() for part in value.split(",") if part.strip())
    unknown = sorted(names - set(accepted))
    if unknown:
        raise InvalidInput(
            f"DSTRAIL_{setting.upper()}: unknown {', '.join(unknown)}; accepted: "
            f"{', '.join(accepted)} (comma separated)"
        )
    return names


def thresholds_of(settings: Settings) -> Thresholds:
    """The rules' thresholds from ``settings`` (``forensics_*``)."""
    s = settings
    run_types = _names(
        s.forensics_unusual_hour_run_types,
        setting="forensics_unusual_hour_run_types",
        accepted=[*(t.value for t in RunType), OUTSIDE_RUN_NAME],
    )
    return Thresholds(
        first_access_lookback_days=s.forensics_first_access_lookback_days,
        first_access_user_grace_days=s.forensics_first_access_user_grace_days,
        first_access_grant_grace_days=s.forensics_first_access_grant_grace_days,
        revocation_window_hours=s.forensics_revocation_window_hours,
        volume_factor=s.forensics_volume_factor,
        volume_min_events=s.forensics_volume_min_events,
        volume_min_hours=s.forensics_volume_min_hours,
        volume_half_life_days=s.forensics_volume_half_life_days,
        refused_window_minutes=s.forensics_refused_window_minutes,
        refused_user_count=s.forensics_refused_user_count,
        refused_source_count=s.forensics_refused_source_count,
        refused_source_users=s.forensics_refused_source_users,
        everyone_credential_types=_names(
            s.forensics_everyone_credential_types,
            setting="forensics_everyone_credential_types",
            accepted=[t.value for t in CredentialType],
        ),
        transfer_delete_hours=s.forensics_transfer_delete_hours,
        unusual_hour_max_share=s.forensics_unusual_hour_max_share,
        unusual_hour_min_hours=s.forensics_unusual_hour_min_hours,
        unusual_hour_min_days=s.forensics_unusual_hour_min_days,
        unusual_hour_cooldown_hours=s.forensics_unusual_hour_cooldown_hours,
        unusual_hour_run_types=frozenset(
            OUTSIDE_RUN if name == OUTSIDE_RUN_NAME else name for name in run_types
        ),
        new_run_type_min_accesses=s.forensics_new_run_type_min_accesses,
        new_run_type_min_age_days=s.forensics_new_run_type_min_age_days,
    )


# -- the follower's consumer -------------------------------------------------------------------


def evaluate_batch(tx: Repositories, events: Sequence[TrailEvent], context: BatchInfo) -> None:
    """Run the rules over a batch of the follower (in seq order, without ``ForensicFinding*``
    events), in its transaction; store and record what they find."""
    seen = watched(events)
    if not seen:
        return
    thresholds = thresholds_of(context.settings)
    needs = needs_of(seen)
    since_ms = int(min(e.ts_ms for e in seen) - thresholds.revocation_window_hours * HOUR_MS)
    findings_repo = tx.findings
    grants = Grants(
        findings_repo.grants(
            needs.grant_data_source_ids,
            first_seq=seen[0].seq, last_seq=seen[-1].seq, since_ms=since_ms,
        ),
        findings_repo.users_created(needs.user_ids),
    )  # fmt: skip
    history = History(
        purged=context.first_seq > 1,
        before_grants=findings_repo.holds_creations_before_grants(),
    )
    detector = Detector(
        thresholds,
        grants=grants,
        pairs=findings_repo.pair_states(needs.pair_keys),
        users=findings_repo.user_states(needs.user_ids),
        sources=findings_repo.source_states(needs.data_source_ids),
        history=history,
    )
    found = detector.run(seen)
    findings_repo.save_states(detector.pairs, detector.users, detector.sources)
    if not found:
        return
    findings_repo.add(found)
    if context.replaying:
        return  # a rebuild: found again, recorded in the trail already (or never)
    already = findings_repo.raised([finding.id for finding in found])
    new = [finding for finding in found if finding.id not in already]
    # Recorded together: one head read and one write for the batch's findings, however many.
    seqs = tx.audit.append_all([_raised_event(f, now_ms=context.now_ms) for f in new])
    findings_repo.note_raised(
        [(finding.id, seq) for finding, seq in zip(new, seqs, strict=True)], ms=context.now_ms
    )


def _raised_event(finding: Finding, *, now_ms: int) -> NewAuditEvent:
    metadata = {
        "findingId": finding.id,
        "rule": finding.rule.value,
        "severity": finding.severity.value,
        "summary": finding.summary,
        "userId": finding.user_id,
        "username": finding.username,
        "dataSourceId": finding.data_source_id,
        "dataSourceName": finding.data_source_name,
        **({"runId": finding.run_id} if finding.run_id else {}),
        "seqs": ",".join(map(str, finding.seqs)),
        "firstSeq": str(finding.first_seq),
        "lastSeq": str(finding.last_seq),
        "time": format_ms(finding.ts_ms),
        "details": orjson.dumps(finding.details, option=orjson.OPT_SORT_KEYS).decode(),
    }
    return _platform_event(EventKind.FINDING_RAISED, OPERATOR, now_ms, metadata, finding.run_id)


def _platform_event(
    kind: EventKind, actor: User, now_ms: int, metadata: dict[str, str], run_id: str = ""
) -> NewAuditEvent:
    """A finding's event: a platform kind, naming no data source in its own columns (the
    metadata names the finding's), its run in the column the ``runIds`` filter reads."""
    return NewAuditEvent(
        event_kind=kind,
        data_source_id="",
        data_source_name="",
        data_source_type="",
        performed_by=actor.id,
        performed_by_username=actor.username,
        timestamp_ms=now_ms,
        metadata=metadata,
        run_id=run_id or None,
    )


def reset_derived(tx: Repositories) -> None:
    """Empty the findings and the rules' state, for a rebuild's replay (what the trail holds
    of each finding, its raised event and acknowledgement, stays: the same ids come back)."""
    tx.findings.reset()


def findings_digest(tx: Repositories) -> str:
    """A digest of the findings and the rules' state (SHA-256, hex), the same on either
    database for the same state whatever order rows come in; acknowledgements are not in it."""
    total = 0
    rows = 0
    for table, row in tx.findings.derived_rows():
        values = [table, *(bool(v) if isinstance(v, bool) else v for v in row)]
        digest = hashlib.sha256(orjson.dumps(values)).digest()
        total = (total + int.from_bytes(digest, "big")) % 2**256
        rows += 1
    return hashlib.sha256(f"{rows}:{total:064x}".encode()).hexdigest()


# -- reading findings ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FindingsPage:
    """A page of findings, newest first, and the cursor of the next one."""

    findings: list[FindingView]
    next: FindingCursor | None


def list_findings(tx: Repositories, wanted: FindingFilter) -> FindingsPage:
    """The findings ``wanted`` asks for, a page at a time."""
    views = tx.findings.page(wanted)
    more = len(views) > wanted.limit
    views = views[: wanted.limit]
    cursor = FindingCursor(views[-1].finding.last_seq, views[-1].finding.id) if more else None
    return FindingsPage(findings=views, next=cursor)


@dataclass(frozen=True, slots=True)
class FindingDetail:
    """A finding and its linked events (those the trail still holds, in seq order)."""

    view: FindingView
    events: list[StoredEvent]


def get_finding(tx: Repositories, finding_id: str) -> FindingView:
    """One finding; ``NotFound`` when there is none with that id."""
    view = tx.findings.by_id(finding_id)
    if view is None:
        raise NotFound(f"no finding with id {finding_id[:100]!r}")
    return view


def finding_detail(tx: Repositories, finding_id: str) -> FindingDetail:
    """One finding with its linked events; ``NotFound`` when there is none."""
    view = get_finding(tx, finding_id)
    events = [tx.audit.by_sequence(seq) for seq in view.finding.seqs]
    return FindingDetail(view=view, events=[event for event in events if event is not None])


# -- acknowledging ------------------------------------------------------------------------------


def acknowledge(
    tx: Repositories, finding_id: str, *, actor: User, note: str, now_ms: int
) -> FindingView:
    """Acknowledge a finding with a note, recorded as ``ForensicFindingAcknowledged`` in this
    transaction; ``NotFound``, or ``Conflict`` when it was acknowledged already."""
    text = check_note(note)
    view = get_finding(tx, finding_id)
    finding = view.finding
    if view.acknowledgement is not None:
        raise _acknowledged(view.acknowledgement, finding_id)
    metadata = {
        "findingId": finding.id,
        "rule": finding.rule.value,
        "severity": finding.severity.value,
        "note": text,
        **({"raisedSeq": str(view.raised_seq)} if view.raised_seq is not None else {}),
    }
    seq = tx.audit.append(
        _platform_event(EventKind.FINDING_ACKNOWLEDGED, actor, now_ms, metadata, finding.run_id)
    )
    ack = Acknowledgement(by=actor.id, by_username=actor.username, at_ms=now_ms, note=text, seq=seq)
    if not tx.findings.acknowledge(finding.id, ack):  # acknowledged meanwhile
        raise _acknowledged(get_finding(tx, finding_id).acknowledgement, finding_id)
    return FindingView(finding=finding, raised_seq=view.raised_seq, acknowledgement=ack)


def _acknowledged(ack: Acknowledgement | None, finding_id: str) -> Conflict:
    who = f" by {ack.by_username} at {format_ms(ack.at_ms)}" if ack is not None else ""
    return Conflict(f"finding {finding_id} was acknowledged already{who}")
