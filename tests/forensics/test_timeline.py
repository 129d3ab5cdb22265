"""Timelines: a user's accesses (with what they touched), refused attempts and the grant changes
others made for them, interleaved in seq order; a run's events; a data source's every event
with the grants each moved; pages that follow each other without gaps or repeats; windows."""

from __future__ import annotations

import functools

import pytest

from dstrail.context import Dstrail
from dstrail.domain.datasources import DataSource, Permissions
from dstrail.domain.forensics import TimelinePage
from dstrail.domain.forensics.queries import TimelineQuery
from dstrail.errors import NotFound
from dstrail.services import access
from dstrail.services import datasources as ds_service
from dstrail.services.access import AccessClaim, AccessOperation, AccessRefused, AccessRequest
from dstrail.services.auth import CallerCredentials
from dstrail.services.forensic_answers import timeline
from dstrail.services.forensics import Follower
from tests.services.support import make_project, start_run
from tests.support import Login, SettableClock, create_dataset


def use(
    dstrail: Dstrail,
    ds: DataSource,
    who: Login,
    operation: functools.partial[AccessOperation],
    *,
    run_id: str | None = None,
) -> None:
    request = AccessRequest(
        credentials=CallerCredentials(api_key=who.api_key),
        claim=AccessClaim(run_id=run_id, client_source="Python"),
        data_source_id=ds.id,
        operation=operation,
    )
    access.serve_access(
        dstrail.store, dstrail.vault, request, signing_key=dstrail.keys.signing_key,
        clock=dstrail.clock, serve=lambda grant: grant,
    )  # fmt: skip


def read_key(key: str) -> functools.partial[AccessOperation]:
    return functools.partial(access.object_key_operation, key, is_read_write=False)


def listing(prefix: str) -> functools.partial[AccessOperation]:
    return functools.partial(access.listing_operation, prefix)


def set_users(dstrail: Dstrail, ds: DataSource, owner: Login, *user_ids: str) -> None:
    with dstrail.store.write() as tx:
        ds_service.set_permissions(
            tx, data_source_id=ds.id, permissions=Permissions(is_everyone=False, user_ids=user_ids),
            actor=owner.user, now_ms=dstrail.clock(),
        )  # fmt: skip


def page_of(follower: Follower, subject: str, value: str, **options: int) -> TimelinePage:
    return timeline(follower, TimelineQuery(subject=subject, value=value, **options))


def steps(page: TimelinePage) -> list[tuple[str, str]]:
    return [(e.event.event_kind, e.category.value) for e in page.entries]


@pytest.fixture
def story(
    dstrail: Dstrail, clock: SettableClock, alice: Login, bob: Login
) -> tuple[DataSource, list[int]]:
    """Alice's data source; bob is given it, reads a key, lists a prefix, loses it, is refused.
    Returns the data source and the time of each of those steps."""
    ds = create_dataset(dstrail, alice, "genomics", permissions=Permissions(is_everyone=False))
    times = []
    for act in (
        lambda: set_users(dstrail, ds, alice, bob.id),
        lambda: use(dstrail, ds, bob, read_key("raw/one.csv")),
        lambda: use(dstrail, ds, bob, listing("raw/")),
        lambda: set_users(dstrail, ds, alice),
    ):
        times.append(clock.advance(1000))
        act()
    times.append(clock.advance(1000))
    with pytest.raises(AccessRefused):
        use(dstrail, ds, bob, read_key("raw/two.csv"))
    return ds, times


