"""``dstrail audit verify``'s text report stays a screenful, however much is wrong: the first
wrong seq, the kind of damage, and a count of each kind of finding."""

from __future__ import annotations

from pathlib import Path

import pytest

from dstrail.audit.verify import verify_store
from dstrail.context import Dstrail
from dstrail.settings import Settings
from tests.audit.test_integrity_tamper import attack
from tests.support import new_event

EVENTS = 300


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    """A checkpoint every 2 events: one tampered event breaks about 150 of them."""
    return Settings(
        data_dir=tmp_path / "data", database_url=database_url, checkpoint_every_events=2
    )


@pytest.fixture
def trail(dstrail: Dstrail) -> Dstrail:
    now = dstrail.clock()
    with dstrail.store.write() as tx:
        for i in range(EVENTS):
            tx.audit.record(new_event(now - (EVENTS - i), data_source_id=f"{i:024x}"))
    return dstrail


def _report(dstrail: Dstrail) -> list[str]:
    report = verify_store(dstrail.store, public_key=dstrail.signer.public_raw)
    assert not report.ok
    return report.text().splitlines()


def test_one_tampered_event_is_a_few_lines(trail: Dstrail) -> None:
    attack(trail, "UPDATE audit_events SET data_source_name = 'innocent' WHERE seq = 5")
    lines = _report(trail)
    assert len(lines) <= 6, "\n".join(lines)
    assert lines[1].startswith("FAILED: first wrong seq 5: event-modified")
    assert lines[2].startswith("found: ") and "1 event-modified" in lines[2]
    assert "checkpoint-root-mismatch" in lines[2]


def test_every_event_tampered_is_still_a_screenful(trail: Dstrail) -> None:
    attack(trail, "UPDATE audit_events SET data_source_name = 'innocent'")
    lines = _report(trail)
    assert len(lines) <= 12, "\n".join(lines)
    assert f"{EVENTS} event-modified" in lines[2]
    assert any(line.startswith(f"  ... and {EVENTS - 5} more events") for line in lines)
