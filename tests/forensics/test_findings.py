"""Findings as the services keep them: recorded in the trail as they are raised, listed with
filters a page at a time, acknowledged once (recorded), and found again, the same, by a
rebuild, which records nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

from dstrail.audit.query import read_page
from dstrail.context import Dstrail
from dstrail.domain.audit_filter import AuditFilter
from dstrail.domain.forensics.findings import FindingFilter, Rule, Severity
from dstrail.domain.trail import EVENT_KIND, FINDING_KINDS, EventKind
from dstrail.domain.users import OPERATOR
from dstrail.errors import Conflict, InvalidInput, NotFound
from dstrail.services import findings as findings_service
from dstrail.services.finding_answers import acknowledge_finding, finding_with_events
from dstrail.services.forensics import rebuild
from dstrail.settings import Settings
from tests.forensics.findings_scenes import (
    HOUR,
    MINUTE,
    START_MS,
    Scene,
    metadata_of,
    rules_settings,
)
from tests.support import Login, SettableClock, audit_count


@pytest.fixture
def clock() -> SettableClock:
    return SettableClock(START_MS)


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return rules_settings(database_url, tmp_path)


@pytest.fixture
def scene(dstrail: Dstrail, clock: SettableClock) -> Scene:
    return Scene(dstrail, clock)


def incidents(scene: Scene) -> tuple[Login, Login, Login]:
    """Three findings of three rules: an everyone share (alice), a burst of refusals (carol),
    a transfer then a deletion (bob)."""
    alice, bob, carol = scene.user("alice"), scene.user("bob"), scene.user("carol")
    scene.dataset(alice, "open", everyone=True)
    vault = scene.dataset(alice, "vault")
    scene.later(HOUR)
    scene.refused(carol, vault, times=4, every_ms=MINUTE)
    scene.later(HOUR)
    scene.transfer(alice, vault, bob)
    scene.later(10 * MINUTE)
    scene.delete(bob, vault)
    return alice, bob, carol


def events_of(dstrail: Dstrail, kinds: frozenset[EventKind]) -> list[tuple[int, str]]:
    """(seq, kind) of the trail's events of ``kinds``, oldest first."""
    with dstrail.store.read() as tx:
        events = tx.forensics.events_after(0, limit=10_000)
    return [(event.seq, event.event_kind) for event in events if event.event_kind in kinds]


def test_each_finding_is_recorded_in_the_trail_as_it_is_raised(scene: Scene) -> None:
    incidents(scene)
    views = scene.views()
    assert [v.finding.rule for v in views] == [
        Rule.EVERYONE_SHARE, Rule.REFUSED_BURST, Rule.TRANSFER_THEN_DELETE,
    ]  # fmt: skip
    raised = events_of(scene.dstrail, FINDING_KINDS)
    assert raised == [(v.raised_seq, "ForensicFindingRaised") for v in views]
    burst = views[1]
    assert burst.raised_seq is not None
    recorded = metadata_of(scene.dstrail, burst.raised_seq)
    assert recorded["performedByUsername"] == "operator"
    assert recorded["findingId"] == burst.finding.id
    assert (recorded["rule"], recorded["severity"]) == ("refusedBurst", "medium")
    assert recorded["summary"] == burst.finding.summary
    assert recorded["seqs"] == ",".join(map(str, burst.finding.seqs))
    assert recorded["lastSeq"] == str(burst.finding.last_seq)
    assert recorded["userId"] == burst.finding.user_id
    # Domino's default read of the trail never meets them; the rules never read them
    default = AuditFilter(start_ms=0, end_ms=2**62)
    with scene.dstrail.store.read() as tx:
        rows = read_page(tx, default, after=None, size=1000).rows
    assert not {row[EVENT_KIND] for row in rows} & FINDING_KINDS
    scene.later(HOUR)
    assert len(scene.views()) == 3  # caught up over its own events: nothing new


def test_findings_are_filtered_and_paged_newest_first(scene: Scene) -> None:
    alice, bob, carol = incidents(scene)
    everything = scene.views()
    newest_first = everything[::-1]

    def ids(**wanted: object) -> list[str]:
        return [view.finding.id for view in scene.views(**wanted)]

    assert ids(rules=(Rule.REFUSED_BURST,)) == [everything[1].finding.id]
    assert ids(severities=(Severity.HIGH,)) == [everything[2].finding.id]
    assert ids(user_ids=(carol.id,)) == [everything[1].finding.id]
    assert ids(usernames=("bob",)) == [everything[2].finding.id]
    assert ids(data_source_names=("vault",)) == [v.finding.id for v in everything[1:]]
    assert ids(data_source_ids=(everything[0].finding.data_source_id,)) == [
        everything[0].finding.id
    ]
    assert ids(rules=(Rule.REFUSED_BURST, Rule.EVERYONE_SHARE)) == [
        everything[0].finding.id, everything[1].finding.id,
    ]  # fmt: skip
    assert ids(start_ms=START_MS + HOUR) == [v.finding.id for v in everything[1:]]
    assert ids(end_ms=START_MS + HOUR) == [everything[0].finding.id]
    assert ids(acknowledged=False) == [v.finding.id for v in everything]
    assert ids(acknowledged=True) == []
    # a page at a time, each once
    seen: list[str] = []
    cursor = None
    for _ in range(5):
        with scene.dstrail.store.read() as tx:
            page = findings_service.list_findings(tx, FindingFilter(limit=1, cursor=cursor))
        seen += [view.finding.id for view in page.findings]
        cursor = page.next
        if cursor is None:
            break
    assert seen == [view.finding.id for view in newest_first]
    assert alice and bob


