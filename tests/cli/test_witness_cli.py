"""``dstrail witness``: witnesses added, listed and removed, each change recorded once as
``operator`` (``WitnessAdded``, ``WitnessRemoved``); bad input exits 2 naming what is
accepted, and changes nothing; ``submit`` prints each witness's outcome; the logs witnessed;
the witness's own key (a file of its own, 0600, never printed)."""

from __future__ import annotations

import json
import stat
from typing import Any

import orjson
import pytest

from dstrail.audit.checkpoints import checkpoint_now
from dstrail.audit.query import read_page
from dstrail.cli import main
from dstrail.context import Dstrail
from dstrail.domain.audit_filter import AuditFilter
from dstrail.domain.trail import EVENT_KIND, METADATA, PERFORMED_BY, PLATFORM_KINDS, EventKind
from dstrail.domain.users import OPERATOR
from tests.integrity.witness_double import WitnessDouble, parse_vkey, raw_public, vkey_of
from tests.support import audit_count

WITNESS = WitnessDouble(name="w.example/w1")
OTHER = WitnessDouble(name="w.example/w2")
URL = "https://w.example/w1/"
EVERY_PLATFORM_CHANGE = AuditFilter(
    start_ms=0, end_ms=2**62, event_kinds=tuple(k for k in EventKind if k in PLATFORM_KINDS)
)
WITNESS_KINDS = {EventKind.WITNESS_ADDED.value, EventKind.WITNESS_REMOVED.value}


@pytest.fixture(autouse=True)
def _own_origin(monkeypatch: pytest.MonkeyPatch) -> None:
    """The commands run with an origin of the log's own (the default one draws a warning:
    see ``test_adding_a_witness_under_the_default_origin_warns``)."""
    monkeypatch.setenv("DSTRAIL_AUDIT_LOG_ORIGIN", "cli-test.example/audit")


