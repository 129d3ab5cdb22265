"""Screenshots of the console for docs/screenshots (run by hand, not a test).

dstrail demo --no-serve --data-dir /tmp/dstrail-shots > /tmp/demo.txt
.venv/bin/python -m tests.web.make_screenshots /tmp/dstrail-shots "$(grep 'admin API key' /tmp/demo.txt | awk '{print $4}')"
"""

from __future__ import annotations

import sys
from datetime import datetime, timedelta
from pathlib import Path
from urllib.parse import urlencode

from playwright.sync_api import Page, sync_playwright

from dstrail.app import create_app
from dstrail.context import open_dstrail
from dstrail.settings import Settings
from tests.web.browser import CHROMIUM, CHROMIUM_ARGS, serving

OUT = Path(__file__).resolve().parents[2] / "docs" / "screenshots"


def _sign_in(page: Page, base: str, api_key: str) -> None:
    page.goto(f"{base}/signin")
    page.fill("#api_key", api_key)
    page.click("button[type=submit]")


def _forensics(page: Page, base: str) -> None:
    """The forensics pages: who could use s3-ds now, the findings, the most urgent one, and
    the timeline of its user around it."""
    page.goto(f"{base}/forensics/entitlements?of=datasource&subject=s3-ds")
    page.screenshot(path=str(OUT / "forensics-entitlements.png"), full_page=True)
    page.goto(f"{base}/forensics/findings")
    page.screenshot(path=str(OUT / "forensics-findings.png"))
    urgent = page.locator("#findings tr[data-rule=transferThenDelete]")
    when = datetime.fromisoformat(str(urgent.locator("time").get_attribute("datetime")))
    urgent.locator("a.finding-link").click()
    page.screenshot(path=str(OUT / "forensics-finding.png"), full_page=True)
    window = urlencode(
        {
            "of": "user",
            "subject": "ml-engineer",
            "from": (when - timedelta(hours=30)).strftime("%Y-%m-%d %H:%M"),
            "to": (when + timedelta(hours=30)).strftime("%Y-%m-%d %H:%M"),
            "limit": "12",
        }
    )
    page.goto(f"{base}/forensics/timeline?{window}")
    page.screenshot(path=str(OUT / "forensics-timeline.png"), full_page=True)


def _management(page: Page, base: str) -> None:
    """The permission editor's review (who gains and who loses access; cancelled, so nothing
    is saved) and the event page of a change of permissions, usernames beside the ids."""
    page.goto(f"{base}/datasources")
    page.click("text=s3-ds")
    page.uncheck("#user-list li[data-username=ml-engineer] input")
    page.check("#user-list li[data-username=compliance-auditor] input")
    page.click("#save-permissions")
    page.screenshot(path=str(OUT / "permissions-review.png"), full_page=True)
    page.click("#cancel")
    page.goto(f"{base}/audit?range=6mo&kind=DataSourceChangeOfPermissions")
    page.click("table.events a.event-link >> nth=0")
    page.screenshot(path=str(OUT / "event-permissions.png"), full_page=True)


def main(data_dir: str, api_key: str) -> None:
    dstrail = open_dstrail(Settings(data_dir=Path(data_dir)))
    OUT.mkdir(parents=True, exist_ok=True)
    with serving(create_app(dstrail)) as base, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 900}, timezone_id="Europe/Paris")
        _sign_in(page, base, api_key)
        page.goto(f"{base}/audit?range=30d")
        page.screenshot(path=str(OUT / "audit-trail.png"), full_page=False)
        page.click("table.events a.event-link >> nth=0")
        page.screenshot(path=str(OUT / "event-detail.png"))
        page.goto(f"{base}/datasources")
        page.screenshot(path=str(OUT / "data-sources.png"))
        page.click("text=s3-ds")
        page.screenshot(path=str(OUT / "data-source.png"))
        _management(page, base)
        _forensics(page, base)
        phone = browser.new_page(
            viewport={"width": 390, "height": 844},
            device_scale_factor=2,
            is_mobile=True,
            timezone_id="America/New_York",
        )
        _sign_in(phone, base, api_key)
        phone.goto(f"{base}/audit?range=7d")
        phone.screenshot(path=str(OUT / "audit-trail-phone.png"))
        phone.goto(f"{base}/datasources")
        phone.screenshot(path=str(OUT / "data-sources-phone.png"))
        browser.close()
    dstrail.store.dispose()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
