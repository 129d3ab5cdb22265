"""``dstrail stream``: destinations added, listed with their lag, paused, resumed, replayed,
given a new secret and removed, each change recorded once as ``operator``; a secret is read
from stdin only, shown once when dstrail made it, and never recorded or listed; bad input
changes nothing. ``stream run`` delivers as a real process and stops cleanly on a signal."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import orjson
import pytest

from dstrail.audit.query import read_page
from dstrail.cli import main
from dstrail.context import Dstrail
from dstrail.domain.audit_filter import AuditFilter
from dstrail.domain.timestamps import format_ms
from dstrail.domain.trail import EVENT_KIND, METADATA, PERFORMED_BY, PLATFORM_KINDS, EventKind
from dstrail.domain.users import OPERATOR
from dstrail.services.streams import new_webhook_secret
from tests.client.conftest import free_port
from tests.streaming.receivers import WebhookReceiver
from tests.support import SettableClock, audit_count, create_dataset, make_user

HOOK = "http://127.0.0.1:9/hook"
EVERY_PLATFORM_CHANGE = AuditFilter(
    start_ms=0, end_ms=2**62, event_kinds=tuple(k for k in EventKind if k in PLATFORM_KINDS)
)
STREAM_KINDS = {k.value for k in EventKind if k.name.startswith("STREAM_")}


def run(
    dstrail: Dstrail, capsys: pytest.CaptureFixture[str], *args: str, stdin: str | None = None
) -> tuple[int, str, str]:
    """``dstrail stream ARGS`` in this process against the test's database: (status, stdout,
    stderr); ``stdin`` is what the command reads there."""
    storage = [
        "--database-url", dstrail.settings.database_url or "",
        "--data-dir", str(dstrail.settings.data_dir),
    ]  # fmt: skip
    saved = sys.stdin
    sys.stdin = io.StringIO(stdin if stdin is not None else "")
    try:
        code = main(["stream", *args, *storage])
    finally:
        sys.stdin = saved
    out, err = capsys.readouterr()
    return code, out, err


def one(result: tuple[int, str, str]) -> dict[str, Any]:
    """The one JSON object a command printed (it succeeded)."""
    code, out, err = result
    assert (code, err) == (0, ""), err
    lines = out.splitlines()
    assert len(lines) == 1, out
    document: dict[str, Any] = json.loads(lines[0])
    return document


def refused(result: tuple[int, str, str], status: int) -> str:
    """The one error line of a refused command."""
    code, out, err = result
    assert (code, out) == (status, ""), (code, out, err)
    assert err.startswith("dstrail: error: ") and err.count("\n") == 1, err
    return err.removeprefix("dstrail: error: ").strip()


def changes(dstrail: Dstrail) -> list[tuple[str, str, dict[str, str], str]]:
    """Every stream change in the trail, oldest first: (kind, performedBy, metadata, the raw
    row as text)."""
    with dstrail.store.read() as tx:
        page = read_page(tx, EVERY_PLATFORM_CHANGE, after=None, size=1000)
    rows = [row for row in reversed(page.rows) if row[EVENT_KIND] in STREAM_KINDS]
    return [
        (row[EVENT_KIND], row[PERFORMED_BY], orjson.loads(row[METADATA]), repr(row)) for row in rows
    ]


def whole_trail_text(dstrail: Dstrail) -> str:
    """Every event (every column) and every stored destination row, as text."""
    with dstrail.store.read() as tx:
        rows = tx.integrity.events_after(0, limit=10_000)
        stored = tx.connection.exec_driver_sql("SELECT * FROM stream_destinations").all()
    return repr(rows) + repr(stored)


def with_events(dstrail: Dstrail) -> None:
    """A trail with a few events: two users, a data source."""
    owner = make_user(dstrail, "owner")
    make_user(dstrail, "reader")
    create_dataset(dstrail, owner, "files")


LISTED = {
    "name", "id", "kind", "format", "target", "config", "eventKinds", "dataSourceNames",
    "hasSecret", "paused", "cursor", "lagEvents", "lagSeconds", "delivered", "lastDelivery",
    "lastError", "lastErrorAt", "leaseHolder", "leaseUntil", "createdAt", "createdBy", "errors",
}  # fmt: skip


def test_each_change_is_recorded_once_by_operator_and_the_secret_never(
    dstrail: Dstrail, capsys: pytest.CaptureFixture[str]
) -> None:
    with_events(dstrail)
    added = one(run(
        dstrail, capsys, "add", "siem", "--kind", "webhook", "--url", HOOK, "--from-seq", "1",
        "--event-kind", "AccessDataSource", "--event-kind", "CreateDataSource",
        "--data-source", "files", "--config", "body=ndjson",
    ))  # fmt: skip
    generated = added.pop("secret")
    assert generated.startswith("whsec_") and len(generated) == 50
    assert set(added) == LISTED
    assert (added["kind"], added["format"], added["target"], added["cursor"]) == (
        "webhook", "native", HOOK, 0,
    )  # fmt: skip
    assert added["config"] == {"url": HOOK, "body": "ndjson"}
    assert added["eventKinds"] == ["AccessDataSource", "CreateDataSource"]
    assert (added["dataSourceNames"], added["hasSecret"], added["paused"]) == (
        ["files"],
        True,
        False,
    )
    assert (added["createdBy"], added["delivered"], added["lastDelivery"]) == (OPERATOR.id, 0, None)
    assert added["lagEvents"] == audit_count(dstrail)  # the whole trail, its own event included

    [(kind, by, metadata, _)] = changes(dstrail)
    assert (kind, by) == ("StreamDestinationAdded", OPERATOR.id)
    assert metadata == {
        "performedByUsername": "operator",
        "streamId": added["id"], "streamName": "siem", "kind": "webhook", "format": "native",
        "target": HOOK, "fromSeq": "1", "eventKinds": "AccessDataSource,CreateDataSource",
        "dataSourceNames": "files", "secretSet": "true",
    }  # fmt: skip

    paused = one(run(dstrail, capsys, "pause", "siem"))
    assert paused["paused"] is True
    assert one(run(dstrail, capsys, "pause", "siem"))["paused"] is True  # no change: not recorded
    assert one(run(dstrail, capsys, "resume", "siem"))["paused"] is False
    replayed = one(run(dstrail, capsys, "replay", "siem", "--from-seq", "3"))
    assert (replayed["cursor"], replayed["lagEvents"]) == (2, audit_count(dstrail) - 2)
    rotated = one(run(dstrail, capsys, "rotate-secret", "siem"))
    second = rotated.pop("secret")
    assert second.startswith("whsec_") and second != generated
    mine = new_webhook_secret()
    given = one(run(dstrail, capsys, "rotate-secret", "siem", "--secret-stdin", stdin=mine + "\n"))
    assert "secret" not in given and given["hasSecret"] is True
    listed = run(dstrail, capsys, "list")
    assert json.loads(listed[1])["name"] == "siem"
    removed = one(run(dstrail, capsys, "remove", "siem"))
    assert removed == {"name": "siem", "id": added["id"], "removed": True, "cursor": 2}
    assert run(dstrail, capsys, "list")[:2] == (0, "")

    recorded = changes(dstrail)
    assert [(kind, by) for kind, by, _, _ in recorded] == [
        ("StreamDestinationAdded", OPERATOR.id),
        ("StreamDestinationPaused", OPERATOR.id),
        ("StreamDestinationResumed", OPERATOR.id),
        ("StreamDestinationReplayed", OPERATOR.id),
        ("StreamDestinationSecretRotated", OPERATOR.id),
        ("StreamDestinationSecretRotated", OPERATOR.id),
        ("StreamDestinationRemoved", OPERATOR.id),
    ]
    base = {"performedByUsername": "operator", "streamId": added["id"], "streamName": "siem"}
    assert [metadata for _, _, metadata, _ in recorded[1:]] == [
        {**base, "cursor": "0"},
        {**base, "cursor": "0"},
        {**base, "fromSeq": "3", "previousCursor": "0"},
        base,
        base,
        {**base, "cursor": "2", "target": HOOK},
    ]
    text = whole_trail_text(dstrail) + listed[1]
    for secret in (generated, second, mine):
        assert secret not in text
        assert secret.removeprefix("whsec_") not in text


def test_a_secret_comes_from_stdin_and_is_never_shown(
    dstrail: Dstrail, capsys: pytest.CaptureFixture[str]
) -> None:
    token = "0b0e1f6a-5c1d-4e7b-9a51-hec-token"
    splunk = one(run(
        dstrail, capsys, "add", "splunk", "--kind", "splunk-hec", "--url", "https://splunk:8088",
        "--config", "index=audit", "--secret-stdin", "--format", "ocsf", stdin=f"{token}\n",
    ))  # fmt: skip
    assert "secret" not in splunk
    assert (splunk["hasSecret"], splunk["format"], splunk["config"]) == (
        True, "ocsf", {"url": "https://splunk:8088", "index": "audit"},
    )  # fmt: skip
    syslog = one(run(
        dstrail, capsys, "add", "syslog", "--kind", "syslog", "--host", "siem.example.com",
        "--port", "6514", "--tls", "--format", "cef",
    ))  # fmt: skip
    assert (syslog["target"], syslog["hasSecret"]) == ("siem.example.com:6514 (TLS)", False)
    assert syslog["config"] == {"host": "siem.example.com", "port": "6514", "tls": "true"}
    nats = one(run(
        dstrail, capsys, "add", "bus", "--kind", "nats", "--url", "nats://bus:4222",
        "--subject", "audit.dstrail",
    ))  # fmt: skip
    assert (nats["target"], nats["hasSecret"]) == ("nats://bus:4222 audit.dstrail", False)
    new_token = "second-hec-token"
    assert "secret" not in one(
        run(dstrail, capsys, "rotate-secret", "splunk", "--secret-stdin", stdin=new_token)
    )
    assert [(m["streamName"], m.get("secretSet")) for _, _, m, _ in changes(dstrail)] == [
        ("splunk", "true"), ("syslog", "false"), ("bus", "false"), ("splunk", None),
    ]  # fmt: skip
    listed = run(dstrail, capsys, "list")[1]
    assert [json.loads(line)["name"] for line in listed.splitlines()] == ["bus", "splunk", "syslog"]
    text = whole_trail_text(dstrail) + listed
    assert token not in text and new_token not in text


def test_list_shows_the_lag_and_what_the_workers_did(
    dstrail: Dstrail, capsys: pytest.CaptureFixture[str]
) -> None:
    with_events(dstrail)
    before = audit_count(dstrail)
    one(run(dstrail, capsys, "add", "all", "--kind", "webhook", "--url", HOOK, "--from-seq", "1"))
    one(run(dstrail, capsys, "add", "new", "--kind", "webhook", "--url", HOOK))
    with dstrail.store.write() as tx:  # a worker delivered 'new' up to the trail's end
        new = tx.streams.by_name("new")
        assert new is not None
        assert tx.streams.take_lease(new.id, owner="host:1:abc", now_ms=0, until_ms=2**40)
        assert tx.streams.advance(
            new.id, owner="host:1:abc", generation=0, cursor=before + 2, delivered=1,
            now_ms=1_700_000_000_000,
        )  # fmt: skip
        tx.streams.note_error(
            new.id, owner="host:1:abc", error="HTTP 503", now_ms=1_700_000_001_000
        )
    code, out, _ = run(dstrail, capsys, "list")
    every, caught_up = (json.loads(line) for line in out.splitlines())
    assert code == 0 and set(every) == LISTED
    size = audit_count(dstrail)
    assert size == before + 2
    assert (every["name"], every["cursor"], every["lagEvents"]) == ("all", 0, size)
    assert isinstance(every["lagSeconds"], float) and every["lagSeconds"] >= 0
    assert (every["delivered"], every["lastDelivery"], every["leaseHolder"]) == (0, None, "")
    assert {k: caught_up[k] for k in (
        "name", "cursor", "lagEvents", "lagSeconds", "delivered", "lastDelivery", "lastError",
        "lastErrorAt", "leaseHolder", "leaseUntil", "errors",
    )} == {
        "name": "new", "cursor": size, "lagEvents": 0, "lagSeconds": 0.0, "delivered": 1,
        "errors": 1,
        "lastDelivery": format_ms(1_700_000_000_000), "lastError": "HTTP 503",
        "lastErrorAt": format_ms(1_700_000_001_000), "leaseHolder": "host:1:abc",
        "leaseUntil": format_ms(2**40),
    }  # fmt: skip


def test_replay_by_time_starts_at_the_first_event_at_or_after_it(
    dstrail: Dstrail, clock: SettableClock, capsys: pytest.CaptureFixture[str]
) -> None:
    clock.now_ms -= 3_600_000  # the test's events an hour ago, the CLI's (real clock) now
    with_events(dstrail)
    early = audit_count(dstrail)
    at = clock.advance(1000)
    owner = make_user(dstrail, "later")
    later = audit_count(dstrail)
    assert later > early
    clock.advance(1000)
    create_dataset(dstrail, owner, "more")
    one(run(dstrail, capsys, "add", "siem", "--kind", "webhook", "--url", HOOK))
    for when, cursor in ((at - 500, early), (at, early), (at + 1, later), (0, 0)):
        replayed = one(run(dstrail, capsys, "replay", "siem", "--from-time", format_ms(when)))
        assert replayed["cursor"] == cursor, format_ms(when)
        assert changes(dstrail)[-1][2]["fromSeq"] == str(cursor + 1)
    offset = one(run(dstrail, capsys, "replay", "siem", "--from-time", "2200-01-01T02:00:00+02:00"))
    size = audit_count(dstrail)
    assert offset["cursor"] == size - 1  # nothing that late: from the next event (this replay's)


def test_bad_input_is_refused_and_changes_nothing(
    dstrail: Dstrail, capsys: pytest.CaptureFixture[str]
) -> None:
    with_events(dstrail)
    one(run(dstrail, capsys, "add", "siem", "--kind", "webhook", "--url", HOOK))
    before = whole_trail_text(dstrail)
    size = audit_count(dstrail)
    add = ("add", "x", "--kind")
    cases: list[tuple[tuple[str, ...], str | None, int, str]] = [
        ((*add, "kafka"), None, 2, "kind: unknown value 'kafka'; accepted: webhook, splunk-hec"),
        ((*add, "webhook", "--url", HOOK, "--format", "xml"), None, 2, "format: unknown value"),
        ((*add, "webhook"), None, 2, "config: a webhook destination needs url"),
        ((*add, "webhook", "--url", "ftp://h/x"), None, 2, "config.url: 'ftp://h/x' must be"),
        ((*add, "webhook", "--url", "https://u:p@h/x"), None, 2, "config.url: put credentials"),
        ((*add, "webhook", "--url", HOOK, "--config", "nope"), None, 2, "--config: 'nope' is not"),
        ((*add, "webhook", "--url", HOOK, "--config", "url=x"), None, 2, "--config: 'url' is given"),
        ((*add, "webhook", "--url", HOOK, "--config", "index=a"), None, 2, "config: 'index' is not"),
        ((*add, "syslog", "--host", "h", "--port", "99999"), None, 2, "config.port: '99999'"),
        ((*add, "splunk-hec", "--url", HOOK), None, 2, "secret: a splunk-hec destination needs"),
        ((*add, "webhook", "--url", HOOK, "--secret-stdin"), "", 2, "--secret-stdin: stdin gave no"),
        ((*add, "webhook", "--url", HOOK, "--secret-stdin"), "short\n", 2, "secret: a webhook"),
        ((*add, "webhook", "--url", HOOK, "--from-seq", "0"), None, 2, f"fromSeq: must be 1 to {size + 1}"),
        ((*add, "webhook", "--url", HOOK, "--event-kind", "Nope"), None, 2, "eventKinds: "),
        ((*add, "webhook", "--url", HOOK, "--data-source", "a b"), None, 2, "dataSourceNames: 'a b'"),
        (("add", "Bad Name", "--kind", "webhook", "--url", HOOK), None, 2, "name: 'Bad Name' is not"),
        (("add", "siem", "--kind", "webhook", "--url", HOOK), None, 1, "a stream destination is already named 'siem'"),
        (("replay", "siem", "--from-seq", str(size + 2)), None, 2, f"fromSeq: must be 1 to {size + 1}"),
        (("replay", "siem", "--from-time", "yesterday"), None, 2, "--from-time: cannot parse"),
        (("replay", "siem", "--from-time", "2024-01-01T00:00:00"), None, 2, "--from-time: '2024-01-01T00:00:00' has no time zone"),
        (("rotate-secret", "siem", "--secret-stdin"), "not-a-key\n", 2, "secret: a webhook signing key"),
        (("pause", "nope"), None, 1, "no stream destination named 'nope'"),
        (("resume", "nope"), None, 1, "no stream destination named 'nope'"),
        (("replay", "nope", "--from-seq", "1"), None, 1, "no stream destination named 'nope'"),
        (("rotate-secret", "nope"), None, 1, "no stream destination named 'nope'"),
        (("remove", "nope"), None, 1, "no stream destination named 'nope'"),
    ]  # fmt: skip
    for args, stdin, status, message in cases:
        assert message in refused(run(dstrail, capsys, *args, stdin=stdin), status), args
    for usage in (("replay", "siem"), ("replay", "siem", "--from-seq", "1", "--from-time", "x")):
        with pytest.raises(SystemExit) as exited:
            run(dstrail, capsys, *usage)
        assert exited.value.code == 2
        assert "--from-seq" in capsys.readouterr().err
    with pytest.raises(SystemExit):  # no secret on the command line: there is no such option
        run(dstrail, capsys, "add", "x", "--kind", "webhook", "--url", HOOK, "--secret", "s")
    assert "unrecognized arguments: --secret" in capsys.readouterr().err
    assert whole_trail_text(dstrail) == before


# -- stream run --------------------------------------------------------------------------------


def _running(dstrail: Dstrail, log: Path) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DSTRAIL_")}
    env.update(DSTRAIL_STREAM_POLL_SECONDS="0.02")
    return subprocess.Popen(
        [
            sys.executable, "-m", "dstrail.cli", "stream", "run",
            "--database-url", dstrail.settings.resolved_database_url(),
            "--data-dir", str(dstrail.settings.data_dir),
        ],
        env=env, stdout=subprocess.DEVNULL, stderr=log.open("wb"),
    )  # fmt: skip


def _listed(dstrail: Dstrail, capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    code, out, _ = run(dstrail, capsys, "list")
    assert code == 0
    document: dict[str, Any] = json.loads(out)
    return document


@pytest.mark.parametrize("how", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "Ctrl-C"])
def test_run_delivers_until_a_signal_then_gives_its_lease_up(
    dstrail: Dstrail, capsys: pytest.CaptureFixture[str], tmp_path: Path, how: signal.Signals
) -> None:
    if how is signal.SIGINT and not dstrail.settings.resolved_database_url().startswith("sqlite"):
        pytest.skip("Ctrl-C once is enough (SQLite); SIGTERM runs on both databases")
    with_events(dstrail)
    secret = new_webhook_secret()
    receiver = WebhookReceiver(secret=secret).start()
    try:
        one(run(
            dstrail, capsys, "add", "hook", "--kind", "webhook", "--url", receiver.url,
            "--from-seq", "1", "--secret-stdin", stdin=secret,
        ))  # fmt: skip
        size = audit_count(dstrail)
        log = tmp_path / "run.log"
        process = _running(dstrail, log)
        try:
            records = receiver.wait_for(size, timeout=60)
            assert [r["seq"] for r in records[:size]] == list(range(1, size + 1))
            deadline = time.monotonic() + 30
            while _listed(dstrail, capsys)["cursor"] < size:
                assert time.monotonic() < deadline, log.read_text()
                time.sleep(0.05)
            assert _listed(dstrail, capsys)["leaseHolder"] != ""
            process.send_signal(how)
            assert process.wait(timeout=30) == 0, log.read_text()
        finally:
            if process.poll() is None:
                process.kill()
                process.wait(timeout=30)
    finally:
        receiver.stop()
    text = log.read_text()
    assert "Traceback" not in text and secret not in text
    assert "every database connection is closed" in text
    after = _listed(dstrail, capsys)
    assert (after["cursor"], after["lagEvents"], after["delivered"]) == (size, 0, size)
    assert (after["leaseHolder"], after["leaseUntil"], after["lastError"]) == ("", None, "")


def test_check_refuses_an_unreachable_receiver_and_adds_nothing(
    dstrail: Dstrail, capsys: pytest.CaptureFixture[str]
) -> None:
    before = audit_count(dstrail)
    port = free_port()
    code, out, err = run(
        dstrail, capsys, "add", "relay", "--kind", "syslog", "--host", "127.0.0.1",
        "--port", str(port), "--check",
    )  # fmt: skip
    assert (code, out) == (2, "")
    assert err.startswith(
        f"dstrail: error: --check: the receiver cannot be reached: syslog 127.0.0.1:{port}: "
    )
    code, _, err = run(
        dstrail, capsys, "add", "hook", "--kind", "webhook", "--url", HOOK, "--check"
    )
    assert code == 2 and "--check: a webhook is checked with its signing key" in err
    assert audit_count(dstrail) == before
