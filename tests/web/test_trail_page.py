"""The trail page over the ASGI app, on SQLite and PostgreSQL: query words and the form give the
same view; names, users, projects and runs found letter case ignored, a miss warned about (the
page still answers); a data source id filter; where a page sits ("51-100 of 131") and pages that
keep a moving window; the live view's endpoint and the reads it records; an invalid custom range
that keeps the last view; the chart's buckets and its table."""

from __future__ import annotations

import html
import itertools
import re
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from fastapi.testclient import TestClient

from dstrail.context import Dstrail
from dstrail.domain.timestamps import DAY_MS, format_ms
from dstrail.domain.trail import EventKind
from dstrail.domain.users import Role
from dstrail.services import datasources as ds_service
from dstrail.web.chart import bucket_bounds, choose_scale
from tests.api.test_trail_reads import one_read, reads
from tests.support import Login, SettableClock, audit_count, make_user
from tests.web.support import access, create_ds, project_and_run, sign_in

SEQS = re.compile(r'data-seq="(\d+)"')
HOUR = 3_600_000


def _seqs(text: str) -> list[int]:
    return [int(s) for s in SEQS.findall(text)]


def _page(client: TestClient, query: str, status: int = 200) -> str:
    response = client.get(f"/audit?{query}")
    assert response.status_code == status, response.text[-2000:]
    return response.text


def _attribute(text: str, element_id: str, name: str) -> str | None:
    tag = re.search(rf'<[^>]*\bid="{element_id}"[^>]*>', text)
    assert tag, f"no element #{element_id}"
    found = re.search(rf'\b{name}="([^"]*)"', tag.group(0))
    return html.unescape(found.group(1)) if found else None


def _link(text: str, element_id: str) -> str:
    href = _attribute(text, element_id, "href")
    assert href, f"#{element_id} has no link"
    return href


def _position(text: str) -> str:
    found = re.search(r'<p id="position"[^>]*>(.*?)</p>', text, re.DOTALL)
    assert found
    return " ".join(re.sub(r"<[^>]+>", "", found.group(1)).split())


def _notice(text: str, element_id: str) -> str:
    """The text of the messages the element's ``aria-describedby`` names."""
    described = _attribute(text, element_id, "aria-describedby") or ""
    said = []
    for notice_id in described.split():
        found = re.search(rf'id="{notice_id}"[^>]*>(.*?)</p>', text, re.DOTALL)
        if found:
            said.append(" ".join(html.unescape(re.sub(r"<[^>]+>", "", found.group(1))).split()))
    return " | ".join(said)


# -- query words and the form -------------------------------------------------------------------


def test_query_words_and_the_form_give_the_same_view(
    client: TestClient, dstrail: Dstrail, admin: Login, alice: Login, bob: Login
) -> None:
    s3 = create_ds(dstrail, alice, "s3-reports", everyone=True)
    lake = create_ds(dstrail, alice, "Lake-DS", everyone=True)
    _, run = project_and_run(dstrail, alice, "churn model")
    in_run = access(dstrail, s3, alice, run, operation="objectKey", objectKey="reports/q1.csv")
    other_key = access(dstrail, s3, bob, operation="objectKey", objectKey="raw/x.csv")
    lake_access = access(dstrail, lake, bob)
    sign_in(client, admin)

    def both(words: str, form: dict[str, str | list[str]]) -> list[int]:
        from_words = _seqs(_page(client, urlencode({"range": "24h", "q": words})))
        from_form = _seqs(_page(client, urlencode({"range": "24h", **form}, doseq=True)))
        assert from_words == from_form, (words, form)
        return from_words

    assert both("kind:accessdatasource", {"kind": "AccessDataSource"}) == [
        lake_access, other_key, in_run,
    ]  # fmt: skip
    assert both("name:s3-*", {"name": "s3-*"}) == [other_key, in_run, s3_created(dstrail, s3.id)]
    assert both("key:REPORTS/*", {"key": "reports/*"}) == [in_run]
    assert both(f"run:{run.id[:8]}", {"run": run.id[:8]}) == [in_run]
    assert both('project:"Churn Model"', {"project": "churn model"}) == [in_run]
    assert both("user:BOB kind:AccessDataSource", {"user": "bob", "kind": "AccessDataSource"}) == [
        lake_access, other_key,
    ]  # fmt: skip
    assert both(f"ds:{lake.id}", {"ds": lake.id}) == [lake_access, s3_created(dstrail, lake.id)]
    assert both("lake", {"name": "lake"}) == [lake_access, s3_created(dstrail, lake.id)]
    # The box shows the words of the filter, whichever way it was given.
    page = _page(client, urlencode({"range": "24h", "name": "s3-*", "user": "bob", "key": "raw/*"}))
    assert _attribute(page, "q", "value") == "name:s3-* user:bob key:raw/*"
    spaced = _page(client, urlencode({"range": "24h", "project": "churn model"}))
    assert _attribute(spaced, "q", "value") == "project:'churn model'"
    assert _seqs(_page(client, urlencode({"q": _attribute(spaced, "q", "value")}))) == [in_run]
    # What a typed name stood for is said.
    part = _page(client, "range=24h&name=lake")
    assert "“lake” stands for the names that contain it: Lake-DS" in html.unescape(part)


