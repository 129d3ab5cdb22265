"""The detection rules: pure logic over the trail's events, in seq order, and the state each
rule keeps between them (no I/O: the service loads the state, runs a ``Detector`` over a batch
and writes the state and the findings back, in the follower's transaction).

The rules (``docs/forensics.md``, "Detection rules", has their thresholds and figures):

- ``firstAccess``: a user reaches a data source they have not reached in ``lookback`` days,
  although they have existed for longer than the user grace and have been able to reach it
  (their oldest grant in force) for longer than the grant grace: a dormant entitlement used;
- ``accessWithoutGrant``: an ``AccessDataSource`` succeeded while the trail shows no grant
  in force for that user (owner, listed user, everyone): an integrity alarm, held back where
  the trail may lack the grants (history from before it recorded them, or purged);
- ``accessAfterRevocation``: an ``AccessDataSourceRefused`` of a user who had a grant of that
  data source until at most ``window`` before (permission removed, ownership transferred away,
  data source deleted, everyone share removed);
- ``volumeSpike``: a user's accesses to one data source in one clock hour (UTC) pass
  ``factor`` times their own peak hour (decaying with a half-life), once they have a history;
- ``refusedBurst``: refused attempts by one user, or against one data source (from several
  users), ``count`` within a sliding window; one finding a burst;
- ``everyoneShare``: a data source whose credentials are shared (one service account) made
  visible to everyone, at its creation or later;
- ``transferThenDelete``: a data source deleted within ``window`` of its ownership transfer;
- ``unusualHour``: an interactive access (a workspace, or outside any run) in an hour of the
  day (UTC, with the two hours either side) that holds a tiny share of the user's active
  hours;
- ``newRunType``: an established data source reached from a run type (or from outside any run)
  never seen for it before.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final

import orjson

from dstrail.domain.forensics.events import TrailEvent
from dstrail.domain.forensics.findings import (
    MAX_LINKED,
    SEVERITY_OF,
    Finding,
    Rule,
    finding_id,
)
from dstrail.domain.timestamps import DAY_MS, format_ms
from dstrail.domain.trail import EventKind

HOUR_MS: Final = 3_600_000
MINUTE_MS: Final = 60_000
OUTSIDE_RUN: Final = ""
"""The run type of an access from outside any run."""
OUTSIDE_RUN_NAME: Final = "none"
"""How settings and details name it."""
AROUND: Final = (-2, -1, 0, 1, 2)
"""``unusualHour`` weighs an hour of the day with the two either side (a late evening, an
early start are not unusual)."""

ACCESS: Final = EventKind.ACCESS_DATA_SOURCE.value
REFUSED: Final = EventKind.ACCESS_REFUSED.value
CREATED: Final = EventKind.CREATE_DATA_SOURCE.value
PERMISSIONS: Final = EventKind.CHANGE_OF_PERMISSIONS.value
OWNERSHIP: Final = EventKind.CHANGE_OF_OWNERSHIP.value
DELETED: Final = EventKind.DELETE_DATA_SOURCE.value
WATCHED: Final = frozenset({ACCESS, REFUSED, CREATED, PERMISSIONS, OWNERSHIP, DELETED})
"""The kinds the rules read; every other event (platform changes, findings) passes by."""

REVOCATIONS: Final = {
    EventKind.CHANGE_OF_PERMISSIONS.value: "permission removed",
    EventKind.CHANGE_OF_OWNERSHIP.value: "ownership transferred away",
    EventKind.DELETE_DATA_SOURCE.value: "data source deleted",
}


@dataclass(frozen=True, slots=True)
class Thresholds:
    """Every rule's thresholds (``Settings.forensics_*``, which hold the defaults)."""

    first_access_lookback_days: float
    first_access_user_grace_days: float
    first_access_grant_grace_days: float
    revocation_window_hours: float
    volume_factor: float
    volume_min_events: int
    volume_min_hours: int
    volume_half_life_days: float
    refused_window_minutes: float
    refused_user_count: int
    refused_source_count: int
    refused_source_users: int
    everyone_credential_types: frozenset[str]
    transfer_delete_hours: float
    unusual_hour_max_share: float
    unusual_hour_min_hours: int
    unusual_hour_min_days: int
    unusual_hour_cooldown_hours: float
    unusual_hour_run_types: frozenset[str]
    """Run types whose accesses are interactive ("" for outside any run)."""
    new_run_type_min_accesses: int
    new_run_type_min_age_days: float


