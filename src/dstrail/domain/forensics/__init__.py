"""Forensics from the trail alone, pure code:

- ``events``: a trail event as the follower reads it (``TrailEvent``);
- ``entitlements``: what each event does to the grants of its data source, and the
  ``Ledger`` that turns events into grant intervals by seq;
- ``timeline``: the entries of a user's, a run's or a data source's timeline;
- ``queries``: the questions, parsed from what the caller gave.
"""

from dstrail.domain.forensics.entitlements import (
    GRANTING_KINDS,
    USE_VIAS,
    USER_KINDS,
    DataSourceRecord,
    EventRef,
    Grant,
    Ledger,
    Reach,
    Status,
    UserDataSource,
    UserRecord,
    Via,
)
from dstrail.domain.forensics.events import FINDING_KIND_PREFIX, TrailEvent, split_ids
from dstrail.domain.forensics.timeline import (
    Category,
    SubjectKind,
    TimelineEntry,
    TimelinePage,
    TimelineSubject,
)

__all__ = [
    "FINDING_KIND_PREFIX",
    "GRANTING_KINDS",
    "USER_KINDS",
    "USE_VIAS",
    "Category",
    "DataSourceRecord",
    "EventRef",
    "Grant",
    "Ledger",
    "Reach",
    "Status",
    "SubjectKind",
    "TimelineEntry",
    "TimelinePage",
    "TimelineSubject",
    "TrailEvent",
    "UserDataSource",
    "UserRecord",
    "Via",
    "split_ids",
]