def s3_created(dstrail: Dstrail, data_source_id: str) -> int:
    """The sequence number of the data source's CreateDataSource event."""
    with dstrail.store.read() as tx:
        for seq in range(1, tx.audit.size() + 1):
            event = tx.audit.by_sequence(seq)
            if event and event.data_source_id == data_source_id:
                return seq
    raise AssertionError("no creation")


def test_words_that_are_not_filters_are_marked_and_say_what_is_accepted(
    client: TestClient, dstrail: Dstrail, admin: Login
) -> None:
    sign_in(client, admin)
    before = audit_count(dstrail)
    for words, said in (
        ("colour:red", "“colour:red” is not a filter word; accepted: kind:, name:, ds:"),
        ("kind:Nope", "Event kind: “Nope” is not one"),
        ("ds:abc", "Data source id: “abc” is not an id"),
        ("run:zz", "Run: “zz” is not a run id nor its first characters"),
        ('project:"open', "a quote is not closed"),
    ):
        page = _page(client, urlencode({"q": words}), status=400)
        assert said in _notice(page, "q"), words
    bad_kind = _page(client, "kind=Nope", status=400)
    assert _attribute(bad_kind, "kinds", "aria-invalid") == "true"
    assert audit_count(dstrail) == before  # nothing was read, so nothing was recorded


def test_a_name_user_or_project_that_matches_nothing_is_a_warning_on_its_field(
    client: TestClient, dstrail: Dstrail, admin: Login, alice: Login
) -> None:
    known = create_ds(dstrail, alice, "known-ds", everyone=True)
    seen = access(dstrail, known, alice)
    project_and_run(dstrail, alice, "churn")
    sign_in(client, admin)
    mixed = _page(client, "range=24h&name=known-ds,knwn-ds,nothing-like-it")
    assert seen in _seqs(mixed)
    said = _notice(mixed, "name")
    assert (
        "No data source has ever been named “knwn-ds”" in said and "Did you mean known-ds" in said
    )
    assert "No data source has ever been named “nothing-like-it”" in said
    suggestion = re.search(r'<a href="(/audit\?[^"]+)">known-ds</a>', mixed)
    assert suggestion and "knwn-ds" not in html.unescape(suggestion.group(1))
    for query, field, said in (
        ("user=alcie", "user", "No user is named “alcie” or has that id. Did you mean alice?"),
        ("project=crunch", "project", "No project is named “crunch” or has that id."),
        (f"run={'ab' * 12}", "run", "No run has an id that is or starts with"),
        ("name=nothing-like-it", "name", "No data source has ever been named"),
    ):
        before = audit_count(dstrail)
        page = _page(client, f"range=24h&{query}")  # the page answers: no event can match
        assert _seqs(page) == [] and 'id="empty"' in page
        assert said in _notice(page, field), query
        assert said in _notice(page, "q")
        assert audit_count(dstrail) == before  # nothing could match: nothing was read


