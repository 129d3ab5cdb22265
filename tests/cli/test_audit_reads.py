"""``dstrail audit query``, ``export`` and ``proof`` record their reads of the trail
(``AuditTrailRead``, surface ``cli``, by the operator), on both databases; bad options record
nothing; a query whose output is closed part-way records the rows it wrote."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from dstrail.audit.query import CHUNK_ROWS
from dstrail.cli import main
from dstrail.context import Dstrail
from dstrail.domain.timestamps import DAY_MS, format_ms, parse_iso
from dstrail.domain.users import OPERATOR
from dstrail.settings import Settings
from tests.api.test_trail_reads import metadata, one_read, reads, recording_refused, some_events
from tests.integrity.trails import bulk_load
from tests.support import SettableClock, audit_count


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    """Checkpoints every 4 events (and on the first), for proofs and bundles."""
    return Settings(
        data_dir=tmp_path / "data", database_url=database_url, checkpoint_every_events=4
    )


def storage(dstrail: Dstrail) -> list[str]:
    return [
        "--database-url",
        str(dstrail.settings.database_url),
        "--data-dir",
        str(dstrail.settings.data_dir),
    ]


def cli(dstrail: Dstrail, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    capsys.readouterr()
    status = main([*args, *storage(dstrail)])
    return status, capsys.readouterr().out


def test_query_export_and_proof_record_the_operators_reads(
    dstrail: Dstrail, clock: SettableClock, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    first = some_events(dstrail, clock)
    start = format_ms(first)
    with one_read(dstrail) as found:
        status, out = cli(
            dstrail, capsys, "audit", "query", "--data-source-name", "ds-a",
            "--start-time", start, "--format", "csv",
        )  # fmt: skip
    assert status == 0 and len(out.splitlines()) == 1 + 3
    [read] = found
    assert read["performedBy"] == OPERATOR.id and read["performedByUsername"] == "operator"
    assert (read["surface"], read["command"], read["format"]) == ("cli", "audit query", "csv")
    assert (read["rows"], read["complete"]) == ("3", "true")
    assert read["filter"]["startTime"] == start and read["filter"]["dataSourceNames"] == ["ds-a"]
    with one_read(dstrail) as found:
        status, out = cli(dstrail, capsys, "audit", "query")
    assert status == 0 and len(orjson.loads(out)) == 5
    assert found[0]["rows"] == "5" and found[0]["format"] == "json"
    asked = found[0]["filter"]
    assert set(asked) == {"startTime", "endTime"}  # the last 24 hours of the CLI's clock
    assert parse_iso(asked["endTime"], field="") - parse_iso(asked["startTime"], field="") == DAY_MS
    for file_format, key in (("json", "events"), ("tlog-proof", "proofs")):
        out_file = tmp_path / f"bundle-{file_format}.json"
        with one_read(dstrail) as found:
            status, _ = cli(
                dstrail, capsys, "audit", "export", "--data-source-name", "ds-b",
                "--start-time", start, "--format", file_format, "--out", str(out_file),
            )  # fmt: skip
        assert status == 0
        assert len(orjson.loads(out_file.read_bytes())[key]) == 2
        [read] = found
        assert (read["command"], read["format"], read["rows"]) == (
            "audit export", file_format, "2",
        )  # fmt: skip
        assert read["filter"]["dataSourceNames"] == ["ds-b"]
    with one_read(dstrail) as found:
        status, out = cli(dstrail, capsys, "audit", "proof", "3")
    assert status == 0 and out.startswith("c2sp.org/tlog-proof@v1")
    assert (found[0]["command"], found[0]["filter"], found[0]["rows"]) == (
        "audit proof", {"seq": 3}, "1",
    )  # fmt: skip


def test_bad_options_record_nothing(
    dstrail: Dstrail, clock: SettableClock, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    some_events(dstrail, clock)
    before = audit_count(dstrail)
    for args in (
        ("audit", "query", "--format", "xml"),
        ("audit", "query", "--event-kind", "NoSuchKind"),
        ("audit", "query", "--start-time", "yesterday"),
        ("audit", "export", "--format", "xml", "--out", str(tmp_path / "x")),
        ("audit", "export", "--out", str(tmp_path / "no-such-directory" / "x")),
        ("audit", "proof", "3", "--out", str(tmp_path / "no-such-directory" / "x")),
        ("audit", "proof", "0"),
    ):
        assert cli(dstrail, capsys, *args)[0] == 2, args
    assert audit_count(dstrail) == before


def test_a_read_that_cannot_be_recorded_writes_no_file_and_fails(
    dstrail: Dstrail, clock: SettableClock, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    some_events(dstrail, clock)
    files = tmp_path / "files"
    files.mkdir()
    with recording_refused(dstrail):
        for args in (
            ("audit", "export", "--out", str(files / "bundle.json")),
            ("audit", "proof", "3", "--out", str(files / "event.tlog-proof")),
            ("audit", "proof", "3"),
        ):
            status, out = cli(dstrail, capsys, *args)
            assert (status, out) == (1, ""), args
        assert list(files.iterdir()) == []
        status, out = cli(dstrail, capsys, "audit", "query")
        assert status == 1
        assert '"ds-a"' in out and not out.rstrip().endswith("]")  # cut short of its end
    assert reads(dstrail) == []


def test_a_query_whose_output_is_closed_part_way_records_the_rows_written(
    dstrail: Dstrail,
) -> None:
    total = bulk_load(dstrail, 2 * CHUNK_ROWS + 500)
    query = subprocess.Popen(
        [sys.executable, "-m", "dstrail.cli", "audit", "query", "--format", "text",
         *storage(dstrail)],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    assert query.stdout is not None
    assert query.stdout.read(1000)  # a little of it, then the reader goes away (`| head`)
    query.stdout.close()
    assert query.wait(timeout=120) == 0  # a closed pipe is not an error
    [event] = reads(dstrail)
    read = metadata(event)
    assert (read["command"], read["complete"]) == ("audit query", "false")
    assert int(read["rows"]) < total
