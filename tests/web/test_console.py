"""The console over the ASGI app, on SQLite and PostgreSQL: sign-in, CSRF, roles, filters,
paging, event detail, downloads and every management action."""

from __future__ import annotations

import csv
import html
import io
import json
import re

from fastapi.testclient import TestClient

from dstrail.context import Dstrail
from dstrail.domain.timestamps import DAY_MS, format_ms
from tests.support import Login, SettableClock, audit_count
from tests.web.support import access, create_ds, csrf_of, project_and_run, sign_in

SEQS = re.compile(r'data-seq="(\d+)"')


def _seqs(html: str) -> list[int]:
    return [int(s) for s in SEQS.findall(html)]


# -- sign-in, session, CSRF ---------------------------------------------------------------------


def test_pages_need_a_session_and_sign_in_sets_a_safe_cookie(
    client: TestClient, admin: Login
) -> None:
    response = client.get("/audit?range=7d", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/signin?next=%2Faudit%3Frange%3D7d"
    form = client.get("/signin")
    assert form.status_code == 200 and 'name="api_key"' in form.text
    signed = client.post(
        "/signin",
        data={"csrf_token": csrf_of(form.text), "api_key": admin.api_key, "next": "/audit"},
        follow_redirects=False,
    )
    assert signed.status_code == 303 and signed.headers["location"] == "/audit"
    cookie = signed.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=lax" in cookie
    assert admin.api_key.lower() not in cookie
    assert client.get("/audit").status_code == 200
    home = client.get("/", follow_redirects=False)
    assert home.headers["location"] == "/audit"


def test_a_wrong_key_is_refused_and_next_cannot_leave_the_site(
    client: TestClient, admin: Login
) -> None:
    form = client.get("/signin")
    wrong = client.post(
        "/signin", data={"csrf_token": csrf_of(form.text), "api_key": "dstrail_nope"}
    )
    assert wrong.status_code == 401
    assert "That API key is not valid" in wrong.text
    assert client.get("/audit", follow_redirects=False).status_code == 303
    offsite = client.post(
        "/signin",
        data={
            "csrf_token": csrf_of(form.text),
            "api_key": admin.api_key,
            "next": "//evil.example/",
        },
        follow_redirects=False,
    )
    assert offsite.headers["location"] == "/"


def test_forms_without_the_session_token_are_refused(
    client: TestClient, dstrail: Dstrail, admin: Login
) -> None:
    no_session = client.post("/signin", data={"api_key": admin.api_key})
    assert no_session.status_code == 403
    assert "did not come from this console" in no_session.text
    sign_in(client, admin)
    before = audit_count(dstrail)
    body = {"name": "x-ds", "data_source_type": "S3Config", "auth_type": "AWSIAMBasic"}
    forged = client.post("/datasources/new", data={**body, "csrf_token": "forged"})
    assert forged.status_code == 403
    assert "Traceback" not in forged.text and "<h1>Not allowed</h1>" in forged.text
    assert client.post("/datasources/new", data=body).status_code == 403
    assert audit_count(dstrail) == before


def test_sign_out_ends_the_session(client: TestClient, admin: Login) -> None:
    token = sign_in(client, admin)
    out = client.post("/signout", data={"csrf_token": token}, follow_redirects=False)
    assert out.status_code == 303 and out.headers["location"] == "/signin"
    assert client.get("/audit", follow_redirects=False).status_code == 303


# -- roles --------------------------------------------------------------------------------------


def test_users_never_see_the_trail_and_only_their_data_sources(
    client: TestClient, dstrail: Dstrail, admin: Login, alice: Login, bob: Login
) -> None:
    create_ds(dstrail, alice, "alice-ds")
    bobs = create_ds(dstrail, bob, "bob-ds")
    shared = create_ds(dstrail, bob, "shared-ds", users=(alice.id,))
    sign_in(client, alice)
    assert client.get("/", follow_redirects=False).headers["location"] == "/datasources"
    for path in (
        "/audit",
        "/audit/export.csv",
        "/audit/export.jsonl",
        "/audit/six-months.txt",
        "/audit/names?q=b",
        "/audit/events/1",
    ):
        refused = client.get(path)
        assert refused.status_code == 403, path
        assert "requires the SysAdmin or the Auditor role" in refused.text
    listing = client.get("/datasources").text
    assert "alice-ds" in listing and "shared-ds" in listing and "bob-ds" not in listing
    assert ">Audit trail<" not in listing
    assert client.get(f"/datasources/{bobs.id}").status_code == 404
    shared_page = client.get(f"/datasources/{shared.id}").text
    assert "Its trail" not in shared_page and 'id="permissions-form"' not in shared_page
    sign_in(client, admin)
    listing = client.get("/datasources").text
    assert all(name in listing for name in ("alice-ds", "bob-ds", "shared-ds"))


# -- the trail: filters, paging, detail ---------------------------------------------------------


def test_every_filter_narrows_the_view(
    client: TestClient, dstrail: Dstrail, clock: SettableClock, admin: Login, alice: Login
) -> None:
    clock.advance(-20 * DAY_MS)
    old = create_ds(dstrail, alice, "old-ds", everyone=True)
    clock.advance(19 * DAY_MS)
    s3 = create_ds(dstrail, alice, "s3-ds", everyone=True)
    project, run = project_and_run(dstrail, alice, "churn")
    in_run = access(dstrail, s3, alice, run)
    by_admin = access(dstrail, old, admin)
    clock.advance(2 * DAY_MS)
    sign_in(client, admin)

    def seqs(query: str) -> list[int]:
        response = client.get(f"/audit?{query}")
        assert response.status_code == 200, response.text
        return _seqs(response.text)

    everything_7d = seqs("range=7d")
    assert len(everything_7d) == 3 and everything_7d[0] == by_admin
    assert len(seqs("range=30d")) == 4
    assert seqs("range=24h") == []
    assert seqs("range=6mo") == seqs("range=30d")
    assert seqs("range=7d&name=old-ds") == [by_admin]
    assert seqs("range=30d&name=old-ds,s3-ds") == seqs("range=30d")
    assert seqs("range=7d&kind=CreateDataSource") == [everything_7d[2]]
    assert seqs("range=7d&user=sample-admin") == [by_admin]
    assert seqs(f"range=7d&user={alice.id}") == everything_7d[1:]
    assert seqs("range=7d&project=churn") == [in_run]
    assert seqs(f"range=7d&project={project.id}") == [in_run]
    assert seqs(f"range=7d&run={run.id}") == [in_run]
    start = format_ms(clock.now_ms - 21 * DAY_MS)
    end = format_ms(clock.now_ms - 10 * DAY_MS)
    assert len(seqs(f"range=custom&start={start}&end={end}")) == 1
    assert len(seqs(f"start={start[:10]}")) == 4
    bad = client.get("/audit?range=custom&start=yesterday")
    assert bad.status_code == 400 and "From: “yesterday” is not a date or time" in bad.text
    unknown = client.get("/audit?user=nobody")
    assert unknown.status_code == 200 and "No user is named “nobody”" in unknown.text
    assert _seqs(unknown.text) == []
    page = client.get("/audit?range=7d&name=old-ds").text
    assert 'value="old-ds"' in page
    form = re.search(r'<form [^>]*id="export-form">(.*?)</form>', page, re.S)
    assert form and 'id="download-csv" formaction="/audit/export.csv"' in form.group(1)
    fields = re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', form.group(1))
    assert ("range", "custom") in fields and ("name", "old-ds") in fields  # the window pinned
    pinned = client.get("/audit/export.csv", params=[(k, html.unescape(v)) for k, v in fields])
    assert len(list(csv.DictReader(io.StringIO(pinned.text)))) == 1


def test_paging_follows_a_cursor_without_gaps_or_repeats(
    client: TestClient, dstrail: Dstrail, clock: SettableClock, admin: Login
) -> None:
    ds = create_ds(dstrail, admin, "busy-ds")
    for _ in range(64):
        clock.advance(1000)
        access(dstrail, ds, admin)
    sign_in(client, admin)
    first = client.get("/audit?range=24h").text
    seen = _seqs(first)
    assert len(seen) == 50 and seen == sorted(seen, reverse=True)
    older = re.search(r'href="(/audit\?[^"]*cursor=[^"]+)"', first)
    assert older
    second = client.get(older.group(1).replace("&amp;", "&")).text
    rest = _seqs(second)
    assert len(rest) == 15 and max(rest) < min(seen)
    assert 'id="older"' not in second and 'id="newest"' in second
    assert client.get("/audit?cursor=nonsense").status_code == 400


def test_event_detail_shows_every_field_and_the_metadata(
    client: TestClient, dstrail: Dstrail, admin: Login, alice: Login
) -> None:
    ds = create_ds(dstrail, alice, "detail-ds", everyone=True)
    _, run = project_and_run(dstrail, alice, "p1")
    seq = access(dstrail, ds, alice, run, operation="objectKey", objectKey="a/b.csv")
    sign_in(client, admin)
    page = client.get(f"/audit/events/{seq}")
    assert page.status_code == 200
    for text in ("AccessDataSource", "detail-ds", ds.id, "a/b.csv", run.id, "runType", "alice"):
        assert text in page.text
    assert "<time datetime=" in page.text
    missing = client.get("/audit/events/99999")
    assert missing.status_code == 404 and "no event with sequence number" in missing.text


def test_name_suggestions_include_deleted_data_sources(
    client: TestClient, dstrail: Dstrail, admin: Login
) -> None:
    gone = create_ds(dstrail, admin, "snow-old")
    create_ds(dstrail, admin, "snow-new")
    create_ds(dstrail, admin, "other")
    token = sign_in(client, admin)
    client.post(
        f"/datasources/{gone.id}/delete", data={"csrf_token": token, "confirm_name": "snow-old"}
    )
    assert client.get("/audit/names?q=snow").json() == ["snow-new", "snow-old"]
    assert client.get("/audit/names?q=other,%20sn").json() == ["snow-new", "snow-old"]


def test_the_chart_counts_exactly_the_view(
    client: TestClient, dstrail: Dstrail, clock: SettableClock, admin: Login
) -> None:
    a = create_ds(dstrail, admin, "a-ds")
    b = create_ds(dstrail, admin, "b-ds")
    for ds in (a, a, b):
        clock.advance(60_000)
        access(dstrail, ds, admin)
    sign_in(client, admin)
    whole = client.get("/audit?range=7d").text
    assert '<strong id="total">5</strong>' in whole and "<svg" in whole
    narrowed = client.get("/audit?range=7d&name=a-ds").text
    assert '<strong id="total">3</strong>' in narrowed
    assert "AccessDataSource 2" in narrowed


# -- downloads ----------------------------------------------------------------------------------


def test_downloads_are_exactly_the_filtered_view(
    client: TestClient, dstrail: Dstrail, admin: Login
) -> None:
    keep = create_ds(dstrail, admin, "keep-ds")
    other = create_ds(dstrail, admin, "other-ds")
    access(dstrail, keep, admin, objectKey="=HYPERLINK(1)")
    access(dstrail, other, admin)
    sign_in(client, admin)
    response = client.get("/audit/export.csv?range=7d&name=keep-ds")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert "attachment" in response.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert [r["eventKind"] for r in rows] == ["AccessDataSource", "CreateDataSource"]
    assert {r["dataSourceName"] for r in rows} == {"keep-ds"}
    lines = client.get("/audit/export.jsonl?range=7d&kind=AccessDataSource").text.splitlines()
    events = [json.loads(line) for line in lines]
    assert [e["dataSourceName"] for e in events] == ["other-ds", "keep-ds"]
    assert events[1]["metadata"]["objectKey"] == "=HYPERLINK(1)"
    text = client.get("/audit/six-months.txt")
    assert text.headers["content-type"].startswith("text/plain")
    assert len(text.text.splitlines()) == 4 and "dataSource=keep-ds" in text.text
    as_json = client.get("/audit/six-months.json").json()
    assert len(as_json) == 4 and set(as_json[0]) >= {"eventKind", "timestamp", "metadata"}
    assert client.get("/audit/six-months.xml").status_code == 400


# -- management ---------------------------------------------------------------------------------


def _kinds_since(dstrail: Dstrail, before: int) -> list[str]:
    with dstrail.store.read() as tx:
        return [
            row[3]
            for seq in range(before + 1, tx.audit.size() + 1)
            if (row := tx.audit.by_sequence(seq))
        ]


def test_each_action_records_its_event_once(
    client: TestClient, dstrail: Dstrail, admin: Login, alice: Login, bob: Login
) -> None:
    project, _ = project_and_run(dstrail, alice, "analytics")
    token = sign_in(client, alice)

    def post(path: str, data: dict[str, object]) -> str:
        before = audit_count(dstrail)
        response = client.post(path, data={"csrf_token": token, **data}, follow_redirects=False)
        assert response.status_code == 303, response.text
        kinds = _kinds_since(dstrail, before)
        assert len(kinds) == 1, kinds
        return kinds[0]

    def confirmed(path: str, data: dict[str, object]) -> str:
        """Post, see the confirmation page (nothing recorded yet), then confirm it."""
        before = audit_count(dstrail)
        asked = client.post(path, data={"csrf_token": token, **data})
        assert asked.status_code == 200 and 'name="confirm" value="yes"' in asked.text
        assert audit_count(dstrail) == before
        form = asked.text.split('class="actions-form"', 1)[1].split("</form>", 1)[0]
        fields: dict[str, list[str]] = {}
        for name, value in re.findall(r'type="hidden" name="([^"]+)" value="([^"]*)"', form):
            fields.setdefault(name, []).append(value)
        return post(path, {key: values for key, values in fields.items() if key != "csrf_token"})

    assert (
        post(
            "/datasources/new",
            {
                "name": "web-ds",
                "data_source_type": "S3Config",
                "auth_type": "AWSIAMBasic",
                "credential_type": "Shared",
                "config": "bucket=b\nregion=us-east-1",
                "credentials": "accessKeyID=AK\nsecretAccessKey=s3cr3t",
            },
        )
        == "CreateDataSource"
    )
    with dstrail.store.read() as tx:
        ds = tx.data_sources.active_by_name("web-ds")
    assert ds is not None and ds.config == {"bucket": "b", "region": "us-east-1"}
    page = client.get(f"/datasources/{ds.id}?done=created")
    assert "Data source created" in page.text and "s3cr3t" not in page.text
    assert (
        confirmed(f"/datasources/{ds.id}/permissions", {"user_ids": [bob.id]})
        == "DataSourceChangeOfPermissions"
    )
    assert (
        post(f"/datasources/{ds.id}/projects", {"project_id": project.id})
        == "DataSourceAssociatedToProject"
    )
    assert (
        confirmed(f"/datasources/{ds.id}/projects/{project.id}/detach", {})
        == "DataSourceDissociatedFromProject"
    )
    assert (
        confirmed(f"/datasources/{ds.id}/transfer", {"new_owner_id": bob.id})
        == "DataSourceChangeOfOwnership"
    )
    refused = client.post(
        f"/datasources/{ds.id}/delete", data={"csrf_token": token, "confirm_name": "web-ds"}
    )
    assert refused.status_code == 404 and "no data source with id" in refused.text
    token = sign_in(client, bob)
    assert "Delete web-ds?" in client.get(f"/datasources/{ds.id}/delete").text
    wrong = client.post(
        f"/datasources/{ds.id}/delete", data={"csrf_token": token, "confirm_name": "nope"}
    )
    assert wrong.status_code == 400 and "exactly to confirm" in wrong.text
    assert post(f"/datasources/{ds.id}/delete", {"confirm_name": "web-ds"}) == "DeleteDataSource"
    sign_in(client, admin)
    trail = client.get(f"/datasources/{ds.id}").text
    assert trail.count("data-seq=") == 6


def test_invalid_create_shows_the_form_again_with_the_reason(
    client: TestClient, dstrail: Dstrail, admin: Login
) -> None:
    token = sign_in(client, admin)
    before = audit_count(dstrail)
    bad = client.post(
        "/datasources/new",
        data={
            "csrf_token": token,
            "name": "ok-name",
            "data_source_type": "S3Config",
            "auth_type": "AWSIAMBasic",
            "config": "password=x",
        },
    )
    assert bad.status_code == 400 and "looks like a credential" in bad.text
    assert 'value="ok-name"' in bad.text
    assert audit_count(dstrail) == before


def test_errors_are_pages_and_the_api_keeps_its_json(client: TestClient, admin: Login) -> None:
    sign_in(client, admin)
    page = client.get("/no/such/page")
    assert page.status_code == 404 and page.headers["content-type"].startswith("text/html")
    assert "Traceback" not in page.text
    missing = client.get("/datasources/0123456789abcdef01234567")
    assert missing.status_code == 404 and "no data source with id" in missing.text
    api = client.get("/api/datasource/v1/audit")
    assert api.status_code == 401 and api.headers["content-type"] == "application/json"
    assert client.get("/static/console.css").status_code == 200