def test_a_data_source_id_shows_only_that_data_sources_events(
    client: TestClient, dstrail: Dstrail, clock: SettableClock, admin: Login
) -> None:
    first = create_ds(dstrail, admin, "reused")
    first_access = access(dstrail, first, admin)
    with dstrail.store.write() as tx:
        ds_service.delete_data_source(tx, data_source_id=first.id, actor=admin.user, now_ms=clock())
    clock.advance(1000)
    second = create_ds(dstrail, admin, "reused")
    second_access = access(dstrail, second, admin)
    sign_in(client, admin)
    assert len(_seqs(_page(client, "range=24h&name=reused"))) == 5
    detail = client.get(f"/datasources/{second.id}").text
    link = _link(detail, "open-in-trail")
    assert parse_qs(urlsplit(link).query) == {"range": ["6mo"], "ds": [second.id]}
    own = client.get(link).text
    assert second_access in _seqs(own) and first_access not in _seqs(own)
    assert len(_seqs(own)) == 2
    assert "only its events are shown" in _notice(own, "ds")
    with one_read(dstrail) as found:
        client.get(f"/audit?range=24h&ds={first.id}")
    assert found[0]["filter"]["dataSourceIds"] == [first.id] and found[0]["rows"] == "3"


# -- pages ----------------------------------------------------------------------------------------


def test_pages_say_where_they_are_and_keep_the_window_moving(
    client: TestClient, dstrail: Dstrail, clock: SettableClock, admin: Login
) -> None:
    ds = create_ds(dstrail, admin, "busy-ds")
    for _ in range(130):
        clock.advance(1000)
        access(dstrail, ds, admin)
    sign_in(client, admin)
    first = _page(client, "range=24h")
    assert _position(first) == "1-50 of 131" and 'id="newer"' not in first
    older = _link(first, "older")
    assert parse_qs(urlsplit(older).query)["range"] == ["24h"]
    assert "start" not in parse_qs(urlsplit(older).query)  # the preset stays a preset
    second = client.get(older).text
    assert _position(second) == "51-100 of 131" and max(_seqs(second)) < min(_seqs(first))
    assert parse_qs(urlsplit(_link(second, "newest")).query) == {"range": ["24h"]}
    assert _seqs(client.get(_link(second, "newer")).text) == _seqs(first)
    last = client.get(_link(first, "oldest")).text
    assert _position(last) == "82-131 of 131" and 'id="older"' not in last
    assert _seqs(last)[-1] == s3_created(dstrail, ds.id)
    # The window moves: an hour later, new events are counted and the same link still pages.
    clock.advance(HOUR)
    for _ in range(3):
        access(dstrail, ds, admin)
    again = client.get(older).text
    assert _position(again) == "54-103 of 134" and _seqs(again) == _seqs(second)
    newest = client.get(_link(again, "newest")).text
    assert _position(newest) == "1-50 of 134"
    # Oldest first, other page sizes.
    everything = _seqs(_page(client, "range=24h&order=oldest&size=200"))
    assert len(everything) == 134 and everything == sorted(everything)
    oldest_first = _page(client, "range=24h&order=oldest&size=25")
    assert _seqs(oldest_first) == everything[:25] and _position(oldest_first) == "1-25 of 134"
    following = client.get(_link(oldest_first, "newer")).text
    assert _seqs(following) == everything[25:50] and _position(following) == "26-50 of 134"
    assert len(_seqs(_page(client, "range=24h&size=100"))) == 100
    wrong = _page(client, "range=24h&size=7", status=400)
    assert "Events a page: 25, 50, 100, 200" in _notice(wrong, "q")


