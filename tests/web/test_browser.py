"""The console in headless Chromium (Debian's package, driven by Playwright) against a real
uvicorn server: sign-in, every filter, paging, detail, a download, each management action with
its event in the trail, and a user who must not see the trail."""

from __future__ import annotations

import csv
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from dstrail.app import create_app
from dstrail.context import Dstrail, open_dstrail
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
    alice: Login
    bob: Login
    project: Project
    run: Run
    clock: ShiftedClock


@pytest.fixture(scope="module")
def site(database: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """A dstrail with history: 70 recent accesses, older events, a deleted data source."""
    data = tmp_path_factory.mktemp("console")
    clock = ShiftedClock()
    dstrail = open_dstrail(Settings(data_dir=data, database_url=database), clock=clock)
    admin = make_user(dstrail, "root-admin", Role.SYS_ADMIN)
    alice = make_user(dstrail, "alice")
    bob = make_user(dstrail, "bob")
    clock.offset_ms = -40 * DAY_MS
    legacy = create_ds(dstrail, admin, "legacy-ds", everyone=True)
    clock.offset_ms = -20 * DAY_MS
    with dstrail.store.write() as tx:
        ds_service.delete_data_source(
            tx, data_source_id=legacy.id, actor=admin.user, now_ms=clock()
        )
    clock.offset_ms = -3 * DAY_MS
    lake = create_ds(dstrail, alice, "lake-ds", everyone=True)
    project, run = project_and_run(dstrail, alice, "churn-model")
    clock.offset_ms = -2 * DAY_MS
    for i in range(70):
        access(
            dstrail, lake, alice, run if i % 2 else None, operation="listObjects", prefix=f"p{i}/"
        )
    clock.offset_ms = 0
    with serving(create_app(dstrail)) as base:
        yield Site(base, dstrail, admin, alice, bob, project, run, clock)
    dstrail.store.dispose()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """A fresh browser context (no cookies) at desktop width."""
    context = browser.new_context(viewport={"width": 1280, "height": 900}, timezone_id="Asia/Tokyo")
    context.set_default_timeout(10_000)
    yield context.new_page()
    context.close()


def sign_in(page: Page, site: Site, login: Login, path: str = "/") -> None:
    """Sign in through the form, as a person does."""
    page.goto(site.base + path)
    expect(page).to_have_url(f"{site.base}/signin?next={path.replace('/', '%2F')}")
    page.fill("#api_key", login.api_key)
    page.click("button[type=submit]")


def rows(page: Page) -> int:
    return page.locator("table.events tbody tr").count()


def test_a_user_signs_in_and_never_sees_the_trail(page: Page, site: Site) -> None:
    sign_in(page, site, site.alice)
    expect(page).to_have_url(site.base + "/datasources")
    expect(page.locator("table.datasources")).to_contain_text("lake-ds")
    expect(page.locator("header nav")).not_to_contain_text("Audit trail")
    response = page.goto(site.base + "/audit")
    assert response is not None and response.status == 403
    expect(page.locator("h1")).to_have_text("Not allowed")
    expect(page.locator(".message")).to_contain_text("requires the SysAdmin or the Auditor role")


def test_a_wrong_key_is_refused(page: Page, site: Site) -> None:
    page.goto(site.base + "/signin")
    page.fill("#api_key", "dstrail_not-a-key")
    page.click("button[type=submit]")
    expect(page.locator(".alert.error")).to_contain_text("not valid")


def test_presets_filters_paging_and_detail(page: Page, site: Site) -> None:
    sign_in(page, site, site.admin, "/audit")
    expect(page.locator("h1")).to_have_text("Audit trail")
    expect(page.locator("#total")).to_have_text("71")  # 7 days: lake-ds created, 70 accesses
    expect(page.locator("table.events td.when .local").first).to_contain_text("GMT+9")
    assert rows(page) == 50
    page.click("#older")
    expect(page.locator("#newest")).to_be_visible()
    assert rows(page) == 21 and "cursor=" in page.url
    page.click("#newest")
    page.click(".presets >> text=Last 24 hours")
    expect(page.locator("#empty")).to_contain_text("No events match")
    page.click(".presets >> text=Last 30 days")
    expect(page.locator("#total")).to_have_text("72")
    page.click(".presets >> text=Last 6 months")
    expect(page.locator("#total")).to_have_text("73")
    assert "range=6mo" in page.url
    # names, suggested as typed (the deleted one too)
    page.fill("#name", "leg")
    expect(page.locator("#ds-names option")).to_have_attribute("value", "legacy-ds")
    page.fill("#name", "legacy-ds")
    page.click("#apply")
    expect(page.locator("#total")).to_have_text("2")
    expect(page.locator("table.events")).to_contain_text("DeleteDataSource")
    shared = page.url
    # event kinds
    page.fill("#name", "")
    page.check("#filters input[value=CreateDataSource]")
    page.click("#apply")
    expect(page.locator("#total")).to_have_text("2")
    page.uncheck("#filters input[value=CreateDataSource]")
    # user, project, run
    page.fill("#user", "root-admin")
    page.click("#apply")
    expect(page.locator("#total")).to_have_text("2")
    page.fill("#user", "")
    page.fill("#project", "churn-model")
    page.click("#apply")
    expect(page.locator("#total")).to_have_text("35")
    page.fill("#project", "")
    page.fill("#run", site.run.id)
    page.click("#apply")
    expect(page.locator("#total")).to_have_text("35")
    page.fill("#run", "")
    # custom range
    page.select_option("#range", "custom")
    day = time.strftime("%Y-%m-%d", time.gmtime((site.clock() - 20 * DAY_MS) / 1000))
    page.fill("#start", day)
    page.fill("#end", day)
    page.click("#apply")
    expect(page.locator("#total")).to_have_text("1")
    expect(page.locator("table.events")).to_contain_text("DeleteDataSource")
    # a shared URL shows the same view; a click opens the event
    page.goto(shared)
    expect(page.locator("#name")).to_have_value("legacy-ds")
    page.click("table.events a.event-link >> nth=0")
    expect(page.locator("#event-fields")).to_contain_text("legacy-ds")
    expect(page.locator("#metadata")).to_contain_text("performedByUsername")
    expect(page.locator("#metadata")).to_contain_text("root-admin")
    page.click("text=Back to the trail")
    expect(page.locator("#name")).to_have_value("legacy-ds")


def test_a_download_holds_exactly_the_view(page: Page, site: Site, tmp_path: Path) -> None:
    sign_in(page, site, site.admin, "/audit")
    page.goto(f"{site.base}/audit?range=6mo&name=legacy-ds")
    with page.expect_download() as download:
        page.click("#download-csv")
    target = tmp_path / "view.csv"
    download.value.save_as(target)
    with target.open(newline="") as handle:
        saved = list(csv.DictReader(handle))
    assert [r["eventKind"] for r in saved] == ["DeleteDataSource", "CreateDataSource"]
    assert {r["performedByUsername"] for r in saved} == {"root-admin"}
    with page.expect_download() as download:
        page.click("#download-six-months-txt")
    text = download.value.path().read_text()
    assert len(text.splitlines()) >= 73 and "dataSource=lake-ds" in text


def _expect_newest_event(page: Page, kind: str) -> None:
    expect(page.locator("table.events tbody tr").first).to_contain_text(kind)


def test_each_management_action_records_its_event(page: Page, site: Site) -> None:
    sign_in(page, site, site.admin, "/datasources")
    page.click("#new-data-source")
    page.fill("input[name=name]", "browser-ds")
    page.select_option("select[name=data_source_type]", "SnowflakeConfig")
    page.select_option("select[name=auth_type]", "Basic")
    page.fill("textarea[name=config]", "accountName=acme\nwarehouse=WH")
    page.fill("textarea[name=credentials]", "username=svc\npassword=hunter2")
    page.click("#create")
    expect(page.locator(".alert.ok")).to_contain_text("Data source created")
    expect(page.locator("body")).not_to_contain_text("hunter2")
    _expect_newest_event(page, "CreateDataSource")

    page.check(f"input[name=user_ids][value='{site.bob.id}']")
    page.click("#save-permissions")
    expect(page.locator("#gains")).to_have_text("bob User")
    page.click("#confirm-permissions")
    expect(page.locator("#visibility")).to_have_text("Owner and bob")
    _expect_newest_event(page, "DataSourceChangeOfPermissions")

    page.select_option("#attach-project", label="churn-model")
    page.click("#attach")
    expect(page.locator("#projects")).to_contain_text("churn-model")
    _expect_newest_event(page, "DataSourceAssociatedToProject")

    page.click("button[data-detach=churn-model]")
    page.click("#confirm-detach")
    expect(page.locator("#projects-empty")).to_be_visible()
    _expect_newest_event(page, "DataSourceDissociatedFromProject")

    page.select_option("#new-owner", label="alice")
    page.click("#transfer")
    page.click("#confirm-transfer")
    expect(page.locator("#owner")).to_have_text("alice")
    _expect_newest_event(page, "DataSourceChangeOfOwnership")

    page.click("#delete")
    page.fill("#confirm_name", "wrong")
    page.click("#confirm-delete")
    expect(page.locator(".alert.error")).to_contain_text("exactly to confirm")
    page.fill("#confirm_name", "browser-ds")
    page.click("#confirm-delete")
    expect(page.locator(".alert.ok")).to_contain_text("Data source deleted")
    expect(page.locator("table.datasources")).not_to_contain_text("browser-ds")

    page.goto(f"{site.base}/audit?range=24h&name=browser-ds")
    kinds = page.locator("table.events tbody tr td:nth-child(2)").all_inner_texts()
    assert kinds == [
        "DeleteDataSource",
        "DataSourceChangeOfOwnership",
        "DataSourceDissociatedFromProject",
        "DataSourceAssociatedToProject",
        "DataSourceChangeOfPermissions",
        "CreateDataSource",
    ]


def test_phone_width_keeps_the_trail_usable(browser: Browser, site: Site) -> None:
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True)
    phone = context.new_page()
    sign_in(phone, site, site.admin, "/audit")
    expect(phone.locator("table.events tbody tr").first).to_be_visible()
    width = phone.evaluate("document.documentElement.scrollWidth")
    assert width <= 390
    context.close()
