"""Entitlements at random moments of random histories (creations and deletions with names
reused, permission changes, ownership transfers, everyone-shares, project attachments, users
created along the way) equal a replay of the trail read back through the audit query service:
for every data source (by id, and by the name it had then) and every user, at a time or a seq.
The follower takes the history in small batches, some of them midway."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dstrail.domain.forensics.queries import EntitlementsQuery
from dstrail.errors import NotFound
from dstrail.services.forensic_answers import (
    DataSourceEntitlements,
    UserEntitlements,
    entitlements,
)
from dstrail.services.forensics import Follower
from tests.forensics.conftest import Fresh
from tests.forensics.histories import (
    MOVES,
    NAMES,
    START_MS,
    GrantSet,
    History,
    all_ids,
    expected_grants,
    expected_of_user,
    named_at,
    read_trail,
    replay,
    seq_at,
    status_of,
)

EXAMPLES = settings(
    max_examples=25, deadline=None, database=None, suppress_health_check=list(HealthCheck)
)
STEPS = st.lists(
    st.tuples(
        st.sampled_from(MOVES),
        st.integers(0, 2**16),
        st.integers(0, 2**16),
        st.integers(0, 5),
    ),
    min_size=1,
    max_size=30,
)
PROBES = st.lists(st.tuples(st.integers(0, 10**6), st.booleans()), min_size=2, max_size=4)


def got_data_source(
    answer: DataSourceEntitlements,
) -> tuple[GrantSet, GrantSet, dict[str, set[str]]]:
    grants = {(g.via.value, g.subject_id, g.granted.seq) for g in answer.grants}
    projects = {(g.via.value, g.subject_id, g.granted.seq) for g in answer.projects}
    reach = {r.user_id: {via.value for via in r.vias} for r in answer.reach}
    return grants, projects, reach


def got_user(answer: UserEntitlements) -> dict[str, tuple[GrantSet, GrantSet]]:
    return {
        entry.data_source_id: (
            {(g.via.value, g.subject_id, g.granted.seq) for g in entry.grants},
            {(g.via.value, g.subject_id, g.granted.seq) for g in entry.projects},
        )
        for entry in answer.data_sources
    }


def moment(at_seq: int, at_ms: int, by_time: bool, subject: str, value: str) -> EntitlementsQuery:
    if by_time:
        return EntitlementsQuery(subject=subject, value=value, at_ms=at_ms)
    return EntitlementsQuery(subject=subject, value=value, at_seq=at_seq)


def test_entitlements_at_any_moment_equal_a_replay_of_the_trail(fresh_dstrail: Fresh) -> None:
    @EXAMPLES
    @given(steps=STEPS, probes=PROBES, batch=st.integers(1, 7))
    def check(
        steps: list[tuple[str, int, int, int]], probes: list[tuple[int, bool]], batch: int
    ) -> None:
        with fresh_dstrail() as (dstrail, clock):
            # Grants alone: the detection rules' consumers have tests of their own.
            follower = Follower(
                dstrail.store, settings=dstrail.settings, clock=clock, batch_events=batch,
                consumers=(),
            )  # fmt: skip
            history = History(dstrail, clock, follower)
            for step in steps:
                history.step(*step)
            events = read_trail(dstrail)
            sources, users = all_ids(events)
            stamps = [e.ts_ms for e in events]
            for pick, exact in probes:
                # an event's own time, or any time from before the first event to after the last
                at_ms = (
                    stamps[pick % len(stamps)]
                    if exact
                    else START_MS - 5 + pick % (stamps[-1] - START_MS + 10)
                )
                at_seq = seq_at(events, at_ms)
                world = replay(events, at_seq)
                by_time = pick % 2 == 0
                for ds_id in sources:
                    answer = entitlements(
                        follower, moment(at_seq, at_ms, by_time, "data_source_id", ds_id)
                    )
                    assert isinstance(answer, DataSourceEntitlements)
                    assert answer.moment.at_seq == at_seq
                    assert answer.status.value == status_of(world, ds_id)
                    assert got_data_source(answer) == expected_grants(world, ds_id), (ds_id, at_seq)
                for user_id in users:
                    answer = entitlements(
                        follower, moment(at_seq, at_ms, by_time, "user_id", user_id)
                    )
                    assert isinstance(answer, UserEntitlements)
                    assert answer.existed == (user_id in world.created)
                    assert got_user(answer) == expected_of_user(world, user_id), (user_id, at_seq)
                for name in NAMES:
                    query = moment(at_seq, at_ms, by_time, "data_source_name", name)
                    wanted = named_at(world, name)
                    if wanted is None:
                        try:
                            entitlements(follower, query)
                        except NotFound:
                            continue
                        raise AssertionError(f"{name!r} answered at {at_seq}, unknown then")
                    answer = entitlements(follower, query)
                    assert isinstance(answer, DataSourceEntitlements)
                    assert answer.data_source.data_source_id == wanted

    check()