def test_columns_are_chosen_in_the_url(
    client: TestClient, dstrail: Dstrail, admin: Login, alice: Login
) -> None:
    ds = create_ds(dstrail, alice, "col-ds", everyone=True)
    project, run = project_and_run(dstrail, alice, "forecast")
    access(dstrail, ds, alice, run)
    sign_in(client, admin)
    every = _page(client, "range=24h")
    for header in ("Project", "Run", "Details"):
        assert f">{header}</th>" in every
    assert f'title="project id: {project.id}">forecast<' in every
    assert f'title="run id: {run.id}">Workspace …{run.id[-8:]}<' in every
    chosen = _page(client, "range=24h&col=time&col=kind&col=project")
    assert ">Project</th>" in chosen and ">Run</th>" not in chosen and ">By</th>" not in chosen
    assert "col=project" in _link(chosen, "older" if 'id="older"' in chosen else "order-oldest")


# -- the live view --------------------------------------------------------------------------------


def test_the_live_view_hands_out_new_events_once_each_as_recorded_reads(
    client: TestClient, dstrail: Dstrail, admin: Login, alice: Login
) -> None:
    ds = create_ds(dstrail, alice, "live-ds", everyone=True)
    sign_in(client, admin)
    page = _page(client, "range=24h&live=1")
    url = _attribute(page, "trail-table", "data-live-url")
    seq = int(_attribute(page, "trail-table", "data-live-seq") or "0")
    assert url and url.startswith("/audit/live?")
    before = len(reads(dstrail))
    quiet = client.get(f"{url}&since={seq}").json()
    assert quiet == {"html": "", "rows": 0, "seq": seq} and len(reads(dstrail)) == before
    new = access(dstrail, ds, alice, operation="objectKey", objectKey="new/file.csv")
    with one_read(dstrail) as found:
        batch = client.get(f"{url}&since={seq}").json()
    assert batch["rows"] == 1 and batch["seq"] == new
    assert f'data-seq="{new}"' in batch["html"] and "new/file.csv" in batch["html"]
    assert found[0]["path"] == "/audit/live" and found[0]["rows"] == "1"
    assert found[0]["filter"]["sinceSeq"] == seq
    assert client.get(f"{url}&since={batch['seq']}").json()["rows"] == 0
    # Watching the reads: a batch of nothing but the live view's own reads waits for another.
    reads_url = f"/audit/live?range=24h&kind={EventKind.TRAIL_READ.value}"
    held = client.get(f"{reads_url}&since={new}").json()
    assert held["rows"] == 0 and held["seq"] == new
    client.get("/audit?range=24h")  # a read of the page joins it
    joined = client.get(f"{reads_url}&since={new}").json()
    assert joined["rows"] == 2
    assert client.get(f"{url}&since=x").status_code == 400


def test_the_live_view_is_refused_to_users_and_recorded(
    client: TestClient, dstrail: Dstrail, alice: Login
) -> None:
    sign_in(client, alice)
    before = len(reads(dstrail))
    assert client.get("/audit/live?range=24h&since=0").status_code == 403
    assert len(reads(dstrail)) == before + 1


# -- an invalid custom range ----------------------------------------------------------------------


def test_an_invalid_range_keeps_the_last_view_and_marks_the_field(
    client: TestClient, dstrail: Dstrail, clock: SettableClock, admin: Login, alice: Login
) -> None:
    ds = create_ds(dstrail, alice, "range-ds", everyone=True)
    seen = access(dstrail, ds, alice)
    sign_in(client, admin)
    last = urlencode({"range": "24h", "name": "range-ds"})
    shown = _page(client, last)
    assert f'name="last" value="{html.escape(last)}"' in shown
    cases = (
        (
            {"start": "yesterday"},
            "start",
            "From: “yesterday” is not a date or time; accepted: a date",
        ),
        ({"end": "2024-13-45"}, "end", "To: “2024-13-45” is not a date or time"),
        ({"start": "2024-05-02", "end": "2024-05-01"}, "start", "From is after To"),
        ({}, "start", "Custom range: give a From, a To, or both"),
    )
    for given, field, said in cases:
        query = urlencode({"range": "custom", "name": "range-ds", **given, "last": last})
        with one_read(dstrail) as found:
            page = _page(client, query, status=400)
        assert _attribute(page, field, "aria-invalid") == "true"
        message = _notice(page, field)
        assert said in message and "Link" not in message and "startTime" not in message
        assert seen in _seqs(page) and 'id="kept-last"' in page  # the last view stays
        assert found[0]["filter"]["dataSourceNames"] == ["range-ds"]
        for key, value in given.items():
            assert _attribute(page, key, "value") == value  # as typed, to correct
    before = audit_count(dstrail)
    alone = _page(client, "range=custom&start=yesterday", status=400)
    assert _seqs(alone) == [] and audit_count(dstrail) == before
    day = format_ms(clock())[:10]
    spaced = _page(client, urlencode({"range": "custom", "start": f"{day} 00:00", "end": day}))
    assert seen in _seqs(spaced)


