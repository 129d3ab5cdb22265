"""Each detection rule fires on its incident, made through the real services, and stays quiet
on the histories around it; a clean history raises nothing. Small thresholds
(``RULES_SETTINGS``) let short histories cross them."""

from __future__ import annotations

from pathlib import Path

import pytest

from dstrail.context import Dstrail
from dstrail.domain.forensics.findings import Rule, Severity
from dstrail.domain.ids import new_object_id
from dstrail.domain.projects import RunType
from dstrail.domain.users import Role
from dstrail.settings import Settings
from tests.forensics.findings_scenes import (
    HOUR,
    MINUTE,
    START_MS,
    LegacySource,
    Scene,
    kind_of,
    rules_settings,
)
from tests.support import SettableClock


@pytest.fixture
def clock() -> SettableClock:
    return SettableClock(START_MS)


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return rules_settings(database_url, tmp_path)


@pytest.fixture
def scene(dstrail: Dstrail, clock: SettableClock) -> Scene:
    return Scene(dstrail, clock)


def test_first_access_of_a_dormant_grant_and_after_the_lookback(scene: Scene) -> None:
    alice, bob, carol = scene.user("alice"), scene.user("bob"), scene.user("carol")
    sales = scene.dataset(alice, "sales", bob)
    shared = scene.dataset(alice, "shared", everyone=True)
    scene.use(alice, sales)  # the owner, at once
    scene.at(scene.day_at(2, 10))
    scene.use(bob, sales)  # listed two days ago, never used: reported
    first = scene.last_seq()
    scene.later(MINUTE)
    scene.use(bob, sales)  # seen a minute ago
    scene.at(scene.day_at(5, 10))
    scene.use(bob, sales)  # back after three days (lookback: two): reported
    back = scene.last_seq()
    # quiet: a fresh grant, a new joiner
    scene.permissions(alice, sales, bob, carol)
    scene.later(HOUR)
    scene.use(carol, sales)
    dave = scene.user("dave")
    scene.later(HOUR)
    scene.use(dave, shared)

    found = scene.findings(Rule.FIRST_ACCESS)
    assert [(f.username, f.data_source_name, f.last_seq) for f in found] == [
        ("bob", "sales", first),
        ("bob", "sales", back),
    ]
    assert found[0].severity is Severity.LOW
    assert found[0].seqs == (first,)
    assert found[1].seqs == (first + 1, back)  # the access before (a minute after the first)
    assert found[1].details["grantVia"] == "user"
    assert found[1].details["lastAccessSeq"] == first + 1


def test_an_access_without_a_grant_in_force_is_an_integrity_alarm(scene: Scene) -> None:
    alice, bob, carol = scene.user("alice"), scene.user("bob"), scene.user("carol")
    sales = scene.dataset(alice, "sales", bob)
    scene.later(HOUR)
    scene.forged_access(carol, sales)
    first = scene.last_seq()
    scene.later(MINUTE)
    scene.forged_access(carol, sales)  # the same hour: one alarm
    scene.forged_access(bob, sales)  # bob has a grant: no alarm
    scene.later(HOUR)
    scene.forged_access(carol, sales)
    second = scene.last_seq()
    scene.use(bob, sales)

    found = scene.findings(Rule.ACCESS_WITHOUT_GRANT)
    assert [(f.username, f.seqs) for f in found] == [("carol", (first,)), ("carol", (second,))]
    assert all(f.severity is Severity.HIGH for f in found)
    assert "integrity alarm" in found[0].summary


def test_no_alarm_where_the_trail_never_saw_the_grants(scene: Scene) -> None:
    """An upgraded installation: a data source created before the trail recorded initial
    grants (so users may predate ``UserCreated`` too). Grants the trail never saw raise no
    alarm; what it can judge still does."""
    alice, carol = scene.user("alice"), scene.user("carol")
    legacy_user = scene.legacy_user("olduser")  # no UserCreated
    old_format = scene.legacy_dataset(alice, "oldformat")  # CreateDataSource without grants
    public = scene.dataset(alice, "public", everyone=True)
    private = scene.dataset(alice, "private")
    scene.later(HOUR)
    scene.forged_access(carol, old_format)  # carol may have been listed
    scene.forged_access(legacy_user, public)  # may have existed when it was shared
    scene.forged_access(legacy_user, private)  # no share could cover them: alarm
    scene.forged_access(carol, private)  # alarm

    found = scene.findings(Rule.ACCESS_WITHOUT_GRANT)
    assert [(f.username, f.data_source_name) for f in found] == [
        ("olduser", "private"),
        ("carol", "private"),
    ]