def test_a_users_timeline_interleaves_what_they_did_with_what_was_done_to_them(
    follower: Follower, story: tuple[DataSource, list[int]], bob: Login
) -> None:
    ds, _times = story
    page = page_of(follower, "username", "bob")
    assert page.subject.id == bob.id and page.subject.name == "bob"
    assert steps(page) == [
        ("UserCreated", "platform"),
        ("DataSourceChangeOfPermissions", "grantChange"),
        ("AccessDataSource", "access"),
        ("AccessDataSource", "access"),
        ("DataSourceChangeOfPermissions", "grantChange"),
        ("AccessDataSourceRefused", "refused"),
    ]
    seqs = [e.event.seq for e in page.entries]
    assert seqs == sorted(seqs) and page.next_after is None
    granted, read, listed, revoked, refused = page.entries[1:]
    assert [(n.change, n.via.value, n.data_source_id) for n in granted.grants] == [
        ("granted", "user", ds.id)
    ]
    assert granted.event.performed_by != bob.id  # alice's change, in bob's timeline
    assert read.touched == {
        "operation": "objectKey",
        "objectKey": "raw/one.csv",
        "isReadWrite": "false",
    }
    assert listed.touched == {"operation": "listObjects", "prefix": "raw/"}
    assert [(n.change, n.via.value) for n in revoked.grants] == [("revoked", "user")]
    assert refused.reason == "notPermitted" and refused.touched["objectKey"] == "raw/two.csv"


def test_pages_follow_each_other_and_a_window_bounds_them(
    follower: Follower, story: tuple[DataSource, list[int]], bob: Login
) -> None:
    whole = [e.event.seq for e in page_of(follower, "user_id", bob.id).entries]
    seen: list[int] = []
    after = 0
    while True:
        page = page_of(follower, "user_id", bob.id, limit=2, after=after)
        assert len(page.entries) <= 2
        seen += [e.event.seq for e in page.entries]
        if page.next_after is None:
            break
        after = page.next_after
    assert seen == whole

    _ds, times = story
    # from the access to the revocation: the two accesses and the revocation
    window = page_of(follower, "user_id", bob.id, from_ms=times[1], to_ms=times[3])
    assert steps(window) == [
        ("AccessDataSource", "access"),
        ("AccessDataSource", "access"),
        ("DataSourceChangeOfPermissions", "grantChange"),
    ]


def test_a_data_source_timeline_holds_its_every_event_with_the_grants_moved(
    follower: Follower, story: tuple[DataSource, list[int]], alice: Login, bob: Login
) -> None:
    ds, _times = story
    page = page_of(follower, "data_source_name", "genomics")
    assert page.subject.id == ds.id
    assert [kind for kind, _ in steps(page)] == [
        "CreateDataSource", "DataSourceChangeOfPermissions", "AccessDataSource",
        "AccessDataSource", "DataSourceChangeOfPermissions", "AccessDataSourceRefused",
    ]  # fmt: skip
    created = page.entries[0]
    assert [(n.change, n.via.value, n.subject_id) for n in created.grants] == [
        ("granted", "owner", alice.id)
    ]
    assert [(n.change, n.subject_id) for n in page.entries[4].grants] == [("revoked", bob.id)]
    by_id = page_of(follower, "data_source_id", ds.id)
    assert [(e.event.seq, e.grants) for e in by_id.entries] == [
        (e.event.seq, e.grants) for e in page.entries
    ]


def test_a_runs_timeline_holds_what_was_recorded_from_it(
    dstrail: Dstrail, follower: Follower, alice: Login
) -> None:
    ds = create_dataset(dstrail, alice, "clicks")
    project = make_project(dstrail, alice)
    started = start_run(dstrail, alice, project)
    use(dstrail, ds, alice, read_key("a.csv"), run_id=started.run.id)
    use(dstrail, ds, alice, read_key("b.csv"))  # outside the run
    page = page_of(follower, "run_id", started.run.id)
    assert steps(page) == [("RunStarted", "platform"), ("AccessDataSource", "access")]
    assert page.entries[1].touched["objectKey"] == "a.csv"
    assert page.entries[1].event.run_id == started.run.id


def test_unknown_subjects_are_not_found(follower: Follower, alice: Login) -> None:
    for subject in ("user_id", "run_id", "data_source_id"):
        with pytest.raises(NotFound):
            page_of(follower, subject, "f" * 24)
    with pytest.raises(NotFound):
        page_of(follower, "data_source_name", "nothing-so-named")
    with pytest.raises(NotFound):
        page_of(follower, "username", "nobody")
