"""The console's forensics pages in headless Chromium against a real uvicorn server, on SQLite
and PostgreSQL: entitlements at moments of a history (a grant, a revoke, a transfer, an
everyone share, a delete and the name reused), a paged timeline, findings planted through the
real services (listed, filtered, opened, acknowledged, and the acknowledgement in the trail),
the roles, and bad input re-rendered with the field marked."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson
import pytest

from dstrail.app import create_app
from dstrail.audit.recorder import record_event
from dstrail.context import Dstrail, open_dstrail
from dstrail.domain.datasources import DataSource, Permissions
from dstrail.domain.forensics.findings import FindingFilter
from dstrail.domain.projects import Run
from dstrail.domain.timestamps import DAY_MS, format_ms, parse_iso
from dstrail.domain.trail import EventKind
from dstrail.domain.users import Role
from dstrail.services import datasources as ds_service
from dstrail.services.finding_answers import findings_page
from dstrail.services.forensics import follower_for
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

HOUR_MS = 3_600_000


class ShiftedClock:
    """Real time plus an offset the setup moves into the past."""

    def __init__(self) -> None:
        self.offset_ms = 0

    def __call__(self) -> int:
        return time.time_ns() // 1_000_000 + self.offset_ms

    def days_ago(self, days: float) -> int:
        """Set the clock ``days`` before the real now; the new now."""
        self.offset_ms = -int(days * DAY_MS)
        return self()


@dataclass
class History:
    """What the setup did, and the moments the pages are asked about."""

    base: str
    dstrail: Dstrail
    admin: Login
    auditor: Login
    alice: Login
    bob: Login
    carol: Login
    dave: Login
    old: DataSource
    new: DataSource
    run: Run
    moments: dict[str, str] = field(default_factory=dict)
    """T1..T6: an hour after each step, as a UTC time typed into the form."""
    seqs: dict[str, int] = field(default_factory=dict)
    bob_timeline: list[int] = field(default_factory=list)
    """The seqs of bob's timeline: what he did and the grant changes naming him."""


def _head(dstrail: Dstrail) -> int:
    with dstrail.store.read() as tx:
        return tx.audit.size()


def _user_created(dstrail: Dstrail, login: Login) -> int:
    """The seq of the ``UserCreated`` event of ``login``."""
    with dstrail.store.read() as tx:
        for seq in range(tx.audit.size(), 0, -1):
            event = tx.audit.by_sequence(seq)
            if (
                event is not None
                and event.event_kind == EventKind.USER_CREATED
                and orjson.loads(event.metadata).get("userId") == login.id
            ):
                return seq
    raise AssertionError(f"no UserCreated event for {login.user.username}")


def _typed(ms: int) -> str:
    """A moment as a person types it: UTC, no offset, to the second."""
    return format_ms(ms)[:19].replace("T", " ")


def _refused(dstrail: Dstrail, ds: DataSource, who: Login) -> int:
    """A refused access (as the data path records it); its seq."""
    with dstrail.store.write() as tx:
        record_event(
            tx, kind=EventKind.ACCESS_REFUSED, data_source=ds, actor=who.user,
            now_ms=dstrail.clock(),
            metadata={"clientSource": "Python", "operation": "getDataSource",
                      "reason": "notPermitted"},
        )  # fmt: skip
    return _head(dstrail)


