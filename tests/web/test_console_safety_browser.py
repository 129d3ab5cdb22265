"""Safe management and readable detail in headless Chromium (Debian's, driven by Playwright)
against a real server, as a SysAdmin, an Auditor and a User: the permission editor with its
gain/lose review, confirmed transfers and removals, controls that follow the role, error
pages that keep the navigation, the event page's names, raw JSON and proof, the export of
one column per metadata key, the skip link and phone-width layouts. axe-core checks every
page visited (0 violations)."""

from __future__ import annotations

import csv
import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from dstrail.app import create_app
from dstrail.audit.checkpoints import checkpoint_now
from dstrail.context import Dstrail, open_dstrail
from dstrail.domain.datasources import DataSource, Permissions
from dstrail.domain.projects import Project, Run
from dstrail.domain.users import Role
from dstrail.services import datasources as ds_service
from dstrail.settings import Settings
from tests.support import Login, audit_count, make_user
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

PHONE = {"width": 390, "height": 844}


@dataclass
class Site:
    """The served console and what the setup put in it."""

    base: str
    dstrail: Dstrail
    admin: Login
    auditor: Login
    alice: Login
    bob: Login
    carol: Login
    lake: DataSource
    project: Project
    run: Run
    change_seq: int
    access_seq: int


def _attach(dstrail: Dstrail, ds: DataSource, project: Project, actor: Login) -> None:
    with dstrail.store.write() as tx:
        ds_service.attach_to_project(
            tx, data_source_id=ds.id, project_id=project.id, actor=actor.user,
            now_ms=dstrail.clock(),
        )  # fmt: skip


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """alice's lake-ds, shared with carol and dave, in her project; an access from her run, a
    change of permissions (bob added, dave removed), a checkpoint covering both; more users
    to search through."""
    data = tmp_path_factory.mktemp("console-safety")
    db = f"sqlite:///{data / 'dstrail.sqlite3'}"
    dstrail = open_dstrail(Settings(data_dir=data, database_url=db))
    admin = make_user(dstrail, "root-admin", Role.SYS_ADMIN)
    auditor = make_user(dstrail, "officer", Role.AUDITOR)
    alice = make_user(dstrail, "alice")
    bob = make_user(dstrail, "bob")
    carol = make_user(dstrail, "carol")
    dave = make_user(dstrail, "dave")
    for n in range(12):
        make_user(dstrail, f"analyst-{n:02d}")
    lake = create_ds(dstrail, alice, "lake-ds", users=(carol.id, dave.id))
    project, run = project_and_run(dstrail, alice, "churn-model")
    _attach(dstrail, lake, project, alice)
    access_seq = access(dstrail, lake, alice, run, operation="listObjects", prefix="p/")
    with dstrail.store.write() as tx:
        ds_service.set_permissions(
            tx, data_source_id=lake.id,
            permissions=Permissions(is_everyone=False, user_ids=(carol.id, bob.id)),
            actor=alice.user, now_ms=dstrail.clock(),
        )  # fmt: skip
    change_seq = audit_count(dstrail)
    create_ds(dstrail, alice, "open-ds", everyone=True, users=(bob.id,))
    checkpoint_now(dstrail.store, now_ms=dstrail.clock())
    with serving(create_app(dstrail)) as base:
        yield Site(
            base, dstrail, admin, auditor, alice, bob, carol, lake, project, run,
            change_seq, access_seq,
        )  # fmt: skip
    dstrail.store.dispose()


def _page(browser: Browser, site: Site, login: Login, *, phone: bool = False) -> Page:
    viewport = PHONE if phone else {"width": 1280, "height": 900}
    context = browser.new_context(viewport=viewport, is_mobile=phone, accept_downloads=True)
    context.set_default_timeout(10_000)
    page = context.new_page()
    page.goto(site.base + "/signin")
    page.fill("#api_key", login.api_key)
    page.click("button[type=submit]")
    page.wait_for_url(lambda url: "/signin" not in url)
    return page


@pytest.fixture
def pages(browser: Browser) -> Iterator[list[Page]]:
    """Pages opened by a test, closed after it."""
    opened: list[Page] = []
    yield opened
    for page in opened:
        page.context.close()


def signed_in(
    browser: Browser, site: Site, login: Login, pages: list[Page], *, phone: bool = False
) -> Page:
    page = _page(browser, site, login, phone=phone)
    pages.append(page)
    return page