# -- the state the rules keep -------------------------------------------------------------------


@dataclass(slots=True)
class PairState:
    """One user and one data source: last access, this hour's count, the peak hour."""

    last_ms: int = -1
    """The last access (-1: none yet)."""
    last_seq: int = 0
    hour: int = -1
    """The clock hour being counted (epoch hours)."""
    hour_count: int = 0
    hour_first_seq: int = 0
    hour_fired: bool = False
    peak: int = 0
    """The busiest counted hour (it decays with the half-life from ``peak_hour``)."""
    peak_hour: int = 0
    hours: int = 0
    """Active hours counted so far."""
    alarm_hour: int = -1
    """The last hour an access without grant was reported (one finding an hour)."""
    lost_seq: int = 0
    """The revocation the last refused-after-revocation finding was about (one each)."""


@dataclass(slots=True)
class UserState:
    """One user: their active hours of the day, and their recent refusals."""

    hours: list[int] = field(default_factory=lambda: [0] * 24)
    """Active hour-slots (one per clock hour with an interactive access) by hour of day."""
    slots: int = 0
    days: int = 0
    last_slot: int = -1
    unusual_ms: int = -1
    """The last unusual-hour finding (-1: none)."""
    refusals: list[tuple[int, int, str]] = field(default_factory=list)
    """(ts, seq, data source) of the latest refusals."""
    burst_until: int = -1


@dataclass(slots=True)
class SourceState:
    """One data source: its creation, share, accesses, run types, last transfer, refusals."""

    created_ms: int = -1
    """Its creation (-1: not in the trail)."""
    credential_type: str = ""
    is_everyone: bool = False
    accesses: int = 0
    run_types: set[str] = field(default_factory=set)
    transfer_seq: int = 0
    transfer_ms: int = -1
    transfer_from: str = ""
    transfer_to: str = ""
    refusals: list[tuple[int, int, str]] = field(default_factory=list)
    """(ts, seq, user) of the latest refusals."""
    burst_until: int = -1
    grants_recorded: bool = False
    """Whether its creation in the trail carries the initial grants (``ownerId`` on
    ``CreateDataSource``); one without them was recorded before the trail held grants."""


@dataclass(slots=True)
class History:
    """What the trail may not hold, for the integrity alarm to take into account."""

    purged: bool = False
    """The derived state began after the first event: earlier ones had been purged, with the
    creations of the data sources and users they named."""
    before_grants: bool = False
    """The trail holds a data source created before the trail recorded initial grants: the
    installation has history from before it recorded them, and from before ``UserCreated``."""


def pair_key(user_id: str, data_source_id: str) -> str:
    """The key of a (user, data source) state."""
    return user_id + data_source_id


# -- grants, as the entitlement tables hold them -------------------------------------------------


@dataclass(frozen=True, slots=True)
class GrantSpan:
    """A grant of use of a data source: in force from ``granted_seq`` until ``revoked_seq``."""

    via: str
    """``owner``, ``user`` or ``everyone``."""
    subject_id: str
    """The user ("" for everyone)."""
    granted_seq: int
    granted_ms: int
    revoked_seq: int | None
    revoked_ms: int | None
    revoked_kind: str | None

    def in_force(self, seq: int) -> bool:
        """Whether it is in force after event ``seq``."""
        return self.granted_seq <= seq and (self.revoked_seq is None or self.revoked_seq > seq)


def _oldest_in_force(
    grants: Iterable[GrantSpan], seq: int, found: GrantSpan | None
) -> GrantSpan | None:
    """The oldest of ``grants`` in force after event ``seq``, or ``found`` if older."""
    for grant in grants:
        revoked = grant.revoked_seq
        in_force = grant.granted_seq <= seq and (revoked is None or revoked > seq)
        if in_force and (found is None or grant.granted_seq < found.granted_seq):
            found = grant
    return found


