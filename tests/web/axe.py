"""axe-core (from npm, pinned in tests/web/axe/package.json) run in the page a browser test is on.

``make`` (and .ci/run) install it with ``npm install --prefix tests/web/axe``. Every rule axe runs
by default is checked, none is turned off, and ``target-size`` (WCAG 2.2 AA, 24x24 px targets;
off in axe's defaults) is turned on: with it, axe runs every WCAG 2.0, 2.1 and 2.2 A and AA rule
and its best practices. A page passes only with 0 violations.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from playwright.sync_api import Page

AXE_JS = Path(__file__).parent / "axe" / "node_modules" / "axe-core" / "axe.min.js"

_RUN = """async () => {
  const results = await window.axe.run(document, {
    resultTypes: ["violations"],
    rules: { "target-size": { enabled: true } },
  });
  return results.violations.map((v) => ({
    id: v.id,
    impact: v.impact,
    help: v.help,
    nodes: v.nodes.map((n) => ({ target: n.target.join(" "), summary: n.failureSummary })),
  }));
}"""


def _require_axe() -> None:
    if AXE_JS.exists():
        return
    message = f"{AXE_JS} is missing: run `make setup` (npm install --prefix tests/web/axe)"
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


def axe_violations(page: Page) -> list[dict[str, Any]]:
    """axe-core's violations for the page as it is now (axe is injected once per document)."""
    _require_axe()
    if not page.evaluate("() => typeof window.axe === 'object'"):
        page.add_script_tag(path=str(AXE_JS))
    violations: list[dict[str, Any]] = page.evaluate(_RUN)
    return violations


def describe(violations: list[dict[str, Any]]) -> str:
    """One block per violation: its id, impact, what it means and each failing node."""
    lines: list[str] = []
    for violation in violations:
        lines.append(f"{violation['id']} ({violation['impact']}): {violation['help']}")
        for node in violation["nodes"]:
            summary = " ".join(str(node["summary"] or "").split())
            lines.append(f"    {node['target']}: {summary}")
    return "\n".join(lines)


def check_axe(page: Page) -> None:
    """Assert that axe-core finds 0 violations on the page, printing each one if it does not."""
    violations = axe_violations(page)
    if violations:
        report = describe(violations)
        print(f"axe-core violations on {page.url}:\n{report}")
        raise AssertionError(f"axe-core: {len(violations)} violation(s) on {page.url}\n{report}")