def test_a_complete_trail_alarms_on_what_it_never_saw_created(scene: Scene) -> None:
    alice, carol = scene.user("alice"), scene.user("carol")
    unknown_user = scene.legacy_user("ghost")  # in the users table only
    untracked = LegacySource(new_object_id(), "untracked")  # no CreateDataSource at all
    public = scene.dataset(alice, "public", everyone=True)
    scene.later(HOUR)
    scene.forged_access(carol, untracked)
    scene.forged_access(unknown_user, public)
    scene.use(carol, public)  # a grant: no alarm

    found = scene.findings(Rule.ACCESS_WITHOUT_GRANT)
    assert [(f.username, f.data_source_name) for f in found] == [
        ("carol", "untracked"),
        ("ghost", "public"),
    ]


def test_after_a_purge_no_alarm_for_data_sources_created_before_it(scene: Scene) -> None:
    alice, bob, carol = scene.user("alice"), scene.user("bob"), scene.user("carol")
    old = scene.dataset(alice, "old", bob)
    boundary = scene.last_seq()
    fresh = scene.dataset(alice, "fresh")
    scene.purge_and_rebuild(through=boundary)
    scene.later(HOUR)
    scene.forged_access(bob, old)  # listed at a creation the trail no longer holds
    scene.forged_access(carol, fresh)  # created after the purge boundary: alarm

    found = scene.findings(Rule.ACCESS_WITHOUT_GRANT)
    assert [(f.username, f.data_source_name) for f in found] == [("carol", "fresh")]


def test_an_attempt_soon_after_losing_access_in_each_way(scene: Scene) -> None:
    alice, bob, carol, dave = (scene.user(n) for n in ("alice", "bob", "carol", "dave"))
    listed = scene.dataset(alice, "listed", bob)
    owned = scene.dataset(alice, "owned")
    doomed = scene.dataset(alice, "doomed", bob)
    public = scene.dataset(alice, "public", everyone=True)
    other = scene.dataset(alice, "other", bob)
    scene.at(scene.day_at(1, 9))
    scene.use(bob, listed)
    scene.permissions(alice, listed)  # bob removed
    removed = scene.last_seq()
    scene.later(30 * MINUTE)
    scene.refused(bob, listed)
    tried = scene.last_seq()
    scene.later(15 * MINUTE)
    scene.refused(bob, listed)  # the same revocation: one finding
    scene.later(15 * MINUTE)
    scene.transfer(alice, owned, carol)
    scene.later(HOUR)
    scene.refused(alice, owned)
    scene.later(15 * MINUTE)
    scene.delete(alice, doomed)
    scene.later(10 * MINUTE)
    scene.refused(bob, doomed)  # a deleted data source: refused as missing
    scene.later(15 * MINUTE)
    scene.permissions(alice, public)  # everyone no more
    scene.later(20 * MINUTE)
    scene.refused(dave, public)
    # quiet: too late, and never had it
    scene.later(15 * MINUTE)
    scene.permissions(alice, other)
    scene.later(3 * HOUR)
    scene.refused(bob, other)
    scene.later(15 * MINUTE)
    scene.refused(carol, listed)

    found = scene.findings(Rule.ACCESS_AFTER_REVOCATION)
    assert [(f.username, f.data_source_name, f.details["revokedKind"]) for f in found] == [
        ("bob", "listed", "DataSourceChangeOfPermissions"),
        ("alice", "owned", "DataSourceChangeOfOwnership"),
        ("bob", "doomed", "DeleteDataSource"),
        ("dave", "public", "DataSourceChangeOfPermissions"),
    ]
    assert found[0].seqs == (removed, tried)
    assert kind_of(scene.dstrail, tried) == "AccessDataSourceRefused"
    assert [f.details["reason"] for f in found] == [
        "notPermitted",
        "notPermitted",
        "deleted",
        "notPermitted",
    ]
    assert "everyone share removed" in found[3].summary
    assert "ownership transferred away" in found[1].summary