class Grants:
    """The grants the rules ask about: by data source and user ("" for everyone), and when
    each user was created (everyone means the users that exist)."""

    def __init__(
        self,
        grants: Iterable[tuple[str, GrantSpan]],
        users: Mapping[str, tuple[int, int]],
    ) -> None:
        self._grants: dict[tuple[str, str], list[GrantSpan]] = {}
        for data_source_id, grant in grants:
            self._grants.setdefault((data_source_id, grant.subject_id), []).append(grant)
        self._users = users

    def user_created(self, user_id: str) -> tuple[int, int] | None:
        """(seq, ms) of the user's creation; None when the trail does not hold it."""
        return self._users.get(user_id)

    def _candidates(self, data_source_id: str, user_id: str, seq: int) -> list[GrantSpan]:
        """The user's own grants of the data source, and its everyone grants that could have
        covered them (they existed while it was in force)."""
        own = self._grants.get((data_source_id, user_id), ())
        created = self._users.get(user_id)
        shared = self._grants.get((data_source_id, ""), ()) if created is not None else ()
        if not shared:
            return list(own)
        assert created is not None
        if created[0] > seq:
            return list(own)
        return [
            *own,
            *(g for g in shared if g.revoked_seq is None or created[0] < g.revoked_seq),
        ]

    def covering(self, data_source_id: str, user_id: str, seq: int) -> GrantSpan | None:
        """The oldest grant that lets the user use the data source after event ``seq``."""
        found = _oldest_in_force(self._grants.get((data_source_id, user_id), ()), seq, None)
        shared = self._grants.get((data_source_id, ""))
        if shared:
            created = self._users.get(user_id)
            if created is not None and created[0] <= seq:
                found = _oldest_in_force(shared, seq, found)
        return found

    def may_cover_unseen(self, data_source_id: str, user_id: str, seq: int) -> bool:
        """Whether the data source was shared with everyone after event ``seq`` while the
        trail does not hold the user's creation (so, where the trail may lack it, the share
        may have covered them)."""
        if user_id in self._users:
            return False
        shared = self._grants.get((data_source_id, ""), ())
        return _oldest_in_force(shared, seq, None) is not None

    def lost(self, data_source_id: str, user_id: str, seq: int, since_ms: int) -> GrantSpan | None:
        """The latest grant of the user's that ended at or before event ``seq`` and at or
        after ``since_ms``."""
        found: GrantSpan | None = None
        for grant in self._candidates(data_source_id, user_id, seq):
            revoked_seq, revoked_ms = grant.revoked_seq, grant.revoked_ms
            if revoked_seq is None or revoked_ms is None or revoked_seq > seq:
                continue
            if revoked_ms >= since_ms and (found is None or revoked_seq > (found.revoked_seq or 0)):
                found = grant
        return found


# -- the events the rules read -----------------------------------------------------------------


_RUN_TYPE_KEY: Final = '"runType":"'


def run_type_of(event: TrailEvent) -> str:
    """The run type of an access ("" outside any run), read without parsing the metadata
    into a string map when the event names no run (hot: every access asks)."""
    if not event.run_id:
        return OUTSIDE_RUN
    text = event.metadata_json
    at = text.find(_RUN_TYPE_KEY)
    if at >= 0:  # as dstrail writes metadata (compact JSON); the run types need no escapes
        start = at + len(_RUN_TYPE_KEY)
        end = text.find('"', start)
        if end > start and "\\" not in text[start:end]:
            return text[start:end]
    try:
        metadata = orjson.loads(text)
    except orjson.JSONDecodeError:
        return OUTSIDE_RUN
    value = metadata.get("runType", OUTSIDE_RUN) if isinstance(metadata, dict) else OUTSIDE_RUN
    return value if isinstance(value, str) else OUTSIDE_RUN


def watched(events: Iterable[TrailEvent]) -> list[TrailEvent]:
    """The events of ``events`` the rules read (``WATCHED``: never a finding's own), in order."""
    return [event for event in events if event.event_kind in WATCHED]


@dataclass(frozen=True, slots=True)
class Needs:
    """The state a batch reads: its users, data sources and (user, data source) pairs, and the
    data sources whose grants it asks about."""

    user_ids: frozenset[str]
    data_source_ids: frozenset[str]
    pair_keys: frozenset[str]
    grant_data_source_ids: frozenset[str]


def needs_of(events: Sequence[TrailEvent]) -> Needs:
    """What ``Detector`` will read for ``events``."""
    users: set[str] = set()
    sources: set[str] = set()
    pairs: set[str] = set()
    granted: set[str] = set()
    for event in events:
        sources.add(event.data_source_id)
        if event.event_kind in (ACCESS, REFUSED):
            users.add(event.performed_by)
            pairs.add(pair_key(event.performed_by, event.data_source_id))
            granted.add(event.data_source_id)
    return Needs(frozenset(users), frozenset(sources), frozenset(pairs), frozenset(granted))


