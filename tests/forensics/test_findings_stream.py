"""A finding streams to a destination as its own record: a webhook receiver (checking every
Standard Webhooks signature) gets ``ForensicFindingRaised`` and ``ForensicFindingAcknowledged``
as OCSF Detection Findings, in trail order with the rest."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from dstrail.context import Dstrail
from dstrail.domain.users import Role
from dstrail.services import streams as stream_service
from dstrail.services.finding_answers import acknowledge_finding
from dstrail.services.streams import DestinationSpec, new_webhook_secret
from dstrail.settings import Settings
from dstrail.streaming.worker import StreamWorkers
from tests.forensics.findings_scenes import START_MS, Scene, rules_settings
from tests.streaming.receivers import WebhookReceiver
from tests.streaming.test_delivery import FAST, real_clock
from tests.streaming.test_ocsf import check_ocsf
from tests.support import SettableClock


@pytest.fixture
def clock() -> SettableClock:
    return SettableClock(START_MS)


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return rules_settings(database_url, tmp_path)


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    started = WebhookReceiver(secret=new_webhook_secret()).start()
    yield started
    started.stop()


def test_findings_reach_a_webhook_as_detection_findings(
    dstrail: Dstrail, clock: SettableClock, receiver: WebhookReceiver
) -> None:
    scene = Scene(dstrail, clock)
    admin, alice = scene.user("root", Role.SYS_ADMIN), scene.user("alice")
    with dstrail.store.write() as tx:
        stream_service.add_destination(
            tx, dstrail.vault, actor=admin.user, now_ms=clock(),
            spec=DestinationSpec(
                name="siem", kind="webhook", format="ocsf", config={"url": receiver.url},
                secret=receiver.secret, event_kinds=("ForensicFindingRaised",
                                                     "ForensicFindingAcknowledged"),
            ),
        )  # fmt: skip
    scene.dataset(alice, "open", everyone=True)
    (view,) = scene.views()  # the follower raised it
    acknowledge_finding(scene.follower, view.finding.id, actor=alice.user, note="on purpose",
                        now_ms=clock())  # fmt: skip
    workers = StreamWorkers(dstrail.store, dstrail.vault, clock=real_clock, settings=FAST)
    workers.start()
    try:
        raised, acknowledged = receiver.wait_for(2)
        time.sleep(0.2)
    finally:
        workers.stop()
    assert receiver.rejected == 0
    assert len(receiver.records()) == 2
    for record in (raised, acknowledged):
        check_ocsf(record)
        assert record["class_uid"] == 2004
        assert record["finding_info"]["uid"] == view.finding.id
        assert record["severity"] == "Medium"
    assert raised["metadata"]["sequence"] == view.raised_seq
    assert (raised["activity_name"], raised["status"]) == ("Create", "New")
    assert raised["finding_info"]["types"] == ["everyoneShare"]
    assert raised["resources"] == [
        {"uid": view.finding.data_source_id, "name": "open", "type": "Data Source"}
    ]
    assert (acknowledged["activity_name"], acknowledged["comment"]) == ("Update", "on purpose")
    assert acknowledged["unmapped"]["actor"]["user"] == {"uid": alice.id, "name": "alice"}
