"""Entitlements in the cases an investigator meets: a name reused after a delete, a deleted
data source, an ownership transfer, an everyone-share and the users that existed then, project
attachments, a user the trail never saw created; each grant with the event that gave it."""

from __future__ import annotations

import pytest
from sqlalchemy import insert

from dstrail.context import Dstrail
from dstrail.domain.datasources import Permissions
from dstrail.domain.forensics.queries import EntitlementsQuery
from dstrail.errors import InvalidInput, NotFound, Unavailable
from dstrail.services import datasources as ds_service
from dstrail.services.forensic_answers import (
    DataSourceEntitlements,
    UserEntitlements,
    entitlements,
)
from dstrail.services.forensics import Follower
from dstrail.store.schema import users
from tests.services.support import make_project
from tests.support import Login, SettableClock, create_dataset, make_user


def of_data_source(follower: Follower, **asked: object) -> DataSourceEntitlements:
    subject = next(k for k in ("data_source_id", "data_source_name") if k in asked)
    answer = entitlements(
        follower,
        EntitlementsQuery(
            subject=subject,
            value=str(asked[subject]),
            at_ms=asked.get("at_ms"),  # type: ignore[arg-type]
            at_seq=asked.get("at_seq"),  # type: ignore[arg-type]
        ),
    )
    assert isinstance(answer, DataSourceEntitlements)
    return answer


def of_user(follower: Follower, user_id: str, **at: int) -> UserEntitlements:
    answer = entitlements(follower, EntitlementsQuery(subject="user_id", value=user_id, **at))
    assert isinstance(answer, UserEntitlements)
    return answer


def grants_of(answer: DataSourceEntitlements) -> set[tuple[str, str, str]]:
    """(via, subject, granting kind)."""
    return {(g.via.value, g.subject_id, g.granted.kind) for g in answer.grants}


def delete(dstrail: Dstrail, ds_id: str, actor: Login) -> None:
    with dstrail.store.write() as tx:
        ds_service.delete_data_source(
            tx, data_source_id=ds_id, actor=actor.user, now_ms=dstrail.clock()
        )


def test_a_reused_name_answers_for_the_data_source_that_had_it_then(
    dstrail: Dstrail, follower: Follower, clock: SettableClock, alice: Login, bob: Login
) -> None:
    first = create_dataset(dstrail, alice, "sales", permissions=Permissions(is_everyone=False))
    t_first = clock()
    clock.advance(1000)
    delete(dstrail, first.id, alice)
    t_gap = clock()
    clock.advance(1000)
    second = create_dataset(dstrail, bob, "sales", permissions=Permissions(is_everyone=True))
    t_second = clock()
    clock.advance(1000)

    then = of_data_source(follower, data_source_name="sales", at_ms=t_first)
    assert then.data_source.data_source_id == first.id and then.status.value == "Active"
    assert grants_of(then) == {("owner", alice.id, "CreateDataSource")}
    assert [r.user_id for r in then.reach] == [alice.id]
    # after the delete, before the name was given again: the deleted one, with nothing in force
    gap = of_data_source(follower, data_source_name="sales", at_ms=t_gap)
    assert gap.data_source.data_source_id == first.id and gap.status.value == "Deleted"
    assert gap.grants == [] and gap.reach == []
    now = of_data_source(follower, data_source_name="sales", at_ms=t_second)
    assert now.data_source.data_source_id == second.id
    assert grants_of(now) == {
        ("owner", bob.id, "CreateDataSource"),
        ("everyone", "", "CreateDataSource"),
    }
    # the deleted data source answers by id, at any moment
    assert of_data_source(follower, data_source_id=first.id, at_ms=t_second).status.value == (
        "Deleted"
    )
    before = of_data_source(follower, data_source_id=second.id, at_ms=t_first)
    assert before.status.value == "NotYetCreated" and before.grants == []
    with pytest.raises(NotFound, match="dataSourceName"):
        of_data_source(follower, data_source_name="sales", at_seq=1)


def test_everyone_means_the_users_that_existed_then(
    dstrail: Dstrail, follower: Follower, clock: SettableClock, alice: Login, bob: Login
) -> None:
    shared = create_dataset(dstrail, alice, "open", permissions=Permissions(is_everyone=True))
    t_before_carol = clock()
    clock.advance(1000)
    carol = make_user(dstrail, "carol")
    t_after = clock()
    clock.advance(1000)

    early = of_data_source(follower, data_source_id=shared.id, at_ms=t_before_carol)
    reach = {r.user_id: [v.value for v in r.vias] for r in early.reach}
    assert reach == {alice.id: ["owner", "everyone"], bob.id: ["everyone"]}
    late = of_data_source(follower, data_source_id=shared.id, at_ms=t_after)
    assert carol.id in {r.user_id for r in late.reach}
    assert any("shared with everyone" in note for note in late.notes)

    not_yet = of_user(follower, carol.id, at_ms=t_before_carol)
    assert not not_yet.existed and not_yet.data_sources == []
    assert any("did not exist yet" in note for note in not_yet.notes)
    [entry] = of_user(follower, carol.id, at_ms=t_after).data_sources
    assert entry.data_source_id == shared.id
    assert [(g.via.value, g.granted.kind, g.granted.by) for g in entry.grants] == [
        ("everyone", "CreateDataSource", alice.id)
    ]