# -- the chart ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("days", "label"),
    [
        (1 / 24, "minute"),
        (1, "15 minutes"),
        (2, "30 minutes"),
        (7, "3 hours"),
        (30, "day"),
        (183, "day"),
        (730, "week"),
        (3650, "month"),
    ],
)
def test_buckets_follow_the_window(days: float, label: str) -> None:
    end = 1_717_000_000_000
    start = end - int(days * DAY_MS)
    scale = choose_scale(start, end)
    bounds = bucket_bounds(scale, start, end)
    assert scale.label == label and len(bounds) <= 200
    assert bounds[0][0] == start and bounds[-1][1] == end
    assert all(high + 1 == low for (_, high, _), (low, _, _) in itertools.pairwise(bounds))


def test_the_chart_shows_rare_kinds_its_numbers_and_links(
    client: TestClient, dstrail: Dstrail, clock: SettableClock, admin: Login
) -> None:
    ds = create_ds(dstrail, admin, "chart-ds")
    for _ in range(40):
        clock.advance(60_000)
        access(dstrail, ds, admin)
    with dstrail.store.write() as tx:
        ds_service.delete_data_source(tx, data_source_id=ds.id, actor=admin.user, now_ms=clock())
    sign_in(client, admin)
    day = _page(client, "range=24h")
    assert "one bar per 15 minutes" in day
    assert re.search(r'class="row-label"[^>]*>DeleteDataSource<', day)  # a row of its own
    rows = re.findall(r'class="kind-row"', day)
    assert len(rows) == 3  # created, accessed, deleted
    table = re.search(r'<table class="numbers">.*?</table>', day, re.DOTALL)
    assert table and ">DeleteDataSource</th>" in table.group(0)
    assert re.search(r"<tfoot><tr><th scope=\"row\">In all</th><td>1</td><td>1</td><td>40</td><td>42</td>",
                     table.group(0))  # fmt: skip
    zoom = re.search(r'<a href="(/audit\?[^"]+)" class="zoom-link">', table.group(0))
    assert zoom
    zoomed = parse_qs(urlsplit(html.unescape(zoom.group(1))).query)
    assert zoomed["range"] == ["custom"] and "live" not in zoomed
    zoomed_page = client.get(html.unescape(zoom.group(1))).text
    assert 0 < len(_seqs(zoomed_page)) < 42
    legend = re.search(r'<a class="legend" href="([^"]+)" data-kind="DeleteDataSource"', day)
    assert legend
    only = client.get(html.unescape(legend.group(1))).text
    assert len(_seqs(only)) == 1 and 'id="all-kinds"' in only
    month = _page(client, "range=30d")
    assert "one bar per day" in month and "daily rollup" in month
    years = _page(
        client, urlencode({"range": "custom", "start": "2015-01-01", "end": "2030-01-01"})
    )
    assert "one bar per month" in years and "too long" not in years
    assert '<strong id="total">42</strong>' in years


def test_an_auditor_reads_the_trail_page(client: TestClient, dstrail: Dstrail) -> None:
    officer = make_user(dstrail, "officer", Role.AUDITOR)
    sign_in(client, officer)
    page = _page(client, "q=kind:CreateDataSource")
    assert _attribute(page, "q", "value") == "kind:CreateDataSource"
