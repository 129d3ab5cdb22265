"""The workers' shared reads (``streaming.reads``) on a real store, both databases: a batch is
read once for the destinations at one cursor, a tail is read again once newer events exist,
and records are made once a format for destinations that take every event."""

from __future__ import annotations

from dataclasses import replace

from dstrail.context import Dstrail
from dstrail.domain.streams import Destination, StreamFilter, StreamFormat, StreamKind
from dstrail.streaming.reads import TrailReads
from tests.support import Login, create_dataset

WEBHOOK = Destination(
    id="d1", name="one", kind=StreamKind.WEBHOOK, format=StreamFormat.NATIVE,
    config={"url": "http://127.0.0.1:9/hook"}, filter=StreamFilter(), paused=False,
    cursor=0, generation=0, created_at_ms=0, created_by="", has_secret=True,
)  # fmt: skip


def _size(dstrail: Dstrail) -> int:
    with dstrail.store.read() as tx:
        return tx.audit.size()


def test_a_full_batch_is_read_once_for_every_destination_at_its_cursor(
    dstrail: Dstrail, alice: Login
) -> None:
    start = _size(dstrail)
    for index in range(5):
        create_dataset(dstrail, alice, f"ds-{index}")
    reads = TrailReads(dstrail.store, batch_size=3)
    first = reads.batch(start)
    assert first.full
    assert [row[7] for row in first.rows] == [start + 1, start + 2, start + 3]
    assert reads.batch(start) is first  # the next destination at that cursor: no new read
    tail = reads.batch(first.last_seq)
    assert not tail.full
    assert [row[7] for row in tail.rows] == [start + 4, start + 5]
    assert reads.head == start + 5


def test_a_tail_is_kept_while_nothing_newer_is_known_and_read_again_after(
    dstrail: Dstrail, alice: Login
) -> None:
    start = _size(dstrail)
    create_dataset(dstrail, alice, "first")
    reads = TrailReads(dstrail.store, batch_size=10)
    tail = reads.batch(start)
    assert len(tail.rows) == 1
    create_dataset(dstrail, alice, "second")
    assert reads.batch(start) is tail  # the head was not read again: nothing newer known
    assert reads.read_head() == start + 2
    again = reads.batch(start)
    assert again is not tail
    assert [row[7] for row in again.rows] == [start + 1, start + 2]


def test_records_are_made_once_a_format_and_a_filter_takes_its_own(
    dstrail: Dstrail, alice: Login
) -> None:
    start = _size(dstrail)
    create_dataset(dstrail, alice, "wanted")
    create_dataset(dstrail, alice, "other")
    reads = TrailReads(dstrail.store, batch_size=10)
    batch = reads.batch(start)
    other = replace(WEBHOOK, id="d2", name="two")
    made = reads.records(batch, WEBHOOK)
    assert reads.records(batch, other) is made
    assert [r.seq for r in made] == [start + 1, start + 2]
    cef = reads.records(batch, replace(WEBHOOK, format=StreamFormat.CEF))
    assert cef is not made and [r.seq for r in cef] == [start + 1, start + 2]
    filtered = replace(WEBHOOK, filter=StreamFilter(data_source_names=("wanted",)))
    taken = reads.records(batch, filtered)
    assert [r.seq for r in taken] == [start + 1]
    nothing = replace(WEBHOOK, filter=StreamFilter(data_source_names=("absent",)))
    assert reads.records(batch, nothing) == []