# -- the rules -------------------------------------------------------------------------------------


def _run_type_name(run_type: str) -> str:
    return run_type or OUTSIDE_RUN_NAME


def _linked(seqs: Sequence[int]) -> tuple[int, ...]:
    """At most ``MAX_LINKED`` seqs, oldest first, the last one kept."""
    ordered = sorted(set(seqs))
    if len(ordered) > MAX_LINKED:
        ordered = [*ordered[: MAX_LINKED - 1], ordered[-1]]
    return tuple(ordered)


def _ago(ms: int) -> str:
    if ms < HOUR_MS:
        return f"{max(ms // MINUTE_MS, 0)} minutes"
    if ms < 2 * DAY_MS:
        return f"{ms / HOUR_MS:.1f} hours"
    return f"{ms / DAY_MS:.0f} days"


class Detector:
    """Runs the rules over events in seq order, updating the states it was given (missing
    keys start empty) and collecting what they find in ``findings``."""

    def __init__(
        self,
        thresholds: Thresholds,
        *,
        grants: Grants,
        pairs: dict[str, PairState],
        users: dict[str, UserState],
        sources: dict[str, SourceState],
        history: History,
    ) -> None:
        self.t = thresholds
        self.grants = grants
        self.history = history
        self.pairs = pairs
        self.users = users
        self.sources = sources
        self.findings: list[Finding] = []
        t = thresholds
        self._lookback_ms = t.first_access_lookback_days * DAY_MS
        self._user_grace_ms = t.first_access_user_grace_days * DAY_MS
        self._grant_grace_ms = t.first_access_grant_grace_days * DAY_MS
        self._revocation_ms = t.revocation_window_hours * HOUR_MS
        self._half_life_hours = max(t.volume_half_life_days * 24, 1e-9)
        self._refused_ms = t.refused_window_minutes * MINUTE_MS
        self._transfer_ms = t.transfer_delete_hours * HOUR_MS
        self._cooldown_ms = t.unusual_hour_cooldown_hours * HOUR_MS
        self._min_age_ms = t.new_run_type_min_age_days * DAY_MS
        self._handlers = {
            ACCESS: self._access,
            REFUSED: self._refused,
            CREATED: self._created,
            PERMISSIONS: self._permissions,
            OWNERSHIP: self._ownership,
            DELETED: self._deleted,
        }

    def run(self, events: Iterable[TrailEvent]) -> list[Finding]:
        """Observe ``events`` in order; the findings they raised."""
        for event in events:
            self._handlers[event.event_kind](event)
        return self.findings

    # -- state -------------------------------------------------------------------------------

    def _pair(self, event: TrailEvent) -> PairState:
        key = pair_key(event.performed_by, event.data_source_id)
        state = self.pairs.get(key)
        if state is None:
            state = self.pairs[key] = PairState()
        return state

    def _user(self, user_id: str) -> UserState:
        state = self.users.get(user_id)
        if state is None:
            state = self.users[user_id] = UserState()
        return state

    def _source(self, data_source_id: str) -> SourceState:
        state = self.sources.get(data_source_id)
        if state is None:
            state = self.sources[data_source_id] = SourceState()
        return state

    def _raise(
        self,
        rule: Rule,
        event: TrailEvent,
        summary: str,
        seqs: Sequence[int],
        details: dict[str, object],
        *,
        scope: str = "",
        user: tuple[str, str] | None = None,
    ) -> None:
        user_id, username = (
            user if user is not None else (event.performed_by, event.performed_by_username)
        )
        self.findings.append(
            Finding(
                id=finding_id(rule, scope, event.seq),
                rule=rule,
                severity=SEVERITY_OF[rule],
                summary=summary,
                user_id=user_id,
                username=username,
                data_source_id=event.data_source_id,
                data_source_name=event.data_source_name,
                run_id=event.run_id or "",
                seqs=_linked([*seqs, event.seq]),
                ts_ms=event.ts_ms,
                details=details,
            )
        )

    # -- accesses ----------------------------------------------------------------------------

    def _access(self, event: TrailEvent) -> None:
        pair = self._pair(event)
        source = self._source(event.data_source_id)
        grant = self.grants.covering(event.data_source_id, event.performed_by, event.seq)
        if grant is None:
            if self._shows_no_grant(event, source):
                self._without_grant(event, pair)
        else:
            self._first_access(event, pair, grant)
        self._volume(event, pair)
        run_type = run_type_of(event)
        if run_type in self.t.unusual_hour_run_types:
            self._unusual_hour(event, self._user(event.performed_by))
        self._run_type(event, source, run_type)
        pair.last_ms, pair.last_seq = event.ts_ms, event.seq

    def _shows_no_grant(self, event: TrailEvent, source: SourceState) -> bool:
        """Whether the trail can show that the user had no grant. Not when the data source
        was created before the trail recorded initial grants, or its creation may have been
        purged; nor for a user whose creation the trail may lack (purged, or from before
        ``UserCreated``) while an everyone share was in force. A data source or user that a
        complete trail never saw created is an alarm."""
        history = self.history
        if source.created_ms >= 0:
            if not source.grants_recorded:
                return False
        elif history.purged:
            return False
        if not (history.purged or history.before_grants):
            return True
        return not self.grants.may_cover_unseen(event.data_source_id, event.performed_by, event.seq)

    def _without_grant(self, event: TrailEvent, pair: PairState) -> None:
        hour = event.ts_ms // HOUR_MS
        if pair.alarm_hour == hour:
            return
        pair.alarm_hour = hour
        self._raise(
            Rule.ACCESS_WITHOUT_GRANT, event,
            f"{event.performed_by_username} accessed {event.data_source_name} although the trail shows no "
            "grant in force for them (integrity alarm)",
            [], {"operation": event.metadata.get("operation", "")},
        )  # fmt: skip

    def _first_access(self, event: TrailEvent, pair: PairState, grant: GrantSpan) -> None:
        ts = event.ts_ms
        if pair.last_ms >= 0 and ts - pair.last_ms <= self._lookback_ms:
            return
        created = self.grants.user_created(event.performed_by)
        if created is not None and ts - created[1] < self._user_grace_ms:
            return  # a new joiner finding their way
        if ts - grant.granted_ms < self._grant_grace_ms:
            return  # a fresh grant explains a first access
        seen = "never" if pair.last_ms < 0 else f"last {_ago(ts - pair.last_ms)} ago"
        self._raise(
            Rule.FIRST_ACCESS, event,
            f"{event.performed_by_username} accessed {event.data_source_name} for the first time in "
            f"{self.t.first_access_lookback_days:g} days ({seen}), through a grant "
            f"({grant.via}) {_ago(ts - grant.granted_ms)} old",
            [pair.last_seq] if pair.last_seq else [],
            {
                "lastAccessSeq": pair.last_seq or None,
                "lastAccessTime": format_ms(pair.last_ms) if pair.last_ms >= 0 else None,
                "grantVia": grant.via, "grantedSeq": grant.granted_seq,
                "grantedTime": format_ms(grant.granted_ms),
            },
        )  # fmt: skip

    def _volume(self, event: TrailEvent, pair: PairState) -> None:
        hour = event.ts_ms // HOUR_MS
        if hour > pair.hour:
            if pair.hour_count:
                if pair.hour_count >= self._peak(pair, pair.hour):
                    pair.peak, pair.peak_hour = pair.hour_count, pair.hour
                pair.hours += 1
            pair.hour, pair.hour_count = hour, 0
            pair.hour_first_seq, pair.hour_fired = event.seq, False
        pair.hour_count += 1
        t = self.t
        if pair.hour_fired or pair.hours < t.volume_min_hours:
            return
        count = pair.hour_count
        peak = self._peak(pair, pair.hour)
        if count < t.volume_min_events or count <= t.volume_factor * max(peak, 1.0):
            return
        pair.hour_fired = True
        self._raise(
            Rule.VOLUME_SPIKE, event,
            f"{event.performed_by_username} reached {event.data_source_name} {count} times in the hour from "
            f"{format_ms(pair.hour * HOUR_MS)}, over {t.volume_factor:g} times their peak "
            f"hour ({peak:.0f})",
            [pair.hour_first_seq, pair.last_seq] if pair.last_seq >= pair.hour_first_seq
            else [pair.hour_first_seq],
            {"hourStart": format_ms(pair.hour * HOUR_MS), "count": count,
             "peak": round(peak, 2), "activeHours": pair.hours},
        )  # fmt: skip

    def _peak(self, pair: PairState, hour: int) -> float:
        """The peak hour's count, decayed to ``hour``."""
        if not pair.peak:
            return 0.0
        elapsed = max(hour - pair.peak_hour, 0)
        return float(pair.peak * 0.5 ** (elapsed / self._half_life_hours))

    def _unusual_hour(self, event: TrailEvent, user: UserState) -> None:
        slot = event.ts_ms // HOUR_MS
        if slot <= user.last_slot:
            return  # this hour is counted already (or the clock stepped back)
        t = self.t
        hour = slot % 24
        around = sum(user.hours[(hour + step) % 24] for step in AROUND)
        share = around / user.slots if user.slots else 1.0
        if (
            user.slots >= t.unusual_hour_min_hours
            and user.days >= t.unusual_hour_min_days
            and share <= t.unusual_hour_max_share
            and (user.unusual_ms < 0 or event.ts_ms - user.unusual_ms >= self._cooldown_ms)
        ):
            user.unusual_ms = event.ts_ms
            self._raise(
                Rule.UNUSUAL_HOUR, event,
                f"{event.performed_by_username} accessed {event.data_source_name} at {hour:02d}:00-"
                f"{(hour + 1) % 24:02d}:00 UTC; {(hour - 2) % 24:02d}:00-{(hour + 3) % 24:02d}:00 "
                f"holds {share:.1%} of their {user.slots} active hours",
                [],
                {"hourOfDay": hour, "share": round(share, 5), "activeHours": user.slots,
                 "activeDays": user.days},
            )  # fmt: skip
        if user.last_slot < 0 or slot // 24 != user.last_slot // 24:
            user.days += 1
        user.hours[hour] += 1
        user.slots += 1
        user.last_slot = slot

    def _run_type(self, event: TrailEvent, source: SourceState, run_type: str) -> None:
        t = self.t
        if run_type not in source.run_types:
            established = (
                source.accesses >= t.new_run_type_min_accesses
                and source.created_ms >= 0
                and event.ts_ms - source.created_ms >= self._min_age_ms
            )
            if established:
                seen = sorted(_run_type_name(r) for r in source.run_types)
                self._raise(
                    Rule.NEW_RUN_TYPE, event,
                    f"{event.data_source_name} was reached from "
                    f"{_run_type_name(run_type) if run_type else 'outside any run'} for the "
                    f"first time in {source.accesses} accesses, by {event.performed_by_username}",
                    [],
                    {"runType": _run_type_name(run_type), "seenRunTypes": seen,
                     "accesses": source.accesses},
                )  # fmt: skip
            source.run_types.add(run_type)
        source.accesses += 1

    # -- refusals ----------------------------------------------------------------------------

    def _refused(self, event: TrailEvent) -> None:
        pair = self._pair(event)
        ds, user_id, seq, ts = event.data_source_id, event.performed_by, event.seq, event.ts_ms
        if self.grants.covering(ds, user_id, seq) is None:
            lost = self.grants.lost(ds, user_id, seq, int(ts - self._revocation_ms))
            if lost is not None and lost.revoked_seq != pair.lost_seq:
                pair.lost_seq = lost.revoked_seq or 0
                self._after_revocation(event, lost)
        self._burst_by_user(event, self._user(user_id))
        self._burst_by_source(event, self._source(ds))

    def _after_revocation(self, event: TrailEvent, lost: GrantSpan) -> None:
        assert lost.revoked_seq is not None and lost.revoked_ms is not None
        how = REVOCATIONS.get(lost.revoked_kind or "", "access removed")
        if lost.via == "everyone" and lost.revoked_kind == PERMISSIONS:
            how = "everyone share removed"
        self._raise(
            Rule.ACCESS_AFTER_REVOCATION, event,
            f"{event.performed_by_username} tried {event.data_source_name} "
            f"{_ago(event.ts_ms - lost.revoked_ms)} after losing access ({how})",
            [lost.revoked_seq],
            {"revokedSeq": lost.revoked_seq, "revokedTime": format_ms(lost.revoked_ms),
             "revokedKind": lost.revoked_kind, "grantVia": lost.via,
             "reason": event.metadata.get("reason", "")},
        )  # fmt: skip

    def _burst(
        self,
        entries: list[tuple[int, int, str]],
        event: TrailEvent,
        other: str,
        *,
        count: int,
        distinct: int,
        burst_until: int,
    ) -> tuple[int, list[int] | None]:
        """Add a refusal to a sliding window; (the new end of the burst, the seqs of a burst
        that starts now or None)."""
        ts = event.ts_ms
        entries.append((ts, event.seq, other))
        cut = ts - self._refused_ms
        while entries and entries[0][0] < cut:
            entries.pop(0)
        del entries[: max(len(entries) - 4 * count, 0)]
        if ts <= burst_until:
            return int(ts + self._refused_ms), None  # the same burst goes on
        if len(entries) < count or len({entry[2] for entry in entries}) < distinct:
            return burst_until, None
        return int(ts + self._refused_ms), [entry[1] for entry in entries]

    def _burst_by_user(self, event: TrailEvent, user: UserState) -> None:
        t = self.t
        user.burst_until, seqs = self._burst(
            user.refusals, event, event.data_source_id,
            count=t.refused_user_count, distinct=1, burst_until=user.burst_until,
        )  # fmt: skip
        if seqs is None:
            return
        sources = len({entry[2] for entry in user.refusals})
        self._raise(
            Rule.REFUSED_BURST, event,
            f"{len(seqs)} refused attempts by {event.performed_by_username} within "
            f"{t.refused_window_minutes:g} minutes ({sources} data sources)",
            seqs, {"by": "user", "count": len(seqs), "dataSources": sources,
                   "windowMinutes": t.refused_window_minutes},
            scope=f"user:{event.performed_by}",
        )  # fmt: skip

    def _burst_by_source(self, event: TrailEvent, source: SourceState) -> None:
        t = self.t
        source.burst_until, seqs = self._burst(
            source.refusals, event, event.performed_by,
            count=t.refused_source_count, distinct=t.refused_source_users,
            burst_until=source.burst_until,
        )  # fmt: skip
        if seqs is None:
            return
        users = len({entry[2] for entry in source.refusals})
        self._raise(
            Rule.REFUSED_BURST, event,
            f"{len(seqs)} refused attempts on {event.data_source_name} by {users} users within "
            f"{t.refused_window_minutes:g} minutes",
            seqs, {"by": "dataSource", "count": len(seqs), "users": users,
                   "windowMinutes": t.refused_window_minutes},
            scope=f"dataSource:{event.data_source_id}", user=("", ""),
        )  # fmt: skip

    # -- changes of data sources -------------------------------------------------------------

    def _created(self, event: TrailEvent) -> None:
        source = self._source(event.data_source_id)
        source.created_ms = event.ts_ms
        source.grants_recorded = "ownerId" in event.metadata
        if not source.grants_recorded:
            self.history.before_grants = True
        source.credential_type = event.metadata.get("credentialType", "")
        source.is_everyone = event.metadata.get("isEveryone") == "true"
        if source.is_everyone:
            self._everyone(event, source, "created visible to everyone")

    def _permissions(self, event: TrailEvent) -> None:
        source = self._source(event.data_source_id)
        everyone = event.metadata.get("isEveryone") == "true"
        if everyone and not source.is_everyone:
            self._everyone(event, source, "made visible to everyone")
        source.is_everyone = everyone

    def _everyone(self, event: TrailEvent, source: SourceState, what: str) -> None:
        flagged = self.t.everyone_credential_types
        if source.credential_type and source.credential_type not in flagged:
            return
        credential = source.credential_type or "unknown"
        self._raise(
            Rule.EVERYONE_SHARE, event,
            f"{event.data_source_name} ({credential} credentials) {what} by {event.performed_by_username}",
            [], {"credentialType": credential, "eventKind": event.event_kind},
        )  # fmt: skip

    def _ownership(self, event: TrailEvent) -> None:
        source = self._source(event.data_source_id)
        source.transfer_seq, source.transfer_ms = event.seq, event.ts_ms
        source.transfer_from = event.metadata.get("previousOwnerId", "")
        source.transfer_to = event.metadata.get("newOwnerId", "")

    def _deleted(self, event: TrailEvent) -> None:
        source = self._source(event.data_source_id)
        if source.transfer_seq and event.ts_ms - source.transfer_ms <= self._transfer_ms:
            self._raise(
                Rule.TRANSFER_THEN_DELETE, event,
                f"{event.data_source_name} deleted by {event.performed_by_username} "
                f"{_ago(event.ts_ms - source.transfer_ms)} after its ownership was transferred",
                [source.transfer_seq],
                {"transferSeq": source.transfer_seq, "previousOwnerId": source.transfer_from,
                 "newOwnerId": source.transfer_to,
                 "minutesBetween": (event.ts_ms - source.transfer_ms) // MINUTE_MS},
            )  # fmt: skip
        source.transfer_seq, source.transfer_ms = 0, -1
