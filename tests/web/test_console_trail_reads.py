"""The console's reads of the trail are in the trail (``AuditTrailRead``, surface ``console``),
on both databases: the trail page, one event, the files, a data source's own trail; refusals
recorded, bad filters and name suggestions not; a read that cannot be recorded shows nothing."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

from dstrail.context import Dstrail
from dstrail.domain.timestamps import DAY_MS, format_ms
from dstrail.domain.trail import EventKind
from dstrail.web.filters import DEFAULT_KINDS
from tests.api.test_trail_reads import one_read, reads, recording_refused
from tests.support import Login, SettableClock, audit_count
from tests.web.support import access, create_ds, sign_in

SEQS = re.compile(r'data-seq="(\d+)"')
DATA_SOURCE_KINDS = [kind.value for kind in DEFAULT_KINDS]


def test_the_trail_page_records_each_page_shown(
    client: TestClient, dstrail: Dstrail, admin: Login, alice: Login, clock: SettableClock
) -> None:
    ds = create_ds(dstrail, alice, "page-ds", everyone=True)
    for _ in range(3):
        access(dstrail, ds, alice)
    sign_in(client, admin)
    now = clock()
    with one_read(dstrail) as found:
        page = client.get("/audit?range=24h&name=page-ds")
    assert page.status_code == 200
    shown = SEQS.findall(page.text)
    assert len(shown) == 4  # its creation and three accesses
    assert found == [
        {
            "performedByUsername": admin.user.username,
            "performedBy": admin.id,
            "surface": "console",
            "path": "/audit",
            "filter": {
                "startTime": format_ms(now - DAY_MS),
                "endTime": format_ms(now),
                "dataSourceNames": ["page-ds"],
                "eventKinds": DATA_SOURCE_KINDS,  # no kind ticked: every data source kind
                "limit": 50,
            },
            "rows": "4",
            "complete": "true",
        }
    ]
    # Reads are platform events: shown only when ticked.
    assert SEQS.findall(client.get("/audit?range=24h").text) == shown
    with one_read(dstrail) as found:
        ticked = client.get(f"/audit?range=24h&kind={EventKind.TRAIL_READ.value}")
    assert len(SEQS.findall(ticked.text)) == 2  # the two reads before this one
    assert found[0]["filter"]["eventKinds"] == [EventKind.TRAIL_READ.value]


def test_an_event_the_files_and_a_data_sources_own_trail_are_recorded_reads(
    client: TestClient, dstrail: Dstrail, admin: Login, alice: Login
) -> None:
    ds = create_ds(dstrail, alice, "files-ds", everyone=True)
    seq = access(dstrail, ds, alice)
    sign_in(client, admin)
    with one_read(dstrail) as found:
        assert client.get(f"/audit/events/{seq}").status_code == 200
    assert found[0]["path"] == f"/audit/events/{seq}"
    assert (found[0]["filter"], found[0]["rows"]) == ({"seq": seq}, "1")
    for path, file_format, rows in (
        ("/audit/export.csv?range=7d&name=files-ds", "csv", "2"),
        ("/audit/export.jsonl?range=7d&name=files-ds", "jsonl", "2"),
        ("/audit/six-months.txt", "text", "2"),
        ("/audit/six-months.json", "json", "2"),
    ):
        with one_read(dstrail) as found:
            assert client.get(path).status_code == 200
        [read] = found
        assert (read["surface"], read["path"]) == ("console", path.split("?")[0])
        assert (read["format"], read["rows"], read["complete"]) == (file_format, rows, "true")
    with one_read(dstrail) as found:
        assert client.get(f"/datasources/{ds.id}").status_code == 200
    [read] = found
    assert read["path"] == f"/datasources/{ds.id}" and read["rows"] == "2"
    assert read["filter"]["dataSourceIds"] == [ds.id] and read["filter"]["limit"] == 25
    # Its owner, who may not read the trail, sees the page without its trail: no read.
    sign_in(client, alice)
    before = audit_count(dstrail)
    assert client.get(f"/datasources/{ds.id}").status_code == 200
    assert audit_count(dstrail) == before


def test_refused_pages_are_recorded_bad_filters_and_suggestions_are_not(
    client: TestClient, dstrail: Dstrail, admin: Login, alice: Login
) -> None:
    sign_in(client, alice)
    with one_read(dstrail) as found:
        assert client.get("/audit?range=30d&name=x").status_code == 403
    assert found == [
        {
            "performedByUsername": "alice",
            "performedBy": alice.id,
            "surface": "console",
            "path": "/audit",
            "filter": {"range": ["30d"], "name": ["x"]},
            "rows": "0",
            "refused": "true",
        }
    ]
    before = audit_count(dstrail)
    assert client.get("/audit/names?q=a").status_code == 403
    sign_in(client, admin)
    assert client.get("/audit/names?q=a").status_code == 200
    for bad in ("/audit?range=forever", "/audit?cursor=nonsense", "/audit/six-months.xml"):
        assert client.get(bad).status_code == 400, bad
    assert client.get("/audit/events/99999").status_code == 404
    assert audit_count(dstrail) == before


def test_a_page_that_cannot_be_recorded_shows_no_event(
    client: TestClient, dstrail: Dstrail, admin: Login, alice: Login
) -> None:
    ds = create_ds(dstrail, alice, "hidden-ds", everyone=True)
    seq = access(dstrail, ds, alice)
    sign_in(client, admin)
    with recording_refused(dstrail):
        page = client.get("/audit?range=24h")
        assert page.status_code == 503
        assert "could not be recorded" in page.text
        assert SEQS.findall(page.text) == [] and "hidden-ds" not in page.text
        detail = client.get(f"/audit/events/{seq}")
        assert detail.status_code == 503 and "hidden-ds" not in detail.text
    assert reads(dstrail) == []
