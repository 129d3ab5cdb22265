"""The layering the import contract (``lint-imports``, in ``make test``) cannot see: routes,
console views, commands, the data path and the demo reach the store only through services."""

from __future__ import annotations

import re
from pathlib import Path

import dstrail

SOURCE = Path(dstrail.__file__).parent
ENTRY_POINTS = ("api", "web", "cli", "proxy", "app.py", "demo.py")
REPOSITORIES = re.findall(
    r"self\.(\w+) = \w+Repository\(", (SOURCE / "store" / "repositories.py").read_text()
)
REPOSITORY_CALL = re.compile(rf"\btx\.({'|'.join([*REPOSITORIES, 'connection'])})\b")


def test_no_entry_point_touches_a_repository() -> None:
    found = [
        f"{path.relative_to(SOURCE)}:{number}: {line.strip()}"
        for entry in ENTRY_POINTS
        for path in ([SOURCE / entry] if entry.endswith(".py") else (SOURCE / entry).rglob("*.py"))
        for number, line in enumerate(path.read_text().splitlines(), start=1)
        if REPOSITORY_CALL.search(line)
    ]
    assert found == []


def test_the_check_sees_a_repository_call() -> None:
    assert {"audit", "users", "forensics", "findings", "retention"} <= set(REPOSITORIES)
    assert REPOSITORY_CALL.search("        rows = tx.audit.page(audit_filter)")
    assert REPOSITORY_CALL.search("        found = tx.findings.add(found)")
    assert not REPOSITORY_CALL.search("        rows = read_page(tx, audit_filter)")
