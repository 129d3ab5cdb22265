"""The trail page in headless Chromium (Debian's, driven by Playwright) against a real server,
on SQLite and PostgreSQL, as a SysAdmin and an Auditor (a User never sees it): the query box
and its suggestions, warnings linked to their fields, the column chooser, paging and page
sizes, the live view (an event committed through the services appears without a reload), the
chart's zoom (a click, a drag) and its legend, an invalid custom range. axe-core checks the
page in each state (0 violations)."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

import pytest

from dstrail.app import create_app
from dstrail.context import Dstrail, open_dstrail
from dstrail.domain.datasources import DataSource
from dstrail.domain.projects import Project, Run
from dstrail.domain.timestamps import DAY_MS
from dstrail.domain.users import Role
from dstrail.services import datasources as ds_service
from dstrail.settings import Settings
from tests.support import Login, make_user
from tests.web.browser import serving
from tests.web.support import access, create_ds, project_and_run

pytestmark = pytest.mark.browser

try:
    from playwright.sync_api import Browser, Page, expect
except ImportError:  # pragma: no cover - the dev extra installs it
    if os.environ.get("CI") == "true":
        raise
    pytest.skip("playwright is not installed", allow_module_level=True)

from tests.web.axe import check_axe  # noqa: E402 - after Playwright's import check


class ShiftedClock:
    """Real time plus an offset the setup moves into the past."""

    def __init__(self) -> None:
        self.offset_ms = 0

    def __call__(self) -> int:
        return time.time_ns() // 1_000_000 + self.offset_ms


@dataclass
class Site:
    """The served console and what the setup put in it."""

    base: str
    dstrail: Dstrail
    admin: Login
    auditor: Login
    alice: Login
    lake: DataSource
    project: Project
    run: Run


@pytest.fixture(scope="module")
def site(database: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """lake-ds with 120 accesses over the last day (half from alice's run, with object keys);
    s3-old created nine days ago, deleted six days ago."""
    data = tmp_path_factory.mktemp("trail")
    clock = ShiftedClock()
    dstrail = open_dstrail(Settings(data_dir=data, database_url=database), clock=clock)
    admin = make_user(dstrail, "root-admin", Role.SYS_ADMIN)
    auditor = make_user(dstrail, "officer", Role.AUDITOR)
    alice = make_user(dstrail, "alice")
    clock.offset_ms = -9 * DAY_MS
    old = create_ds(dstrail, admin, "s3-old", everyone=True)
    clock.offset_ms = -6 * DAY_MS
    with dstrail.store.write() as tx:
        ds_service.delete_data_source(tx, data_source_id=old.id, actor=admin.user, now_ms=clock())
    clock.offset_ms = -DAY_MS + 600_000  # ten minutes inside the last day, for the tests' time
    lake = create_ds(dstrail, alice, "lake-ds", everyone=True)
    project, run = project_and_run(dstrail, alice, "churn model")
    for i in range(120):
        clock.offset_ms = -DAY_MS + 660_000 + i * 600_000
        meta = {"operation": "objectKey", "objectKey": f"reports/{i:03d}.csv"}
        access(dstrail, lake, alice, run if i % 2 else None, **meta)
    clock.offset_ms = 0
    with serving(create_app(dstrail)) as base:
        yield Site(base, dstrail, admin, auditor, alice, lake, project, run)
    dstrail.store.dispose()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """A fresh browser context (no cookies) at desktop width."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(10_000)
    yield context.new_page()
    context.close()


READERS = ("admin", "auditor")


def sign_in(page: Page, site: Site, login: Login, path: str) -> None:
    """Sign in through the form, landing on ``path``."""
    page.goto(site.base + path)
    page.fill("#api_key", login.api_key)
    page.click("button[type=submit]")
    expect(page.locator("h1")).to_be_visible()


def reader(site: Site, role: str) -> Login:
    return site.admin if role == "admin" else site.auditor


def query(page: Page) -> dict[str, list[str]]:
    return parse_qs(urlsplit(page.url).query)


def rows(page: Page) -> int:
    return page.locator("#event-rows tr").count()


def test_a_user_has_no_trail_page(page: Page, site: Site) -> None:
    sign_in(page, site, site.alice, "/datasources")
    expect(page.locator("header nav")).not_to_contain_text("Audit trail")
    response = page.goto(site.base + "/audit?q=kind:AccessDataSource")
    assert response is not None and response.status == 403
    live = page.request.get(site.base + "/audit/live?range=24h&since=0")
    assert live.status == 403
    page.goto(f"{site.base}/datasources/{site.lake.id}")
    expect(page.locator("#open-in-trail")).to_have_count(0)


@pytest.mark.parametrize("role", READERS)
def test_the_query_box_and_the_form_give_the_same_view(page: Page, site: Site, role: str) -> None:
    sign_in(page, site, reader(site, role), "/audit?range=24h")
    expect(page.locator("#position")).to_have_text("1-50 of 121")
    check_axe(page)
    page.fill("#q", "name:la")
    expect(page.locator("#q-suggestions option").first).to_have_attribute("value", "name:lake-ds")
    page.fill("#q", "kind:acc")
    expect(page.locator("#q-suggestions option").first).to_have_attribute(
        "value", "kind:AccessDataSource"
    )
    page.fill("#q", f'name:LAKE-DS project:"Churn Model" key:reports/01* run:{site.run.id[:6]}')
    page.click("#search")
    expect(page.locator("#total")).to_have_text("5")  # reports/011 ... /019, the odd ones
    expect(page.locator("#name")).to_have_value("LAKE-DS")
    expect(page.locator("#project")).to_have_value("Churn Model")
    check_axe(page)
    # The form gives the same view, and the box shows its words.
    page.goto(site.base + "/audit?range=24h")
    page.fill("#name", "lake-ds")
    page.fill("#key", "reports/01*")
    page.fill("#run", site.run.id[:6])
    page.click("#apply")
    expect(page.locator("#total")).to_have_text("5")
    expect(page.locator("#q")).to_have_value(f"name:lake-ds run:{site.run.id[:6]} key:reports/01*")
    # A miss is a warning linked to its field; the page still answers.
    page.fill("#q", "name:lake-ds name:lkae-ds")
    page.click("#search")
    warning = page.locator("#notices .alert.warning")
    expect(warning).to_contain_text("No data source has ever been named “lkae-ds”. Did you mean")
    described = (page.get_attribute("#name", "aria-describedby") or "").split()
    assert described and page.locator(f"#{described[0]}").is_visible()
    expect(page.locator("#total")).to_have_text("121")  # lake-ds's events all the same
    check_axe(page)
    warning.locator("a", has_text="lake-ds").click()
    expect(page.locator("#notices .alert.warning")).to_have_count(0)
    expect(page.locator("#q")).to_have_value("name:lake-ds")
    page.fill("#q", "user:nobody")
    page.click("#search")
    expect(page.locator("#notices .alert.warning")).to_contain_text("No user is named “nobody”")
    user_note = (page.get_attribute("#user", "aria-describedby") or "").split()
    assert user_note and page.locator(f"#{user_note[0]}").is_visible()
    expect(page.locator("#empty")).to_be_visible()  # no such user: no event can match
    check_axe(page)


@pytest.mark.parametrize("role", READERS)
def test_columns_paging_and_page_sizes(page: Page, site: Site, role: str) -> None:
    sign_in(page, site, reader(site, role), "/audit?range=24h")
    header = page.locator("table.events thead")
    expect(header).to_contain_text("Project")
    expect(page.locator("#event-rows td.project").first).to_contain_text("churn model")
    page.click("#column-chooser summary")
    check_axe(page)
    page.uncheck("#col-run")  # applies at once
    expect(header).not_to_contain_text("Run")
    assert query(page)["col"] == ["time", "kind", "ds", "user", "project", "details"]
    page.click("#older")
    expect(page.locator("#position")).to_have_text("51-100 of 121")
    expect(header).not_to_contain_text("Run")  # the choice stays with the pages
    assert query(page)["range"] == ["24h"] and "start" not in query(page)
    page.click("#oldest")
    expect(page.locator("#position")).to_have_text("72-121 of 121")
    expect(page.locator("#event-rows tr").last).to_contain_text("CreateDataSource")
    check_axe(page)
    page.click("#newer")
    expect(page.locator("#position")).to_have_text("22-71 of 121")
    page.click("#newest")
    expect(page.locator("#position")).to_have_text("1-50 of 121")
    page.select_option("#size", "25")
    page.click("#apply-size")
    expect(page.locator("#position")).to_have_text("1-25 of 121")
    assert rows(page) == 25
    page.click("#order-oldest")
    expect(page.locator("#event-rows tr").first).to_contain_text("CreateDataSource")
    expect(page.locator("#newer")).to_be_visible()


@pytest.mark.parametrize("role", READERS)
def test_the_chart_zooms_and_its_legend_filters(page: Page, site: Site, role: str) -> None:
    sign_in(page, site, reader(site, role), "/audit?range=7d")
    expect(page.locator("#chart-svg")).to_be_visible()
    expect(page.locator(".row-label")).to_have_count(3)  # created, accessed, deleted: one row each
    expect(page.locator("#chart-svg")).to_contain_text("one bar per 3 hours")
    check_axe(page)
    page.click("#chart-table summary")
    expect(page.locator("table.numbers tfoot")).to_contain_text("In all")
    check_axe(page)
    # A click on a bar: that bar's time.
    bar = page.locator("#chart-svg rect.bar[fill='#c62828']").first  # the deletion
    bar.scroll_into_view_if_needed()
    box = bar.bounding_box()
    assert box
    page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.wait_for_url("**range=custom**")
    expect(page.locator("#total")).to_have_text("1")
    expect(page.locator("#event-rows")).to_contain_text("DeleteDataSource")
    check_axe(page)
    # A drag across: the time dragged over.
    page.goto(site.base + "/audit?range=24h")
    page.locator("#chart-svg").scroll_into_view_if_needed()
    svg = page.locator("#chart-svg").bounding_box()
    assert svg
    y = svg["y"] + svg["height"] / 2
    page.mouse.move(svg["x"] + svg["width"] * 0.5, y)
    page.mouse.down()
    page.mouse.move(svg["x"] + svg["width"] * 0.7, y, steps=5)
    page.mouse.up()
    page.wait_for_url("**range=custom**")
    start, end = query(page)["start"][0], query(page)["end"][0]
    assert start < end
    narrowed = int(page.inner_text("#total"))
    assert 0 < narrowed < 121
    # The legend filters by kind.
    page.goto(site.base + "/audit?range=30d")
    page.click(".legend[data-kind=DeleteDataSource]")
    expect(page.locator("#total")).to_have_text("1")
    assert query(page)["kind"] == ["DeleteDataSource"]
    expect(page.locator("#all-kinds")).to_be_visible()
    check_axe(page)


@pytest.mark.parametrize("role", READERS)
def test_an_invalid_range_keeps_the_last_view(page: Page, site: Site, role: str) -> None:
    sign_in(page, site, reader(site, role), "/audit?range=24h&name=lake-ds")
    expect(page.locator("#total")).to_have_text("121")
    page.click("#custom-chip")
    expect(page.locator("#range")).to_have_value("custom")
    page.fill("#start", "last tuesday")
    page.click("#apply")
    start = page.locator("#start")
    expect(start).to_have_attribute("aria-invalid", "true")
    message = page.locator(f"#{page.get_attribute('#start', 'aria-describedby').split()[-1]}")
    expect(message).to_contain_text("From: “last tuesday” is not a date or time; accepted: a date")
    expect(message).not_to_contain_text("Link")
    expect(page.locator("#total")).to_have_text("121")  # the last view's events stay
    expect(page.locator("#kept-last")).to_be_visible()
    check_axe(page)
    page.fill("#start", "2000-01-01")
    page.click("#apply")
    expect(page.locator("#start")).not_to_have_attribute("aria-invalid", "true")
    expect(page.locator("#total")).to_have_text("121")


@pytest.mark.parametrize("role", READERS)
def test_the_live_view_shows_new_events_without_a_reload(page: Page, site: Site, role: str) -> None:
    sign_in(page, site, reader(site, role), "/audit?range=24h&name=lake-ds")
    page.click("#live-toggle")
    expect(page.locator("#live-toggle")).to_contain_text("Live: on")
    total = int(page.inner_text("#total").replace(",", ""))
    page.evaluate("window.__stayed = true")
    seq = access(
        site.dstrail, site.lake, site.alice, operation="objectKey", objectKey=f"live/{role}"
    )
    first = page.locator("#event-rows tr").first
    expect(first).to_have_attribute("data-seq", str(seq), timeout=15_000)
    expect(first).to_contain_text(f"live/{role}")
    expect(page.locator("#live-status")).to_contain_text("1 new event")
    expect(page.locator("#total")).to_have_text(f"{total + 1:,}")
    assert page.evaluate("window.__stayed === true")  # the same page: no reload
    assert rows(page) == 50
    check_axe(page)
