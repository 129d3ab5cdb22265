"""Findings as the API, the console and the CLI ask for them: every answer first brings the
derived state up to the head (``Follower.catch_up``), so a finding the newest events raise is
in it, then reads (or, for an acknowledgement, writes) in a transaction of its own."""

from __future__ import annotations

from dstrail.domain.forensics.findings import FindingFilter, FindingView
from dstrail.domain.users import User
from dstrail.services.findings import (
    FindingDetail,
    FindingsPage,
    acknowledge,
    finding_detail,
    list_findings,
)
from dstrail.services.forensics import Follower


def findings_page(follower: Follower, wanted: FindingFilter) -> FindingsPage:
    """A page of the findings ``wanted`` asks for, newest first."""
    follower.catch_up()
    with follower.store.read() as tx:
        return list_findings(tx, wanted)


def finding_with_events(follower: Follower, finding_id: str) -> FindingDetail:
    """One finding and its linked events; ``NotFound`` when there is none."""
    follower.catch_up()
    with follower.store.read() as tx:
        return finding_detail(tx, finding_id)


def acknowledge_finding(
    follower: Follower, finding_id: str, *, actor: User, note: str, now_ms: int
) -> FindingView:
    """Acknowledge a finding (recorded as ``ForensicFindingAcknowledged`` in the same
    transaction); ``NotFound``, ``Conflict`` when it was acknowledged already, ``InvalidInput``
    for an empty or too long note."""
    follower.catch_up()
    with follower.store.write() as tx:
        return acknowledge(tx, finding_id, actor=actor, note=note, now_ms=now_ms)
