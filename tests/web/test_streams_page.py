"""The console's streams page: SysAdmins see each destination's state; others are refused."""

from __future__ import annotations

from fastapi.testclient import TestClient

from dstrail.context import Dstrail
from dstrail.services import streams as stream_service
from dstrail.services.streams import DestinationSpec
from tests.support import Login, audit_count, create_dataset
from tests.web.support import sign_in


def test_admins_see_each_destination_with_its_lag_and_last_error(
    client: TestClient, dstrail: Dstrail, admin: Login, alice: Login
) -> None:
    create_dataset(dstrail, alice, "files")
    with dstrail.store.write() as tx:
        for name, url in (
            ("siem", "https://siem.example.com/hook"),
            ("bus", "https://b.example/x"),
        ):
            stream_service.add_destination(
                tx, dstrail.vault, actor=admin.user, now_ms=dstrail.clock(),
                spec=DestinationSpec(name=name, kind="webhook", config={"url": url}, from_seq=1),
            )  # fmt: skip
        stream_service.set_paused(tx, name="bus", paused=True, actor=admin.user, now_ms=1)
        stream_service.set_paused(tx, name="bus", paused=True, actor=admin.user, now_ms=1)
        siem = tx.streams.by_name("siem")
        assert siem is not None
        assert tx.streams.take_lease(siem.id, owner="w", now_ms=1, until_ms=10**15)
        tx.streams.note_error(siem.id, owner="w", error="POST answered 503: busy", now_ms=1)
    sign_in(client, admin)
    html = client.get("/streams").text
    size = audit_count(dstrail)
    siem_row = html[html.index('data-stream="siem"') :].split("</tr>")[0]
    assert "https://siem.example.com/hook" in siem_row
    assert "failing" in siem_row and "POST answered 503: busy" in siem_row
    assert f"{size} events" in siem_row
    bus_row = html[html.index('data-stream="bus"') :].split("</tr>")[0]
    assert "paused" in bus_row
    assert 'href="/streams"' in html  # in the admin's navigation

    sign_in(client, alice)
    refused = client.get("/streams")
    assert refused.status_code == 403
    assert 'href="/streams"' not in client.get("/datasources").text