def _restore_lake(site: Site) -> None:
    """lake-ds back to alice, shared with carol and bob, in churn-model (tests change it)."""
    with site.dstrail.store.write() as tx:
        ds = tx.data_sources.by_id(site.lake.id)
    assert ds is not None
    with site.dstrail.store.write() as tx:
        if ds.owner_id != site.alice.id:
            ds_service.transfer_ownership(
                tx, data_source_id=ds.id, new_owner_id=site.alice.id, actor=site.admin.user,
                now_ms=site.dstrail.clock(),
            )  # fmt: skip
        ds_service.set_permissions(
            tx, data_source_id=ds.id,
            permissions=Permissions(is_everyone=False, user_ids=(site.carol.id, site.bob.id)),
            actor=site.admin.user, now_ms=site.dstrail.clock(),
        )  # fmt: skip
    if site.project.id not in ds.project_ids:
        _attach(site.dstrail, ds, site.project, site.alice)


# -- the permission editor ----------------------------------------------------------------------


def test_the_owner_edits_permissions_in_a_searchable_list_and_confirms_gains_and_losses(
    browser: Browser, site: Site, pages: list[Page]
) -> None:
    page = signed_in(browser, site, site.alice, pages)  # a User, the owner
    page.goto(f"{site.base}/datasources/{site.lake.id}")
    check_axe(page)
    picker = page.locator("#user-picker")
    expect(picker.locator("#user-search")).to_be_visible()
    expect(page.locator("#user-count")).to_have_text("2 chosen")
    page.fill("#user-search", "ANALYST-0")
    expect(picker.locator("li:visible")).to_have_count(10)
    page.fill("#user-search", "zz-nobody")
    expect(page.locator("#user-search-empty")).to_be_visible()
    page.fill("#user-search", "da")
    expect(picker.locator("li:visible")).to_have_count(1)
    picker.locator("li:visible input").check()  # dave, the only match
    page.fill("#user-search", "")
    page.uncheck(f"input[name=user_ids][value='{site.carol.id}']")
    expect(page.locator("#user-count")).to_have_text("2 chosen")
    page.click("#save-permissions")

    expect(page.locator("h1")).to_have_text("Change who may use lake-ds?")
    expect(page.locator("#gains li")).to_have_count(1)
    expect(page.locator("#gains")).to_contain_text("dave")
    expect(page.locator("#loses li")).to_have_count(1)
    expect(page.locator("#loses")).to_contain_text("carol")
    check_axe(page)
    page.click("#cancel")
    expect(page.locator("#visibility")).to_have_text("Owner and bob, carol")  # nothing saved

    page.uncheck(f"input[name=user_ids][value='{site.carol.id}']")
    page.check("#is_everyone")
    page.click("#save-permissions")
    expect(page.locator("#everyone-change")).to_contain_text("turned on")
    expect(page.locator("#loses-none")).to_have_text("Nobody.")
    expect(page.locator("#named-changes")).to_contain_text("carol: taken off the named users")
    page.click("#confirm-permissions")
    expect(page.locator(".alert.ok")).to_contain_text("Permissions saved")
    expect(page.locator("#visibility")).to_have_text("Everyone (also named: bob)")
    check_axe(page)
    _restore_lake(site)