def test_an_hour_far_above_the_users_own_peak(scene: Scene) -> None:
    alice, bob, carol = scene.user("alice"), scene.user("bob"), scene.user("carol")
    sales = scene.dataset(alice, "sales", bob, carol)
    for hour in (10, 11, 12):
        scene.at(scene.day_at(1, hour))
        scene.use(bob, sales, times=3, every_ms=5 * MINUTE)
        scene.use(carol, sales, times=3, every_ms=5 * MINUTE)
    scene.at(scene.day_at(1, 13))
    scene.use(carol, sales, times=3, every_ms=5 * MINUTE)  # quiet: as usual
    start = scene.last_seq() + 1
    scene.use(bob, sales, times=12, every_ms=2 * MINUTE)  # the 10th passes 3 x 3

    found = scene.findings(Rule.VOLUME_SPIKE)
    assert [(f.username, f.data_source_name) for f in found] == [("bob", "sales")]
    (spike,) = found
    assert spike.seqs == (start, start + 8, start + 9)  # the hour's first, the last two
    assert spike.details["count"] == 10
    assert spike.details["peak"] == pytest.approx(3, abs=0.05)  # decayed for an hour
    assert spike.details["activeHours"] == 3


def test_bursts_of_refused_attempts_by_a_user_and_on_a_data_source(scene: Scene) -> None:
    alice, carol, dave, erin, frank = (
        scene.user(n) for n in ("alice", "carol", "dave", "erin", "frank")
    )
    vault = scene.dataset(alice, "vault")
    safe = scene.dataset(alice, "safe")
    scene.at(scene.day_at(1, 10))
    scene.refused(carol, vault, times=4, every_ms=MINUTE)  # by one user: reported
    by_user = scene.last_seq()
    scene.refused(carol, vault, times=2, every_ms=MINUTE)  # the same burst goes on
    scene.later(30 * MINUTE)
    scene.refused(dave, safe, times=2, every_ms=MINUTE)
    scene.refused(erin, safe, times=2, every_ms=MINUTE)  # on one data source, by two
    on_source = scene.last_seq()
    scene.later(30 * MINUTE)
    scene.refused(frank, vault, times=3, every_ms=MINUTE)  # quiet: three

    found = scene.findings(Rule.REFUSED_BURST)
    assert [(f.details["by"], f.last_seq) for f in found] == [
        ("user", by_user),
        ("dataSource", on_source),
    ]
    assert found[0].username == "carol" and len(found[0].seqs) == 4
    assert found[1].data_source_name == "safe" and found[1].user_id == ""
    assert found[1].details["users"] == 2 and len(found[1].seqs) == 4


def test_a_shared_credentials_data_source_made_visible_to_everyone(scene: Scene) -> None:
    alice, admin = scene.user("alice"), scene.user("root", Role.SYS_ADMIN)
    scene.dataset(alice, "open-files", everyone=True)
    created = scene.last_seq()
    restricted = scene.dataset(alice, "team-files")
    scene.later(HOUR)
    scene.permissions(admin, restricted, everyone=True)
    shared = scene.last_seq()
    scene.permissions(admin, restricted, everyone=True)  # no change: nothing recorded
    # quiet: each user brings their own credentials
    mine = scene.database(alice, "own-db", everyone=True, individual=True)
    scene.permissions(alice, mine, everyone=False)
    scene.permissions(alice, mine, everyone=True)

    found = scene.findings(Rule.EVERYONE_SHARE)
    assert [(f.data_source_name, f.username, f.details["eventKind"]) for f in found] == [
        ("open-files", "alice", "CreateDataSource"),
        ("team-files", "root", "DataSourceChangeOfPermissions"),
    ]
    assert found[0].seqs == (created,)
    assert kind_of(scene.dstrail, created) == "CreateDataSource"
    assert found[1].seqs == (shared,)
    assert found[1].details["credentialType"] == "Shared"


def test_a_data_source_transferred_and_then_deleted(scene: Scene) -> None:
    alice, bob = scene.user("alice"), scene.user("bob")
    quick = scene.dataset(alice, "quick")
    slow = scene.dataset(alice, "slow")
    scene.later(HOUR)
    scene.transfer(alice, quick, bob)
    transferred = scene.last_seq()
    scene.transfer(alice, slow, bob)
    scene.later(30 * MINUTE)
    scene.delete(bob, quick)
    deleted = scene.last_seq()
    scene.later(2 * HOUR)
    scene.delete(bob, slow)  # quiet: two and a half hours after (window: one)

    found = scene.findings(Rule.TRANSFER_THEN_DELETE)
    assert [(f.data_source_name, f.username, f.seqs) for f in found] == [
        ("quick", "bob", (transferred, deleted))
    ]
    assert found[0].severity is Severity.HIGH
    assert found[0].details["newOwnerId"] == bob.id
    assert found[0].details["minutesBetween"] == 30