@pytest.fixture(scope="module")
def history(database: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[History]:
    """lake-ds: created by alice for bob, attached to a project, bob replaced by carol (a
    revoke), given to bob (a transfer), shared with everyone, deleted, and its name reused."""
    clock = ShiftedClock()
    settings = Settings(
        data_dir=tmp_path_factory.mktemp("forensics"),
        database_url=database,
        forensics_first_access_user_grace_days=0,
        forensics_first_access_grant_grace_days=0,
    )
    dstrail = open_dstrail(settings, clock=clock)
    moments: dict[str, str] = {}
    seqs: dict[str, int] = {}
    mine: list[int] = []
    clock.days_ago(12)
    admin = make_user(dstrail, "root-admin", Role.SYS_ADMIN)
    auditor = make_user(dstrail, "auditor", Role.AUDITOR)
    alice = make_user(dstrail, "alice")
    bob = make_user(dstrail, "bob")
    mine.append(_user_created(dstrail, bob))
    carol = make_user(dstrail, "carol")

    def moment(name: str) -> None:
        moments[name] = _typed(clock() + HOUR_MS)

    clock.days_ago(10)
    old = create_ds(dstrail, alice, "lake-ds", users=(bob.id,))
    seqs["created"] = _head(dstrail)
    mine.append(seqs["created"])
    moment("T1")
    clock.days_ago(9.9)
    for i in range(12):
        touched = {"objectKey": f"raw/{i}.csv"} if i % 2 else {"prefix": f"raw/{i}/"}
        mine.append(access(dstrail, old, bob, None, operation="getObject", **touched))
    clock.days_ago(9)
    project, _run = project_and_run(dstrail, alice, "churn-model")
    with dstrail.store.write() as tx:
        ds_service.attach_to_project(
            tx, data_source_id=old.id, project_id=project.id, actor=alice.user, now_ms=clock()
        )
    seqs["attached"] = _head(dstrail)
    clock.days_ago(8)
    with dstrail.store.write() as tx:
        ds_service.set_permissions(
            tx, data_source_id=old.id, permissions=Permissions(is_everyone=False, user_ids=(carol.id,)),
            actor=alice.user, now_ms=clock(),
        )  # fmt: skip
    seqs["revoked"] = _head(dstrail)
    mine.append(seqs["revoked"])
    moment("T2")
    clock.days_ago(7.9)
    mine += [_refused(dstrail, old, bob), _refused(dstrail, old, bob)]
    clock.days_ago(7)
    with dstrail.store.write() as tx:
        ds_service.transfer_ownership(
            tx, data_source_id=old.id, new_owner_id=bob.id, actor=alice.user, now_ms=clock()
        )
    seqs["transferred"] = _head(dstrail)
    mine.append(seqs["transferred"])
    moment("T3")
    clock.days_ago(6.9)
    mine += [access(dstrail, old, bob, operation="listObjects", prefix="p/") for _ in range(6)]
    clock.days_ago(6)
    with dstrail.store.write() as tx:
        ds_service.set_permissions(
            tx, data_source_id=old.id,
            permissions=Permissions(is_everyone=True, user_ids=(carol.id,)),
            actor=bob.user, now_ms=clock(),
        )  # fmt: skip
    seqs["everyone"] = _head(dstrail)
    mine.append(seqs["everyone"])
    moment("T4")
    clock.days_ago(5)
    dave = make_user(dstrail, "dave")
    moment("T5")
    clock.days_ago(4)
    with dstrail.store.write() as tx:
        ds_service.delete_data_source(tx, data_source_id=old.id, actor=bob.user, now_ms=clock())
    seqs["deleted"] = _head(dstrail)
    mine.append(seqs["deleted"])
    moment("T6")
    clock.days_ago(3)
    new = create_ds(dstrail, alice, "lake-ds")
    _project, run = project_and_run(dstrail, alice, "reuse-check")
    clock.days_ago(2.9)
    access(dstrail, new, alice, run, operation="listObjects", prefix="fresh/")
    access(dstrail, new, alice, run, operation="getObject", objectKey="fresh/a.parquet")
    clock.offset_ms = 0
    with serving(create_app(dstrail)) as base:
        yield History(
            base, dstrail, admin, auditor, alice, bob, carol, dave, old, new, run,
            moments, seqs, sorted(mine),
        )  # fmt: skip
    dstrail.store.dispose()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """A fresh browser context (no cookies) at desktop width."""
    context = browser.new_context(viewport={"width": 1280, "height": 900}, timezone_id="UTC")
    context.set_default_timeout(15_000)
    yield context.new_page()
    context.close()


def sign_in(page: Page, site: History, login: Login) -> None:
    """Sign in through the form, as a person does."""
    page.goto(site.base + "/signin")
    page.fill("#api_key", login.api_key)
    page.click("button[type=submit]")
    expect(page.locator(".who .username")).to_have_text(login.user.username)


def _ask(page: Page, of: str, subject: str, at: str = "") -> None:
    page.select_option("#f-of", of)
    page.fill("#f-subject", subject)
    page.fill("#f-at", at)
    page.fill("#f-at_seq", "")
    page.click("#answer")


def _cells(page: Page, selector: str) -> list[str]:
    return [text.strip() for text in page.locator(selector).all_inner_texts()]


def _grants(page: Page) -> list[tuple[str, str]]:
    """(through, granting event kind) of each grant in force, as listed."""
    rows = page.locator("#grants tbody tr")
    return [
        (
            rows.nth(i).locator("td").nth(0).inner_text().strip(),
            rows.nth(i).locator(".grant-event .kind").inner_text().strip(),
        )
        for i in range(rows.count())
    ]


def _reach(page: Page) -> dict[str, str]:
    rows = page.locator("#reach tbody tr")
    return {
        rows.nth(i).get_attribute("data-user") or "": rows.nth(i).locator("td").nth(1).inner_text()
        for i in range(rows.count())
    }


def _events(dstrail: Dstrail, after: int) -> list[Any]:
    with dstrail.store.read() as tx:
        head = tx.audit.size()
        found = [tx.audit.by_sequence(seq) for seq in range(after + 1, head + 1)]
    return [event for event in found if event is not None]


# -- roles ------------------------------------------------------------------------------------------


def test_a_user_is_refused_with_the_navigation_kept(page: Page, history: History) -> None:
    sign_in(page, history, history.alice)
    expect(page.locator("header nav")).not_to_contain_text("Forensics")
    before = _head(history.dstrail)
    for path in ("/forensics/entitlements?of=datasource&subject=lake-ds", "/forensics/timeline",
                 "/forensics/findings"):  # fmt: skip
        response = page.goto(history.base + path)
        assert response is not None and response.status == 403
        expect(page.locator("h1")).to_have_text("Not allowed")
        expect(page.locator(".message")).to_contain_text("SysAdmin or the Auditor")
        expect(page.locator("header nav")).to_contain_text("Data sources")
        expect(page.locator(".who .username")).to_have_text("alice")
        check_axe(page)
    refused = [
        orjson.loads(e.metadata)
        for e in _events(history.dstrail, before)
        if e.event_kind == EventKind.TRAIL_READ and e.performed_by == history.alice.id
    ]
    assert [(m["path"], m["refused"]) for m in refused] == [
        ("/forensics/entitlements", "true"),
        ("/forensics/timeline", "true"),
        ("/forensics/findings", "true"),
    ]
    assert orjson.loads(refused[0]["filter"]) == {"of": ["datasource"], "subject": ["lake-ds"]}
    follower = follower_for(history.dstrail.store, settings=history.dstrail.settings,
                            clock=history.dstrail.clock)  # fmt: skip
    finding = findings_page(follower, FindingFilter()).findings[0].finding
    csrf = page.locator("input[name=csrf_token]").first.get_attribute("value")
    posted = page.request.post(
        f"{history.base}/forensics/findings/{finding.id}/acknowledge",
        form={"csrf_token": csrf or "", "note": "not mine to close"},
    )
    assert posted.status == 403 and "Not allowed" in posted.text()
    assert findings_page(follower, FindingFilter()).findings[0].acknowledgement is None


def test_an_auditor_reads_entitlements_and_the_read_is_recorded(
    page: Page, history: History
) -> None:
    sign_in(page, history, history.auditor)
    page.click("header nav >> text=Forensics")
    expect(page.locator("#tab-entitlements")).to_have_attribute("aria-current", "page")
    before = _head(history.dstrail)
    _ask(page, "datasource", "lake-ds", history.moments["T1"])
    expect(page.locator("#subject-heading")).to_contain_text(history.old.id)
    assert _grants(page) == [("owner", "CreateDataSource"), ("listed user", "CreateDataSource")]
    reads = [e for e in _events(history.dstrail, before) if e.event_kind == EventKind.TRAIL_READ]
    assert len(reads) == 1 and reads[0].performed_by == history.auditor.id
    metadata = orjson.loads(reads[0].metadata)
    assert (metadata["surface"], metadata["path"], metadata["rows"]) == (
        "console", "/forensics/entitlements", "2",
    )  # fmt: skip
    assert orjson.loads(metadata["filter"])["dataSourceId"] == history.old.id


# -- entitlements -----------------------------------------------------------------------------------


def test_entitlements_follow_the_history_of_a_data_source(page: Page, history: History) -> None:
    sign_in(page, history, history.admin)
    page.goto(history.base + "/forensics/entitlements")
    t = history.moments
    # T1: created by alice, listing bob
    _ask(page, "datasource", "lake-ds", t["T1"])
    expect(page.locator("#status")).to_have_text("Active")
    assert _grants(page) == [("owner", "CreateDataSource"), ("listed user", "CreateDataSource")]
    assert _reach(page) == {"alice": "owner", "bob": "listed user"}
    owner_event = page.locator("#grants tbody tr").first.locator("a.event-ref")
    assert owner_event.get_attribute("href") == f"/audit/events/{history.seqs['created']}"
    expect(page.locator("#grants tbody tr").first).to_contain_text("by alice")
    expect(page.locator("#no-projects")).to_be_visible()
    check_axe(page)
    # T2: bob replaced by carol (a revoke), attached to churn-model
    _ask(page, "datasource", "lake-ds", t["T2"])
    assert _grants(page) == [
        ("owner", "CreateDataSource"), ("listed user", "DataSourceChangeOfPermissions"),
    ]  # fmt: skip
    assert _reach(page) == {"alice": "owner", "carol": "listed user"}
    expect(page.locator("#projects tbody tr")).to_have_count(1)
    expect(page.locator("#projects")).to_contain_text("churn-model")
    expect(page.locator("#projects")).to_contain_text("DataSourceAssociatedToProject")
    # T3: given to bob (a transfer)
    _ask(page, "datasource", "lake-ds", t["T3"])
    assert _grants(page) == [
        ("owner", "DataSourceChangeOfOwnership"), ("listed user", "DataSourceChangeOfPermissions"),
    ]  # fmt: skip
    assert _reach(page) == {"bob": "owner", "carol": "listed user"}
    transfer = page.locator("#grants tbody tr").first
    expect(transfer).to_contain_text("by alice")
    assert transfer.locator("a.event-ref").get_attribute("href") == (
        f"/audit/events/{history.seqs['transferred']}"
    )
    # T4: shared with everyone: the users that existed then (not dave, created later)
    _ask(page, "datasource", "lake-ds", t["T4"])
    assert ("everyone", "DataSourceChangeOfPermissions") in _grants(page)
    reach = _reach(page)
    assert set(reach) == {"root-admin", "auditor", "alice", "bob", "carol"}
    assert reach["carol"].split() == ["listed", "user", "everyone"]
    expect(page.locator("#count")).to_have_text("(5)")
    # T5: dave exists now, so everyone includes him
    _ask(page, "datasource", "lake-ds", t["T5"])
    assert set(_reach(page)) == {"root-admin", "auditor", "alice", "bob", "carol", "dave"}
    # T6: deleted: nobody; the name, free again, still picks it then
    _ask(page, "datasource", "lake-ds", t["T6"])
    expect(page.locator("#subject-heading")).to_contain_text(history.old.id)
    expect(page.locator("#status")).to_have_text("Deleted")
    expect(page.locator("#no-grants")).to_contain_text("deleted")
    expect(page.locator("#nobody")).to_be_visible()
    check_axe(page)
    # now: the name is the new data source's
    _ask(page, "datasource", "lake-ds")
    expect(page.locator("#subject-heading")).to_contain_text(history.new.id)
    assert _reach(page) == {"alice": "owner"}
    expect(page.locator("#moment")).to_contain_text("now")
    # by id, the deleted one at T3
    _ask(page, "datasource", history.old.id, t["T3"])
    assert _reach(page) == {"bob": "owner", "carol": "listed user"}


def test_what_a_user_could_reach_and_the_links_between(page: Page, history: History) -> None:
    sign_in(page, history, history.admin)
    page.goto(history.base + "/forensics/entitlements")
    t = history.moments

    def reached() -> dict[str, str]:
        rows = page.locator("#reach tbody tr")
        return {
            rows.nth(i).get_attribute("data-data-source") or "": " ".join(
                rows.nth(i).locator("td").nth(1).inner_text().split()
            )
            for i in range(rows.count())
        }

    _ask(page, "user", "bob", t["T1"])
    expect(page.locator("#subject-heading")).to_contain_text(history.bob.id)
    assert reached() == {"lake-ds": "listed user"}
    expect(page.locator("#reach")).to_contain_text("CreateDataSource")
    check_axe(page)
    _ask(page, "user", "bob", t["T2"])
    expect(page.locator("#empty")).to_be_visible()
    _ask(page, "user", "bob", t["T3"])
    assert reached() == {"lake-ds": "owner"}
    expect(page.locator("#reach")).to_contain_text("DataSourceChangeOfOwnership")
    _ask(page, "user", "carol", t["T4"])
    assert reached() == {"lake-ds": "listed user everyone"}
    _ask(page, "user", "dave", t["T4"])
    expect(page.locator("#empty")).to_contain_text("did not exist yet")
    _ask(page, "user", "bob")
    expect(page.locator("#empty")).to_be_visible()
    # from a user to the data source at the same moment, and back to a user
    _ask(page, "user", "bob", t["T3"])
    page.click("#reach tbody tr >> a >> nth=0")
    expect(page.locator("#subject-heading")).to_contain_text(history.old.id)
    expect(page.locator("#f-at")).to_have_value(format_ms(_ms(t["T3"])))
    page.click("#reach a.user-link >> text=carol")
    expect(page.locator("#subject-heading")).to_contain_text("carol")
    # a grant's event opens in the audit trail
    _ask(page, "datasource", "lake-ds", t["T3"])
    page.click("#grants tbody tr >> nth=0 >> a.event-ref")
    expect(page.locator("#event-fields")).to_contain_text(str(history.seqs["transferred"]))
    expect(page.locator("#metadata")).to_contain_text("newOwnerId")


def _ms(typed: str) -> int:
    return parse_iso(typed.replace(" ", "T") + "Z", field="t")


# -- bad input ---------------------------------------------------------------------------------------


def _marked(page: Page, field_id: str, *words: str) -> None:
    """The field is marked invalid and described by a message holding ``words``."""
    field_ = page.locator(f"#{field_id}")
    expect(field_).to_have_attribute("aria-invalid", "true")
    described = (field_.get_attribute("aria-describedby") or "").split()
    assert f"{field_id}-error" in described and f"{field_id}-hint" in described
    for word in words:
        expect(page.locator(f"#{field_id}-error")).to_contain_text(word)


def test_bad_input_marks_the_field_and_says_what_is_accepted(page: Page, history: History) -> None:
    sign_in(page, history, history.admin)
    page.goto(history.base + "/forensics/entitlements")
    with page.expect_response(lambda r: "/forensics/entitlements?" in r.url) as answer:
        _ask(page, "datasource", "lake-ds", "last tuesday")
    assert answer.value.status == 400
    _marked(page, "f-at", "last tuesday", "accepted:", "2026-06-01 12:00")
    expect(page.locator("#f-at")).to_have_value("last tuesday")
    expect(page.locator("#f-subject")).not_to_have_attribute("aria-invalid", "true")
    check_axe(page)
    with page.expect_response(lambda r: "/forensics/entitlements?" in r.url) as answer:
        _ask(page, "datasource", "no-such-ds")
    assert answer.value.status == 404
    _marked(page, "f-subject", "no-such-ds", "accepted:")
    with page.expect_response(lambda r: "/forensics/entitlements?" in r.url) as answer:
        _ask(page, "user", "")
    assert answer.value.status == 400
    _marked(page, "f-subject", "required")
    page.fill("#f-subject", "bob")
    page.fill("#f-at", history.moments["T1"])
    page.fill("#f-at_seq", "12")
    page.click("#answer")
    _marked(page, "f-at_seq", "not both")
    response = page.goto(
        f"{history.base}/forensics/timeline?of=user&subject=bob&from=2026-06-02&to=2026-06-01"
    )
    assert response is not None and response.status == 400
    _marked(page, "f-to", "must not be before")
    response = page.goto(f"{history.base}/forensics/timeline?of=run&subject=not-a-run")
    assert response is not None and response.status == 400
    _marked(page, "f-subject", "run id")
    response = page.goto(f"{history.base}/forensics/timeline?of=user&subject=bob&limit=5000")
    assert response is not None and response.status == 400
    _marked(page, "f-limit", "1 to 1000")
    response = page.goto(f"{history.base}/forensics/findings?severity=urgent&state=maybe")
    assert response is not None and response.status == 400
    _marked(page, "f-severity", "urgent", "low, medium, high")
    _marked(page, "f-state", "open, acknowledged")
    response = page.goto(f"{history.base}/forensics/findings?cursor=nonsense")
    assert response is not None and response.status == 400
    expect(page.locator("#form-error")).to_contain_text("start again")
    response = page.goto(f"{history.base}/forensics/findings/{'0' * 24}")
    assert response is not None and response.status == 404
    expect(page.locator("header nav")).to_contain_text("Forensics")
    check_axe(page)


# -- timelines --------------------------------------------------------------------------------------


def _page_seqs(page: Page) -> list[int]:
    return [int(s or 0) for s in page.locator("#timeline tbody tr").evaluate_all(
        "rows => rows.map(r => r.dataset.seq)"
    )]  # fmt: skip


def test_a_timeline_pages_through_what_a_user_did_and_was_granted(
    page: Page, history: History
) -> None:
    sign_in(page, history, history.admin)
    expected = history.bob_timeline
    assert len(expected) == 26
    page.goto(f"{history.base}/forensics/timeline?of=user&subject=bob&limit=10")
    expect(page.locator("#tab-timeline")).to_have_attribute("aria-current", "page")
    expect(page.locator("#timeline-subject")).to_have_text("bob")
    assert _page_seqs(page) == expected[:10]
    expect(page.locator("#older")).to_have_count(0)
    first = page.locator("#timeline tbody tr").first
    expect(first).to_contain_text("UserCreated")
    created = page.locator(f"#timeline tr[data-seq='{history.seqs['created']}']")
    expect(created).to_contain_text("grant change")
    expect(created).to_contain_text("granted: listed user")
    expect(page.locator("#timeline")).to_contain_text("raw/1.csv")
    expect(page.locator("#timeline")).to_contain_text("raw/0/")
    check_axe(page)
    page.click("#newer")
    assert _page_seqs(page) == expected[10:20]
    revoked = page.locator(f"#timeline tr[data-seq='{history.seqs['revoked']}']")
    expect(revoked).to_contain_text("revoked: listed user")
    refused = page.locator("#timeline tr[data-category=refused]")
    expect(refused).to_have_count(2)
    expect(refused.first).to_contain_text("notPermitted")
    expect(page.locator(f"#timeline tr[data-seq='{history.seqs['transferred']}']")).to_contain_text(
        "granted: owner"
    )
    page.click("#newer")
    assert _page_seqs(page) == expected[20:]
    expect(page.locator("#newer")).to_have_count(0)
    expect(page.locator(f"#timeline tr[data-seq='{history.seqs['deleted']}']")).to_contain_text(
        "revoked: owner"
    )
    page.click("#older")
    assert _page_seqs(page) == expected[10:20]
    page.click("#older")
    assert _page_seqs(page) == expected[:10]
    expect(page.locator("#older")).to_have_count(0)
    # a window: only the days of the transfer
    page.fill("#f-from", _typed(_ms(history.moments["T2"])))
    page.fill("#f-to", history.moments["T3"])
    page.select_option("#f-limit", "25")
    page.click("#show")
    assert _page_seqs(page) == [
        s for s in expected if history.seqs["revoked"] < s <= history.seqs["transferred"]
    ]


def test_timelines_of_a_data_source_and_of_a_run(page: Page, history: History) -> None:
    sign_in(page, history, history.admin)
    page.goto(f"{history.base}/forensics/timeline")
    page.select_option("#f-of", "datasource")
    page.fill("#f-subject", "lake-ds")
    page.click("#show")
    expect(page.locator("#timeline-subject")).to_have_text("lake-ds")
    expect(page.locator("#timeline-summary")).to_contain_text(history.new.id)
    kinds = _cells(page, "#timeline tbody td:nth-child(3)")
    assert kinds == ["CreateDataSource", "AccessDataSource", "AccessDataSource"]
    expect(page.locator("#timeline")).to_contain_text("fresh/a.parquet")
    page.select_option("#f-of", "run")
    page.fill("#f-subject", history.run.id)
    page.click("#show")
    rows = page.locator("#timeline tr[data-category=access]")
    expect(rows).to_have_count(2)
    expect(rows.first).to_contain_text("fresh/")


# -- findings ---------------------------------------------------------------------------------------


def test_findings_are_listed_filtered_opened_and_acknowledged(
    browser: Browser, page: Page, history: History
) -> None:
    sign_in(page, history, history.admin)
    page.goto(f"{history.base}/forensics/findings")
    expect(page.locator("#tab-findings")).to_have_attribute("aria-current", "page")
    expect(page.locator("#findings tbody tr").first).to_be_visible()
    rules = set(_cells(page, "#findings tbody td:nth-child(3)"))
    assert {"everyoneShare", "firstAccess"} <= rules
    page.select_option("#f-rule", "everyoneShare")
    page.click("#apply")
    expect(page.locator("#findings tbody tr")).to_have_count(1)
    check_axe(page)
    row = page.locator("#findings tbody tr").first
    expect(row).to_contain_text("lake-ds")
    expect(row.locator(".badge.open")).to_be_visible()
    page.select_option("#f-rule", "")
    page.fill("#f-user", "bob")
    page.click("#apply")
    assert set(_cells(page, "#findings tbody td:nth-child(5)")) == {"bob"}
    page.fill("#f-user", "")
    page.select_option("#f-severity", "low")
    page.click("#apply")
    assert set(_cells(page, "#findings tbody td:nth-child(2)")) == {"low"}
    page.goto(f"{history.base}/forensics/findings?rule=everyoneShare&datasource=lake-ds&state=open")
    expect(page.locator("#findings tbody tr")).to_have_count(1)
    page.click("#findings a.finding-link")
    expect(page.locator("#rule")).to_have_text("everyoneShare")
    finding_id = page.url.rsplit("/", 1)[-1]
    linked = page.locator(f"table.events tr[data-seq='{history.seqs['everyone']}']")
    expect(linked).to_contain_text("DataSourceChangeOfPermissions")
    expect(page.locator("#raised")).to_contain_text("ForensicFindingRaised")
    check_axe(page)

    other = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
    sign_in(other, history, history.auditor)
    other.goto(page.url)
    expect(other.locator("#ack-form")).to_be_visible()

    with page.expect_response(lambda r: r.url.endswith("/acknowledge")) as answer:
        page.click("#acknowledge")
    assert answer.value.status == 400
    _marked(page, "f-note", "required")
    note = "Shared on purpose for onboarding; reviewed with bob."
    page.fill("#f-note", note)
    page.click("#acknowledge")
    expect(page.locator("#done")).to_contain_text("ForensicFindingAcknowledged")
    expect(page.locator("#acknowledged")).to_contain_text("root-admin")
    expect(page.locator("#ack-note")).to_have_text(note)
    check_axe(page)

    other.fill("#f-note", "me too")
    with other.expect_response(lambda r: r.url.endswith("/acknowledge")) as answer:
        other.click("#acknowledge")
    assert answer.value.status == 409
    expect(other.locator("#ack-error")).to_contain_text("acknowledged already by root-admin")
    expect(other.locator("#acknowledged")).to_contain_text("root-admin")
    other.context.close()

    page.goto(f"{history.base}/forensics/findings?rule=everyoneShare&state=acknowledged")
    expect(page.locator("#findings tbody tr .badge.ack")).to_have_count(1)
    page.goto(f"{history.base}/audit?range=24h&kind=ForensicFindingAcknowledged")
    expect(page.locator("#total")).to_have_text("1")
    page.click("table.events a.event-link >> nth=0")
    expect(page.locator("#metadata")).to_contain_text(finding_id)
    expect(page.locator("#metadata")).to_contain_text(note)
    api = page.request.get(
        f"{history.base}/api/datasource/v1/audit?eventKinds=ForensicFindingAcknowledged"
        f"&startTime={format_ms(0)}",
        headers=history.admin.headers,
    )
    assert api.status == 200
    events = api.json()
    assert [
        (e["eventKind"], e["metadata"]["findingId"], e["metadata"]["note"]) for e in events
    ] == [("ForensicFindingAcknowledged", finding_id, note)]
    assert events[0]["performedBy"] == history.admin.id


def test_an_auditor_acknowledges_a_finding(page: Page, history: History) -> None:
    sign_in(page, history, history.auditor)
    page.goto(f"{history.base}/forensics/findings?rule=firstAccess&user=bob&state=open")
    expect(page.locator("#findings tbody tr")).to_have_count(1)
    page.click("#findings a.finding-link")
    expect(page.locator("#summary")).to_contain_text("bob")
    page.fill("#f-note", "bob's first use, expected")
    page.click("#acknowledge")
    expect(page.locator("#acknowledged")).to_contain_text("auditor")
    page.goto(f"{history.base}/forensics/findings?rule=firstAccess&user=bob")
    expect(page.locator("#findings tbody tr .badge.ack")).to_have_count(1)