def test_a_sysadmin_confirms_a_transfer_and_a_removal_and_no_owner_is_preselected(
    browser: Browser, site: Site, pages: list[Page]
) -> None:
    page = signed_in(browser, site, site.admin, pages)
    page.goto(f"{site.base}/datasources/{site.lake.id}")
    expect(page.locator("#new-owner")).to_have_value("")
    page.click("#transfer")
    expect(page.locator("#new-owner")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#new-owner-error")).to_contain_text("choose the user who will own it")
    expect(page.locator("#owner")).to_have_text("alice")
    check_axe(page)
    page.select_option("#new-owner", label="bob")
    page.click("#transfer")
    expect(page.locator("h1")).to_have_text("Transfer lake-ds to bob?")
    expect(page.locator("#transfer-summary")).to_contain_text("loses access")
    check_axe(page)
    page.click("#confirm-transfer")
    expect(page.locator("#owner")).to_have_text("bob")

    remove = page.locator("button[data-detach=churn-model]")
    expect(remove).to_have_attribute("aria-label", "Remove from project churn-model")
    remove.click()
    expect(page.locator("h1")).to_have_text("Remove lake-ds from project churn-model?")
    check_axe(page)
    page.click("#cancel")
    expect(page.locator("#projects")).to_contain_text("churn-model")
    page.click("button[data-detach=churn-model]")
    page.click("#confirm-detach")
    expect(page.locator(".alert.ok")).to_contain_text("Removed from the project")
    expect(page.locator("#projects-empty")).to_be_visible()
    check_axe(page)
    _restore_lake(site)


# -- controls follow the role -------------------------------------------------------------------


def test_an_auditor_reads_but_sees_no_control_that_changes(
    browser: Browser, site: Site, pages: list[Page]
) -> None:
    page = signed_in(browser, site, site.auditor, pages)
    page.goto(f"{site.base}/datasources")
    check_axe(page)
    page.click("text=lake-ds")
    expect(page.locator("#projects")).to_contain_text("churn-model")
    expect(page.locator("button[data-detach]")).to_have_count(0)
    for control in ("#delete", "#permissions-form", "#transfer", "#attach"):
        expect(page.locator(control)).to_have_count(0)
    expect(page.locator("table.events")).to_be_visible()  # its trail: it reads
    # an event's link is named by the time it shows (UTC), the local time beside it, outside
    link = page.locator("table.events a.event-link").first
    expect(link).to_have_accessible_name(re.compile(r"^\d{4}-\d{2}-\d{2} [\d:.]+ UTC$"))
    expect(page.locator("table.events td.when .local").first).to_be_visible()
    check_axe(page)


def test_a_user_sees_no_delete_form_and_error_pages_keep_the_navigation(
    browser: Browser, site: Site, pages: list[Page]
) -> None:
    page = signed_in(browser, site, site.bob, pages)  # named on lake-ds, not its owner
    page.goto(f"{site.base}/datasources/{site.lake.id}")
    expect(page.locator("h1")).to_have_text("lake-ds")
    expect(page.locator("#delete")).to_have_count(0)
    expect(page.locator("#permissions-form")).to_have_count(0)
    check_axe(page)
    response = page.goto(f"{site.base}/datasources/{site.lake.id}/delete")
    assert response is not None and response.status == 403
    expect(page.locator("#confirm_name")).to_have_count(0)
    expect(page.locator("#not-allowed")).to_contain_text("Only its owner (alice)")
    check_axe(page)
    for path, status in (("/audit", 403), ("/no/such/page", 404)):
        response = page.goto(site.base + path)
        assert response is not None and response.status == status
        expect(page.locator("header nav")).to_contain_text("Data sources")
        expect(page.locator("header .username")).to_have_text("bob")
        expect(page.locator("header button", has_text="Sign out")).to_be_visible()
        check_axe(page)
    page.click("header >> text=Data sources")
    expect(page.locator("h1")).to_have_text("Data sources")
    check_axe(page)
    page.goto(f"{site.base}/datasources/new")
    expect(page.locator("#user-picker")).to_be_visible()
    check_axe(page)


# -- the event page and the exports -------------------------------------------------------------


def test_the_event_page_names_ids_shows_raw_json_and_links_its_proof(
    browser: Browser, site: Site, pages: list[Page]
) -> None:
    page = signed_in(browser, site, site.auditor, pages)
    page.goto(f"{site.base}/audit/events/{site.change_seq}")
    row = page.locator("#metadata tr", has_text="addedUserIds")
    expect(row.locator(".named")).to_have_text("bob")
    expect(row.locator("code")).to_have_text(site.bob.id)
    expect(page.locator("#metadata tr", has_text="removedUserIds").locator(".named")).to_have_text(
        "dave"
    )
    raw = json.loads(page.locator("#raw-json").inner_text())
    assert raw["eventKind"] == "DataSourceChangeOfPermissions"
    assert raw["metadata"]["addedUserIds"] == site.bob.id  # stored as it was
    check_axe(page)

    page.goto(f"{site.base}/audit/events/{site.access_seq}")
    expect(page.locator("#event-project")).to_contain_text("churn-model")
    expect(page.locator("#event-run")).to_contain_text(f"Workspace …{site.run.id[-8:]}")
    check_axe(page)
    page.click("#inclusion-proof")
    proof = json.loads(page.locator("body").inner_text())
    assert proof["seq"] == site.access_seq and proof["auditPath"] is not None
    page.go_back()
    with page.expect_download() as download:
        page.click("#offline-proof")
    assert download.value.path().read_text().startswith("c2sp.org/tlog-proof@v1")


def test_the_trail_exports_one_column_per_metadata_key_and_says_what_six_months_hold(
    browser: Browser, site: Site, pages: list[Page], tmp_path: Path
) -> None:
    page = signed_in(browser, site, site.auditor, pages)
    page.goto(f"{site.base}/audit?range=24h&kind=AccessDataSource")
    expect(page.locator("#six-months-scope")).to_contain_text("seven kinds")
    expect(page.locator("#six-months-scope")).to_contain_text("DataSourceChangeOfOwnership")
    check_axe(page)
    page.check("#metadata-columns")
    with page.expect_download() as download:
        page.click("#download-csv")
    target = tmp_path / "wide.csv"
    download.value.save_as(target)
    with target.open(newline="") as handle:
        [row] = list(csv.DictReader(handle))
    assert int(row["seq"]) == site.access_seq
    assert (row["projectName"], row["metadata.prefix"]) == ("churn-model", "p/")
    assert row["runLabel"] == f"Workspace …{site.run.id[-8:]}"


# -- keyboard and small screens -----------------------------------------------------------------


def test_the_sign_in_and_streams_pages_pass_axe(
    browser: Browser, site: Site, pages: list[Page]
) -> None:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    anonymous = context.new_page()
    pages.append(anonymous)
    anonymous.goto(f"{site.base}/signin")
    check_axe(anonymous)
    anonymous.fill("#api_key", "dstrail_not-a-key")
    anonymous.click("button[type=submit]")
    expect(anonymous.locator(".alert.error")).to_contain_text("not valid")
    check_axe(anonymous)
    admin = signed_in(browser, site, site.admin, pages)
    admin.goto(f"{site.base}/streams")
    check_axe(admin)


def test_the_skip_link_is_the_first_stop_and_moves_focus_to_the_content(
    browser: Browser, site: Site, pages: list[Page]
) -> None:
    page = signed_in(browser, site, site.alice, pages)
    page.goto(f"{site.base}/datasources")
    page.keyboard.press("Tab")
    skip = page.locator(".skip-link")
    expect(skip).to_be_focused()
    box = skip.bounding_box()
    assert box is not None and box["y"] >= 0 and box["width"] >= 24 and box["height"] >= 24
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "main"
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.closest('main') !== null")


def _boxes_fit(page: Page, selector: str, width: int) -> None:
    """Every element ``selector`` matches lies inside the viewport's width."""
    outside = page.evaluate(
        """([selector, width]) => Array.from(document.querySelectorAll(selector))
            .map((el) => [el, el.getBoundingClientRect()])
            .filter(([el, r]) => r.width > 0 && (r.left < -0.5 || r.right > width + 0.5))
            .map(([el, r]) => `${el.tagName}.${el.className}: ${r.left}-${r.right}`)""",
        [selector, width],
    )
    assert outside == [], outside


def test_at_phone_width_lists_stack_and_headings_stay_in_their_cards(
    browser: Browser, site: Site, pages: list[Page]
) -> None:
    page = signed_in(browser, site, site.admin, pages, phone=True)
    page.goto(f"{site.base}/datasources")
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    _boxes_fit(page, "table.datasources td, table.datasources th", PHONE["width"])
    cell = page.locator("table.datasources tr", has_text="lake-ds").locator(
        "td[data-label=Projects]"
    )
    expect(cell).to_be_visible()
    expect(cell).to_contain_text("churn-model")
    check_axe(page)
    page.goto(f"{site.base}/datasources/{site.lake.id}")
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    _boxes_fit(page, "main *", PHONE["width"])
    check_axe(page)
    for seq in (site.change_seq, site.access_seq):
        page.goto(f"{site.base}/audit/events/{seq}")
        heading = page.locator("h1.event-title").bounding_box()
        card = page.locator("section.event-card").bounding_box()
        assert heading is not None and card is not None
        assert heading["x"] >= card["x"] and heading["x"] + heading["width"] <= (
            card["x"] + card["width"]
        )
        assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
        _boxes_fit(page, "main *", PHONE["width"])
        check_axe(page)
