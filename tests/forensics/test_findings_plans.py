"""A page of findings, filtered by rule, user or data source (by id or by name), reads an index
in the list's order (newest first) and sorts nothing: the cost of a page does not grow with
the findings that match. Checked in each database's own plan of the statement the store sends
(PostgreSQL told to avoid a scan of the table, as it would choose on a large one)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from sqlalchemy import event as sa_event

from dstrail.context import Dstrail
from dstrail.domain.forensics.findings import FindingCursor, FindingFilter, Rule

USER_ID = "a" * 24
DS_ID = "b" * 24
FILTERS = {
    "rule": (FindingFilter(rules=(Rule.FIRST_ACCESS,)), "ix_forensic_findings_rule_seq"),
    "user id": (FindingFilter(user_ids=(USER_ID,)), "ix_forensic_findings_user_seq"),
    "username": (FindingFilter(usernames=("alice",)), "ix_forensic_findings_username_seq"),
    "data source id": (FindingFilter(data_source_ids=(DS_ID,)), "ix_forensic_findings_ds_seq"),
    "data source name": (
        FindingFilter(data_source_names=("sales",)),
        "ix_forensic_findings_ds_name_seq",
    ),
}
"""Each filter, and the index that answers it (not the list's own, scanned to the end)."""


def _page_statement(dstrail: Dstrail, wanted: FindingFilter) -> tuple[str, Any]:
    captured: list[tuple[str, Any]] = []

    def capture(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if "forensic_findings" in statement:
            captured.append((statement, parameters))

    sa_event.listen(dstrail.store.engine, "before_cursor_execute", capture)
    try:
        with dstrail.store.read() as tx:
            assert tx.findings.page(wanted) == []
    finally:
        sa_event.remove(dstrail.store.engine, "before_cursor_execute", capture)
    [found] = captured
    return found


@pytest.mark.parametrize("later", [False, True], ids=["first page", "later page"])
@pytest.mark.parametrize("name", FILTERS)
def test_a_filtered_page_reads_an_index_in_order(dstrail: Dstrail, name: str, later: bool) -> None:
    wanted, index = FILTERS[name]
    if later:  # the cursor bounds the index range, not a filter over every newer row
        wanted = replace(wanted, cursor=FindingCursor(seq=1000, id="c" * 24))
    statement, parameters = _page_statement(dstrail, wanted)
    with dstrail.store.engine.connect() as connection:
        if dstrail.store.dialect == "sqlite":
            rows = connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", parameters)
            plan = "\n".join(str(row[-1]) for row in rows)
            assert f"USING INDEX {index} " in plan, plan
            assert "TEMP B-TREE" not in plan, plan
        else:
            connection.exec_driver_sql("SET LOCAL enable_seqscan = off")
            rows = connection.exec_driver_sql(f"EXPLAIN {statement}", parameters)
            plan = "\n".join(str(row[0]) for row in rows)
            assert f" {index} " in plan, plan
            assert "Sort" not in plan, plan
            assert "Filter" not in plan, plan
