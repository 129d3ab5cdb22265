"""``dstrail forensics entitlements`` and ``timeline``: readable lines (control characters
escaped) or the API's JSON, each answer recorded as the operator's read of the trail; bad
options exit 2 naming the option, an unknown subject exits 1, neither records anything."""

from __future__ import annotations

import orjson
import pytest

from dstrail.cli import main
from dstrail.context import Dstrail
from dstrail.domain.datasources import Permissions
from dstrail.domain.users import OPERATOR
from dstrail.services import datasources as ds_service
from tests.api.test_trail_reads import one_read, reads
from tests.forensics.test_timeline import read_key, use
from tests.support import Login, SettableClock, create_dataset


def cli(dstrail: Dstrail, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    capsys.readouterr()
    status = main(
        [*args, "--database-url", str(dstrail.settings.database_url),
         "--data-dir", str(dstrail.settings.data_dir)]
    )  # fmt: skip
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def test_entitlements_print_each_grant_with_its_event_and_are_recorded(
    dstrail: Dstrail, capsys: pytest.CaptureFixture[str], alice: Login, bob: Login
) -> None:
    create_dataset(
        dstrail, alice, "payroll", permissions=Permissions(is_everyone=False, user_ids=(bob.id,))
    )
    with one_read(dstrail) as found:
        status, out, _err = cli(
            dstrail, capsys, "forensics", "entitlements", "--data-source", "payroll"
        )
    assert status == 0
    lines = out.splitlines()
    assert lines[0].startswith("data source payroll (") and "Active after event" in lines[0]
    assert any(
        line.split()[:2] == ["owner", "alice"] and "(CreateDataSource)" in line for line in lines
    )
    assert "could use it: 2 user(s)" in lines
    [read] = found
    assert read["surface"] == "cli" and read["command"] == "forensics entitlements"
    assert read["performedBy"] == OPERATOR.id and read["filter"]["dataSourceName"] == "payroll"

    status, out, _err = cli(dstrail, capsys, "forensics", "entitlements", "--user", "bob", "--json")
    assert status == 0
    document = orjson.loads(out)
    assert (
        document["subject"] == "user" and document["dataSources"][0]["dataSourceName"] == "payroll"
    )


def test_a_timeline_prints_one_line_an_entry_with_control_characters_escaped(
    dstrail: Dstrail, capsys: pytest.CaptureFixture[str], clock: SettableClock, alice: Login
) -> None:
    ds = create_dataset(dstrail, alice, "notes")
    with dstrail.store.write() as tx:
        ds_service.update_data_source(
            tx, dstrail.vault, data_source_id=ds.id, actor=alice.user, now_ms=clock(),
            change=ds_service.DataSourceUpdate(description="two\nlines"),
        )  # fmt: skip
    use(dstrail, ds, alice, read_key("two\nlines.csv"))
    status, out, _err = cli(dstrail, capsys, "forensics", "timeline", "--data-source", "notes")
    assert status == 0
    header, *entries = out.splitlines()
    assert header.startswith(f"dataSource notes ({ds.id})")
    assert [line.split()[3] for line in entries] == [
        "CreateDataSource", "UpdateDataSource", "AccessDataSource"
    ]  # fmt: skip
    assert "objectKey=two\\nlines.csv" in entries[-1]
    status, out, _err = cli(
        dstrail, capsys, "forensics", "timeline", "--user", "alice", "--limit", "1", "--json"
    )
    page = orjson.loads(out)
    assert status == 0 and len(page["entries"]) == 1 and page["next"] is not None
    status, out, _err = cli(
        dstrail, capsys, "forensics", "timeline", "--user", "alice", "--limit", "1",
        "--after", str(page["next"]),
    )  # fmt: skip
    assert status == 0 and out.splitlines()[-1].startswith("more: --after ")


@pytest.mark.parametrize(
    ("args", "status", "says"),
    [
        (["entitlements"], 2, "give exactly one of --data-source-id, --data-source, --user-id, --user"),
        (["entitlements", "--user", "a", "--at", "soon"], 2, "--at: cannot parse 'soon'"),
        (["entitlements", "--user", "a", "--at", "1", "--at-seq", "1"], 2, "give --at or --at-seq, not both"),
        (["timeline", "--run", "x"], 2, "--run: 'x' is not an id"),
        (["timeline", "--user", "a", "--limit", "5000"], 2, "--limit: '5000' is not accepted"),
        (["entitlements", "--user", "nobody"], 1, "username: no user 'nobody'"),
        (["timeline", "--data-source", "none-such"], 1, "no data source 'none-such'"),
    ],
)  # fmt: skip
def test_bad_options_and_unknown_subjects_say_so_and_record_nothing(
    dstrail: Dstrail, capsys: pytest.CaptureFixture[str], args: list[str], status: int, says: str
) -> None:
    before = len(reads(dstrail))
    got, out, err = cli(dstrail, capsys, "forensics", *args)
    assert (got, out) == (status, "")
    assert says in err
    assert len(reads(dstrail)) == before