def test_acknowledging_records_who_and_the_note_once(scene: Scene) -> None:
    alice, _bob, _carol = incidents(scene)
    burst = scene.views(rules=(Rule.REFUSED_BURST,))[0]
    before = audit_count(scene.dstrail)
    with scene.dstrail.store.read() as tx:
        digest = findings_service.findings_digest(tx)
    view = acknowledge_finding(
        scene.follower, burst.finding.id, actor=alice.user, note="  carol mistyped a name  ",
        now_ms=scene.clock(),
    )  # fmt: skip
    ack = view.acknowledgement
    assert ack is not None
    assert (ack.by, ack.by_username, ack.note, ack.at_ms) == (
        alice.id, "alice", "carol mistyped a name", scene.clock(),
    )  # fmt: skip
    assert ack.seq == before + 1 == audit_count(scene.dstrail)
    recorded = metadata_of(scene.dstrail, ack.seq)
    assert recorded == {
        "performedByUsername": "alice", "findingId": burst.finding.id, "rule": "refusedBurst",
        "severity": "medium", "note": "carol mistyped a name", "raisedSeq": str(burst.raised_seq),
    }  # fmt: skip
    assert scene.views(acknowledged=True)[0].acknowledgement == ack
    with pytest.raises(Conflict, match="acknowledged already by alice"):
        acknowledge_finding(
            scene.follower, burst.finding.id, actor=OPERATOR, note="again", now_ms=scene.clock()
        )
    with pytest.raises(NotFound):
        acknowledge_finding(
            scene.follower, "f" * 24, actor=OPERATOR, note="x", now_ms=scene.clock()
        )
    for note in ("", "   ", "x" * 2001, "nul\x00"):
        with pytest.raises(InvalidInput, match="note"):
            acknowledge_finding(
                scene.follower, burst.finding.id, actor=OPERATOR, note=note, now_ms=scene.clock()
            )
    assert audit_count(scene.dstrail) == ack.seq  # refused acknowledgements record nothing
    with scene.dstrail.store.read() as tx:
        assert findings_service.findings_digest(tx) == digest  # acknowledgements are apart


def test_a_finding_comes_with_its_linked_events(scene: Scene) -> None:
    incidents(scene)
    moved = scene.views(rules=(Rule.TRANSFER_THEN_DELETE,))[0]
    detail = finding_with_events(scene.follower, moved.finding.id)
    assert [event.seq for event in detail.events] == list(moved.finding.seqs)
    assert [event.event_kind for event in detail.events] == [
        "DataSourceChangeOfOwnership", "DeleteDataSource",
    ]  # fmt: skip
    with pytest.raises(NotFound):
        finding_with_events(scene.follower, "0" * 24)


def test_a_rebuild_finds_the_same_findings_and_records_nothing(scene: Scene) -> None:
    alice, _bob, _carol = incidents(scene)
    before = scene.views()
    acknowledge_finding(
        scene.follower, before[0].finding.id, actor=alice.user, note="meant", now_ms=scene.clock()
    )
    acknowledged = scene.views()
    size = audit_count(scene.dstrail)
    dstrail = scene.dstrail
    with dstrail.store.read() as tx:
        digest = findings_service.findings_digest(tx)

    report = rebuild(dstrail.store, settings=dstrail.settings, clock=dstrail.clock)
    assert report.rebuilt.derived == {"findings": digest}
    assert audit_count(dstrail) == size  # no event appended
    assert scene.views() == acknowledged  # same ids, raised seqs and acknowledgement

    checked = rebuild(dstrail.store, settings=dstrail.settings, clock=dstrail.clock, check=True)
    assert checked.equal is True
    assert checked.rebuilt.derived == checked.incremental.derived == {"findings": digest}  # type: ignore[union-attr]
    assert audit_count(dstrail) == size


def test_the_rule_state_reaches_the_same_digest_whatever_the_batches(
    scene: Scene, dstrail: Dstrail
) -> None:
    incidents(scene)
    scene.views()
    with dstrail.store.read() as tx:
        digest = findings_service.findings_digest(tx)
    report = rebuild(dstrail.store, settings=dstrail.settings, clock=dstrail.clock, batch_events=3)
    assert report.rebuilt.derived == {"findings": digest}


def test_thresholds_come_from_the_settings_and_bad_ones_are_refused(tmp_path: Path) -> None:
    thresholds = findings_service.thresholds_of(
        Settings(data_dir=tmp_path, forensics_unusual_hour_run_types="Workspace, none, Launcher")
    )
    assert thresholds.unusual_hour_run_types == {"Workspace", "", "Launcher"}
    assert thresholds.everyone_credential_types == {"Shared"}
    with pytest.raises(InvalidInput, match="FORENSICS_UNUSUAL_HOUR_RUN_TYPES: unknown Job"):
        findings_service.thresholds_of(
            Settings(data_dir=tmp_path, forensics_unusual_hour_run_types="Workspace,Job")
        )
    with pytest.raises(InvalidInput, match="accepted: Individual, Shared"):
        findings_service.thresholds_of(
            Settings(data_dir=tmp_path, forensics_everyone_credential_types="Everyone")
        )