def test_a_transfer_moves_the_owner_grant_and_names_who_made_it(
    dstrail: Dstrail,
    follower: Follower,
    clock: SettableClock,
    admin: Login,
    alice: Login,
    bob: Login,
) -> None:
    ds = create_dataset(
        dstrail, alice, "ledger", permissions=Permissions(is_everyone=False, user_ids=(bob.id,))
    )
    t_alice = clock()
    clock.advance(1000)
    with dstrail.store.write() as tx:
        ds_service.transfer_ownership(
            tx, data_source_id=ds.id, new_owner_id=bob.id, actor=admin.user,
            now_ms=clock.advance(1000),
        )  # fmt: skip
    t_bob = clock()
    clock.advance(1000)

    assert grants_of(of_data_source(follower, data_source_id=ds.id, at_ms=t_alice)) == {
        ("owner", alice.id, "CreateDataSource"),
        ("user", bob.id, "CreateDataSource"),
    }
    after = of_data_source(follower, data_source_id=ds.id, at_ms=t_bob)
    owner = next(g for g in after.grants if g.via.value == "owner")
    assert owner.subject_id == bob.id and owner.granted.kind == "DataSourceChangeOfOwnership"
    assert owner.granted.by == admin.id and after.names[admin.id] == "sample-admin"
    assert {r.user_id: [v.value for v in r.vias] for r in after.reach} == {
        bob.id: ["owner", "user"]
    }
    assert of_user(follower, alice.id, at_ms=t_bob).data_sources == []
    [alices] = of_user(follower, alice.id, at_ms=t_alice).data_sources
    assert [g.via.value for g in alices.grants] == ["owner"]


def test_projects_are_reported_as_attachments_not_as_grants(
    dstrail: Dstrail, follower: Follower, clock: SettableClock, alice: Login, bob: Login
) -> None:
    ds = create_dataset(dstrail, alice, "claims", permissions=Permissions(is_everyone=False))
    project = make_project(dstrail, bob, "bobs-project", collaborators=(alice,))
    with dstrail.store.write() as tx:
        ds_service.attach_to_project(
            tx, data_source_id=ds.id, project_id=project.id, actor=alice.user,
            now_ms=clock.advance(10),
        )  # fmt: skip
    t_attached = clock()
    clock.advance(1000)
    with dstrail.store.write() as tx:
        ds_service.detach_from_project(
            tx, data_source_id=ds.id, project_id=project.id, actor=alice.user,
            now_ms=clock.advance(10),
        )  # fmt: skip

    attached = of_data_source(follower, data_source_id=ds.id, at_ms=t_attached)
    assert [(g.subject_id, g.granted.kind) for g in attached.projects] == [
        (project.id, "DataSourceAssociatedToProject")
    ]
    assert attached.names[project.id] == "bobs-project"
    assert [r.user_id for r in attached.reach] == [alice.id]  # bob's project grants no use
    assert of_user(follower, bob.id, at_ms=t_attached).data_sources == []
    [alices] = of_user(follower, alice.id, at_ms=t_attached).data_sources
    assert [g.subject_id for g in alices.projects] == [project.id]
    assert of_data_source(follower, data_source_id=ds.id).projects == []


def test_a_user_the_trail_never_saw_created_is_answered_without_everyone_shares(
    dstrail: Dstrail, follower: Follower, alice: Login
) -> None:
    legacy_id = "5" * 24
    with dstrail.store.engine.begin() as connection:  # a user from before UserCreated existed
        connection.execute(
            insert(users).values(
                id=legacy_id, username="legacy", email="", role="User", created_at=0
            )
        )
    create_dataset(dstrail, alice, "everyones", permissions=Permissions(is_everyone=True))
    answer = entitlements(follower, EntitlementsQuery(subject="username", value="legacy"))
    assert isinstance(answer, UserEntitlements)
    assert answer.user_id == legacy_id and answer.created is None and not answer.existed
    assert answer.data_sources == []
    assert any("does not record when this user was created" in n for n in answer.notes)


def test_moments_outside_the_trail_and_unknown_subjects(
    dstrail: Dstrail, follower: Follower, alice: Login
) -> None:
    ds = create_dataset(dstrail, alice, "x")
    with dstrail.store.read() as tx:
        head = tx.forensics.head()
    with pytest.raises(InvalidInput, match=f"accepted: 0 to {head}"):
        of_data_source(follower, data_source_id=ds.id, at_seq=head + 5)
    first = of_data_source(follower, data_source_id=ds.id, at_ms=0)
    assert first.moment.at_seq == 0 and first.grants == []
    with pytest.raises(NotFound, match="dataSourceId"):
        of_data_source(follower, data_source_id="f" * 24)
    with pytest.raises(NotFound, match="userId"):
        of_user(follower, "f" * 24)


def test_an_answer_far_behind_the_trail_waits_for_the_follower_instead_of_catching_up(
    dstrail: Dstrail, follower: Follower, alice: Login
) -> None:
    create_dataset(dstrail, alice, "x")
    query = EntitlementsQuery(subject="username", value="alice")
    lag = follower.behind()
    assert lag > 2
    with pytest.raises(Unavailable, match=f"{lag:,} events behind"):
        entitlements(follower, query, at_most=2)
    assert follower.behind() == lag  # it did not catch up itself
    answer = entitlements(follower, query, at_most=lag)
    assert isinstance(answer, UserEntitlements) and follower.behind() == 0