def run(dstrail: Dstrail, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """``dstrail witness ARGS`` in this process against the test's database."""
    storage = [
        "--database-url", dstrail.settings.database_url or "",
        "--data-dir", str(dstrail.settings.data_dir),
    ]  # fmt: skip
    code = main(["witness", *args, *storage])
    out, err = capsys.readouterr()
    return code, out, err


def one(result: tuple[int, str, str]) -> dict[str, Any]:
    code, out, err = result
    assert (code, err) == (0, ""), err
    (line,) = out.splitlines()
    document: dict[str, Any] = json.loads(line)
    return document


def refused(result: tuple[int, str, str], status: int) -> str:
    code, out, err = result
    assert (code, out) == (status, ""), (code, out, err)
    assert err.startswith("dstrail: error: ") and err.count("\n") == 1, err
    return err.removeprefix("dstrail: error: ").strip()


def changes(dstrail: Dstrail) -> list[tuple[str, str, dict[str, str]]]:
    with dstrail.store.read() as tx:
        page = read_page(tx, EVERY_PLATFORM_CHANGE, after=None, size=1000)
    return [
        (row[EVENT_KIND], row[PERFORMED_BY], orjson.loads(row[METADATA]))
        for row in reversed(page.rows)
        if row[EVENT_KIND] in WITNESS_KINDS
    ]


def test_add_list_remove_each_recorded_once_by_operator(
    dstrail: Dstrail, capsys: pytest.CaptureFixture[str]
) -> None:
    added = one(run(dstrail, capsys, "add", WITNESS.name, "--vkey", WITNESS.vkey, "--url", URL))
    assert added == {
        "name": WITNESS.name, "vkey": WITNESS.vkey, "url": URL.rstrip("/"), "cosignedSize": 0,
        "lastError": "", "lastAttempt": None, "addedAt": added["addedAt"],
        "addedBy": OPERATOR.id,
    }  # fmt: skip
    assert one(run(dstrail, capsys, "list")) == added
    second = one(run(dstrail, capsys, "add", OTHER.name, "--vkey", OTHER.vkey, "--url", URL))
    code, out, _ = run(dstrail, capsys, "list")
    assert code == 0 and [json.loads(line) for line in out.splitlines()] == [added, second]
    removed = one(run(dstrail, capsys, "remove", WITNESS.name))
    assert removed == {**added, "removed": True}
    assert one(run(dstrail, capsys, "list")) == second

    base = {"performedByUsername": "operator", "url": URL.rstrip("/")}
    assert changes(dstrail) == [
        ("WitnessAdded", OPERATOR.id, {**base, "witnessName": WITNESS.name, "vkey": WITNESS.vkey}),
        ("WitnessAdded", OPERATOR.id, {**base, "witnessName": OTHER.name, "vkey": OTHER.vkey}),
        ("WitnessRemoved", OPERATOR.id,
         {**base, "witnessName": WITNESS.name, "vkey": WITNESS.vkey, "cosignedSize": "0"}),
    ]  # fmt: skip


LOG_KEY = vkey_of("w.example/w1", 0x01, WITNESS.public_key)
_, HEX_ID, KEY = WITNESS.vkey.split("+", 2)
SPACED_ID = f"{WITNESS.name}+{HEX_ID[:4]} {HEX_ID[4:]}+{KEY}"
WRONG_ID = f"{WITNESS.name}+00000000+{KEY}"
BAD_INPUT: dict[str, tuple[list[str], str]] = {
    "a log key, not a cosignature key": (
        [WITNESS.name, "--vkey", LOG_KEY, "--url", URL], "signature type 0x04",
    ),
    "a name that is not the key's": (
        ["w.example/other", "--vkey", WITNESS.vkey, "--url", URL], "the key name of the witness's vkey",
    ),
    "a key id that does not match": (
        [WITNESS.name, "--vkey", WRONG_ID, "--url", URL], "the key id does not match",
    ),
    "a key id with a space": (
        [WITNESS.name, "--vkey", SPACED_ID, "--url", URL], "accepted: <name>+<8 hex digits>",
    ),
    "not a vkey": ([WITNESS.name, "--vkey", "hello", "--url", URL], "vkey: accepted"),
    "a name with a space": (["w example", "--vkey", WITNESS.vkey, "--url", URL], "name:"),
    "an ftp URL": ([WITNESS.name, "--vkey", WITNESS.vkey, "--url", "ftp://w.example/"], "http:// or https://"),
    "credentials in the URL": ([WITNESS.name, "--vkey", WITNESS.vkey, "--url", "https://u:p@w.example/"], "no credentials"),
    "a query": ([WITNESS.name, "--vkey", WITNESS.vkey, "--url", "https://w.example/?a=1"], "no credentials, query"),
    "no host": ([WITNESS.name, "--vkey", WITNESS.vkey, "--url", "https:///w1"], "with a host"),
    "a bad port": ([WITNESS.name, "--vkey", WITNESS.vkey, "--url", "https://w.example:99999/"], "url:"),
    "a control character": ([WITNESS.name, "--vkey", WITNESS.vkey, "--url", "https://w.example/\x07"], "url"),
}  # fmt: skip


@pytest.mark.parametrize("case", list(BAD_INPUT))
def test_bad_input_exits_2_naming_what_is_accepted_and_changes_nothing(
    dstrail: Dstrail, capsys: pytest.CaptureFixture[str], case: str
) -> None:
    size = audit_count(dstrail)
    args, expected = BAD_INPUT[case]
    message = refused(run(dstrail, capsys, "add", *args), 2)
    assert expected in message
    assert run(dstrail, capsys, "list")[:2] == (0, "")
    assert audit_count(dstrail) == size


def test_a_taken_name_or_an_unknown_one_exits_1_and_changes_nothing(
    dstrail: Dstrail, capsys: pytest.CaptureFixture[str]
) -> None:
    added = one(run(dstrail, capsys, "add", WITNESS.name, "--vkey", WITNESS.vkey, "--url", URL))
    size = audit_count(dstrail)
    taken = refused(
        run(dstrail, capsys, "add", WITNESS.name, "--vkey", WITNESS.vkey, "--url", URL), 1
    )
    assert "already named" in taken
    assert "no witness named" in refused(run(dstrail, capsys, "remove", "w.example/none"), 1)
    assert one(run(dstrail, capsys, "list")) == added
    assert audit_count(dstrail) == size and len(changes(dstrail)) == 1


def test_submit_prints_each_witness_outcome(
    dstrail: Dstrail, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(dstrail, capsys, "submit") == (0, "", "")  # no witness: nothing to do
    with WitnessDouble(name="w.example/live") as live:
        live.trust(dstrail.signer.public_key_document()["vkey"])
        one(run(dstrail, capsys, "add", live.name, "--vkey", live.vkey, "--url", live.url))
        checkpoint_now(dstrail.store, now_ms=dstrail.clock())
        size = audit_count(dstrail)
        cosigned = one(run(dstrail, capsys, "submit"))
        assert cosigned == {
            "witness": live.name, "outcome": "cosigned", "treeSize": size, "cosignedSize": size,
            "error": "",
        }  # fmt: skip
        assert one(run(dstrail, capsys, "submit"))["outcome"] == "up-to-date"
        assert one(run(dstrail, capsys, "list"))["cosignedSize"] == size
        one(run(dstrail, capsys, "add", WITNESS.name, "--vkey", WITNESS.vkey, "--url",
                "http://127.0.0.1:9/w1"))  # fmt: skip
        checkpoint_now(dstrail.store, now_ms=dstrail.clock())
        code, out, err = run(dstrail, capsys, "submit")
    assert (code, err) == (1, "")  # one witness did not cosign
    printed = {line["witness"]: line for line in map(json.loads, out.splitlines())}
    assert printed[live.name]["outcome"] == "cosigned"
    assert printed[WITNESS.name]["outcome"] == "failed"
    assert "could not be reached" in printed[WITNESS.name]["error"]


def test_the_witness_key_is_its_own_file_and_is_never_printed(
    dstrail: Dstrail, capsys: pytest.CaptureFixture[str]
) -> None:
    document = one(run(dstrail, capsys, "public-key"))
    key_file = dstrail.settings.data_dir / "witness-signing.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    secret = key_file.read_text().strip()
    assert document["name"] == "cli-test.example/witness"  # the origin's host, then /witness
    verifier = parse_vkey(document["vkey"])
    assert (verifier.name, verifier.kind) == ("cli-test.example/witness", 0x04)
    assert verifier.public_key != dstrail.signer.public_raw  # not the audit signing key
    code, out, err = run(dstrail, capsys, "public-key", "--format", "vkey")
    assert (code, out, err) == (0, document["vkey"] + "\n", "")  # the same key: made once
    assert secret not in json.dumps(document) + out
    assert "--format" in refused(run(dstrail, capsys, "public-key", "--format", "pem"), 2)


def test_the_logs_witnessed_are_named_by_their_ed25519_vkey(
    dstrail: Dstrail, capsys: pytest.CaptureFixture[str]
) -> None:
    origin = "b.example/audit"
    log_vkey = vkey_of(origin, 0x01, raw_public(WitnessDouble().key))
    for vkey, expected in (
        (vkey_of(origin, 0x04, WITNESS.public_key), "signature type 0x01"),
        (vkey_of("c.example/audit", 0x01, WITNESS.public_key), "is not the origin"),
        ("nonsense", "vkey: accepted"),
    ):
        assert expected in refused(run(dstrail, capsys, "logs", "add", origin, "--vkey", vkey), 2)
    assert run(dstrail, capsys, "logs", "list")[:2] == (0, "")
    added = one(run(dstrail, capsys, "logs", "add", origin, "--vkey", log_vkey))
    assert (added["origin"], added["vkey"], added["treeSize"]) == (origin, log_vkey, 0)
    assert one(run(dstrail, capsys, "logs", "list")) == added
    assert "witnessed already" in refused(
        run(dstrail, capsys, "logs", "add", origin, "--vkey", log_vkey), 1
    )


@pytest.mark.parametrize(
    ("args", "expected"),
    [(["--prefix", "no-slash"], "--prefix"), (["--port", "0"], "--port")],
)
def test_witness_serve_refuses_bad_options(
    dstrail: Dstrail, capsys: pytest.CaptureFixture[str], args: list[str], expected: str
) -> None:
    assert expected in refused(run(dstrail, capsys, "serve", *args), 2)


def test_adding_a_witness_under_the_default_origin_warns(
    dstrail: Dstrail, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DSTRAIL_AUDIT_LOG_ORIGIN")
    code, out, err = run(dstrail, capsys, "add", WITNESS.name, "--vkey", WITNESS.vkey, "--url", URL)
    assert code == 0 and json.loads(out)["name"] == WITNESS.name  # added all the same
    assert err.startswith("dstrail: warning: this log's origin is the default dstrail.local/audit")
    assert "DSTRAIL_AUDIT_LOG_ORIGIN" in err