def test_an_interactive_access_at_an_hour_unusual_for_the_user(scene: Scene) -> None:
    alice, bob = scene.user("alice"), scene.user("bob")
    sales = scene.dataset(alice, "sales", bob)
    run = scene.run(bob)
    for day in range(1, 5):
        for hour in (9.2, 10.2, 11.2):
            scene.at(scene.day_at(day, hour))
            scene.use(bob, sales, run=run)
    scene.at(scene.day_at(5, 3.2))
    scene.use(bob, sales)  # 03:00 UTC, outside any run: reported
    night = scene.last_seq()
    scene.later(HOUR)
    scene.use(bob, sales, run=run)  # within the cooldown
    scene.at(scene.day_at(5, 10.5))
    scene.use(bob, sales, run=run)  # quiet: his hours
    job = scene.run(bob, RunType.SCHEDULED)
    scene.at(scene.day_at(6, 2))
    scene.use(bob, sales, run=job)  # quiet: a scheduled job runs at any hour

    found = scene.findings(Rule.UNUSUAL_HOUR)
    assert [(f.username, f.seqs) for f in found] == [("bob", (night,))]
    assert found[0].details["hourOfDay"] == 3
    assert found[0].details["share"] == 0
    assert found[0].details["activeHours"] == 12


def test_a_run_type_never_seen_for_an_established_data_source(scene: Scene) -> None:
    alice, bob = scene.user("alice"), scene.user("bob")
    sales = scene.dataset(alice, "sales", bob)
    young = scene.dataset(alice, "young", bob)
    scene.at(scene.day_at(2, 10))
    scene.use(bob, sales, times=5)  # outside any run: its usual way
    workspace, batch = scene.run(bob), scene.run(bob, RunType.BATCH)
    scene.use(bob, sales, run=workspace)
    from_workspace = scene.last_seq()
    scene.use(bob, sales, run=batch)
    from_batch = scene.last_seq()
    scene.use(bob, sales, run=workspace)  # seen now
    # quiet: a data source still young
    fresh = scene.dataset(alice, "fresh", bob)
    scene.use(bob, fresh, times=6)
    scene.use(bob, fresh, run=batch)
    scene.use(bob, young, run=batch)  # quiet: too few accesses

    found = scene.findings(Rule.NEW_RUN_TYPE)
    assert [(f.data_source_name, f.details["runType"], f.seqs) for f in found] == [
        ("sales", "Workspace", (from_workspace,)),
        ("sales", "Batch", (from_batch,)),
    ]
    assert found[0].details["seenRunTypes"] == ["none"]
    assert found[1].run_id == batch.run.id
    assert found[1].details["seenRunTypes"] == ["Workspace", "none"]


def test_a_clean_history_raises_nothing(scene: Scene) -> None:
    alice, bob, carol = scene.user("alice"), scene.user("bob"), scene.user("carol")
    sales = scene.dataset(alice, "sales", bob)
    logs = scene.dataset(alice, "logs", bob)
    scene.database(alice, "own-db", everyone=True, individual=True)
    runs = {user.id: scene.run(user) for user in (alice, bob, carol)}
    for day in range(0, 6):
        for hour in (9.5, 10.5, 11.5):
            scene.at(scene.day_at(day, hour))
            scene.use(alice, sales, run=runs[alice.id], times=2, every_ms=MINUTE)
            scene.use(bob, sales, run=runs[bob.id], times=3, every_ms=MINUTE)
            if day >= 2:
                scene.use(carol, sales, run=runs[carol.id])
        scene.at(scene.day_at(day, 12))
        if day == 1:
            scene.permissions(alice, sales, bob, carol)  # a grant, used within hours
        if day == 3:
            scene.refused(carol, logs)  # tried once, never had it
        if day == 4:
            scene.transfer(alice, logs, bob)
            scene.refused_change(carol, sales)
        scene.use(bob, logs, run=runs[bob.id])
    scene.at(scene.day_at(6, 12))
    scene.delete(bob, logs)  # two days after the transfer
    scene.permissions(alice, sales, bob)  # carol removed; she never tries again

    assert scene.findings() == []
