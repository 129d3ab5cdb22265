"""Reads of the trail are themselves in the trail (``AuditTrailRead``), on both databases: each
read of the audit API, its exports and downloads, proofs that carry an event and entry bundles
records once who read, through what, which filter and how many events; refused reads are
recorded as such; bad input records nothing; a stream the client leaves is recorded with the
rows sent; and a read that cannot be recorded returns nothing."""

from __future__ import annotations

import socket
import struct
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import uvicorn
from fastapi.testclient import TestClient
from sqlalchemy import text

from dstrail.app import create_app
from dstrail.audit.query import CHUNK_ROWS
from dstrail.context import Dstrail
from dstrail.domain.audit_filter import AuditFilter
from dstrail.domain.timestamps import DAY_MS, format_ms
from dstrail.domain.trail import EventKind, StoredEvent
from dstrail.domain.users import Role
from dstrail.settings import Settings
from tests.integrity.trails import bulk_load
from tests.support import Login, SettableClock, audit_count, make_user, new_event

AUDIT = "/api/datasource/v1/audit"
INTEGRITY = f"{AUDIT}/integrity"
TLOG = "/api/dstrail/v1/tlog"
TRAIL_READ = EventKind.TRAIL_READ.value


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    """Checkpoints every 4 events (and on the first), for the proofs."""
    return Settings(
        data_dir=tmp_path / "data", database_url=database_url, checkpoint_every_events=4
    )


def reads(dstrail: Dstrail) -> list[StoredEvent]:
    """Every ``AuditTrailRead``, oldest first, straight from the store (which records none)."""
    everything = AuditFilter(
        start_ms=0, end_ms=dstrail.clock() + DAY_MS, event_kinds=(EventKind.TRAIL_READ,)
    )
    with dstrail.store.read() as tx:
        rows = tx.audit.page(everything, limit=100_000)
    return [StoredEvent._make(row) for row in reversed(rows)]


def metadata(event: StoredEvent) -> dict[str, str]:
    found: dict[str, str] = orjson.loads(event.metadata)
    return found


@contextmanager
def one_read(dstrail: Dstrail) -> Iterator[list[dict[str, Any]]]:
    """The block records exactly one read; its metadata (``filter`` parsed) lands in the list,
    with ``performedBy``."""
    before = len(reads(dstrail))
    found: list[dict[str, Any]] = []
    yield found
    new = reads(dstrail)[before:]
    assert len(new) == 1, [metadata(e) for e in new]
    [event] = new
    assert (event.data_source_id, event.data_source_name, event.data_source_type) == ("", "", "")
    found.append(
        {
            **metadata(event),
            "filter": orjson.loads(metadata(event)["filter"]),
            "performedBy": event.performed_by,
        }
    )


def append(dstrail: Dstrail, ts_ms: int, **fields: Any) -> None:
    with dstrail.store.write() as tx:
        tx.audit.append(new_event(ts_ms, **fields))


def get(client: TestClient, login: Login, path: str, **params: Any) -> httpx.Response:
    response = client.get(path, params=params, headers=login.headers)
    assert response.status_code == 200, response.text
    return response


def window(start_ms: int, end_ms: int) -> dict[str, str]:
    return {"startTime": format_ms(start_ms), "endTime": format_ms(end_ms)}


def some_events(dstrail: Dstrail, clock: SettableClock) -> int:
    """Three accesses to ds-a and two to ds-b in the last hour; the time of the first."""
    first = clock() - 3_600_000
    for i, name in enumerate(("ds-a", "ds-b", "ds-a", "ds-b", "ds-a")):
        append(dstrail, first + i, data_source_name=name)
    return first


# -- the audit API ------------------------------------------------------------------------------


def test_each_read_of_the_audit_api_records_who_which_filter_and_how_many(
    client: TestClient, dstrail: Dstrail, admin: Login, clock: SettableClock
) -> None:
    first = some_events(dstrail, clock)
    now = clock()
    with one_read(dstrail) as found:
        assert len(get(client, admin, AUDIT).json()) == 5
    assert found == [
        {
            "performedByUsername": admin.user.username,
            "performedBy": admin.id,
            "surface": "api",
            "path": AUDIT,
            "filter": window(now - DAY_MS, now),  # the default window, resolved
            "rows": "5",
            "complete": "true",
        }
    ]
    narrowed = {
        "startTime": format_ms(first),
        "dataSourceNames": ["ds-a"],
        "eventKinds": ["AccessDataSource"],
    }
    with one_read(dstrail) as found:
        assert len(get(client, admin, f"{AUDIT}/", **narrowed).json()) == 3
    [read] = found
    assert read["path"] == f"{AUDIT}/" and read["rows"] == "3"
    assert read["filter"] == {**narrowed, "endTime": format_ms(now)}  # up to now
    with one_read(dstrail) as found:
        assert get(client, admin, AUDIT, dataSourceNames="nothing-here").json() == []
    assert found[0]["rows"] == "0" and found[0]["filter"]["dataSourceNames"] == ["nothing-here"]


def test_reads_are_not_returned_by_default_only_when_asked_for_by_kind(
    client: TestClient, dstrail: Dstrail, admin: Login, clock: SettableClock
) -> None:
    some_events(dstrail, clock)
    for _ in range(2):
        assert {e["eventKind"] for e in get(client, admin, AUDIT).json()} == {"AccessDataSource"}
    asked = get(client, admin, AUDIT, eventKinds=TRAIL_READ).json()
    # the two reads before it, newest first: its own is recorded once its rows are known
    assert [e["eventKind"] for e in asked] == [TRAIL_READ, TRAIL_READ]
    assert [e["metadata"]["surface"] for e in asked] == ["api", "api"]
    assert {e["performedBy"] for e in asked} == {admin.id}
    assert {e["dataSourceName"] for e in asked} == {""}
    assert len(get(client, admin, AUDIT, eventKinds=TRAIL_READ).json()) == 3
    both = get(client, admin, AUDIT, eventKinds=[TRAIL_READ, "AccessDataSource"]).json()
    assert len(both) == 4 + 5


def test_pages_record_their_limit_cursor_and_rows(
    client: TestClient, dstrail: Dstrail, admin: Login, clock: SettableClock
) -> None:
    some_events(dstrail, clock)
    now = clock()
    with one_read(dstrail) as found:
        page = get(client, admin, AUDIT, limit=2)
    assert found[0]["filter"] == {**window(now - DAY_MS, now), "limit": 2}
    assert found[0]["rows"] == "2"
    pages = 1
    while "link" in page.headers:
        next_url = page.headers["link"].split(">")[0].lstrip("<")
        with one_read(dstrail) as found:
            page = client.get(next_url, headers=admin.headers)
        pages += 1
        [read] = found
        assert read["filter"]["limit"] == 2 and read["filter"]["cursor"]
        assert read["rows"] == str(len(page.json()))
    assert pages == 3 and read["rows"] == "1"


# -- exports and downloads ----------------------------------------------------------------------


def test_exports_and_downloads_record_their_surface_format_and_rows(
    client: TestClient, dstrail: Dstrail, admin: Login, clock: SettableClock
) -> None:
    some_events(dstrail, clock)
    run_id = "c" * 24
    append(dstrail, clock() - 10, data_source_name="ds-c", run_id=run_id, project_id="e" * 24)
    now = clock()
    with one_read(dstrail) as found:
        csv_file = get(client, admin, f"{AUDIT}/export", dataSourceNames="ds-a")
    assert len(csv_file.text.splitlines()) == 1 + 3
    assert found[0] | {"filter": None} == {
        "performedByUsername": admin.user.username, "performedBy": admin.id,
        "surface": "export", "path": f"{AUDIT}/export", "filter": None, "rows": "3",
        "complete": "true", "format": "csv",
    }  # fmt: skip
    assert found[0]["filter"] == {**window(now - DAY_MS, now), "dataSourceNames": ["ds-a"]}
    with one_read(dstrail) as found:
        get(client, admin, f"{AUDIT}/export", format="jsonl")
    assert (found[0]["format"], found[0]["rows"]) == ("jsonl", "6")
    for json_file, file_format in (("true", "json"), ("false", "text")):
        with one_read(dstrail) as found:
            get(client, admin, "/v4/datasource/audit/download", jsonFile=json_file)
        [read] = found
        assert (read["surface"], read["path"]) == ("download", "/v4/datasource/audit/download")
        assert (read["format"], read["rows"]) == (file_format, "6")
        assert read["filter"] == window(now - 183 * DAY_MS, now)
    with one_read(dstrail) as found:
        lines = get(client, admin, "/v4/datasource/audit/download/runs", runIds=run_id)
    assert len(lines.text.splitlines()) == 1
    [read] = found
    assert (read["surface"], read["format"], read["rows"]) == ("download", "jsonl", "1")
    assert read["filter"] == {**window(0, now), "runIds": [run_id]}


def test_a_streamed_read_records_every_row_it_sent(client: TestClient, dstrail: Dstrail) -> None:
    total = bulk_load(dstrail, CHUNK_ROWS + 1_500)  # more than a chunk: the answer streams
    reader = make_user(dstrail, "streamed-reader", Role.SYS_ADMIN)
    with one_read(dstrail) as found:
        response = get(client, reader, AUDIT)
    assert "content-length" not in response.headers  # streamed, not one body
    assert len(response.json()) == total
    assert (found[0]["rows"], found[0]["complete"]) == (str(total), "true")
    with one_read(dstrail) as found:
        lines = get(client, reader, f"{AUDIT}/export", format="jsonl").text.splitlines()
    assert found[0]["rows"] == str(len(lines)) == str(total)


# -- proofs and the transparency log ------------------------------------------------------------


def test_proofs_and_entry_bundles_are_reads_of_their_events_hash_tiles_are_not(
    client: TestClient, dstrail: Dstrail, admin: Login, clock: SettableClock
) -> None:
    some_events(dstrail, clock)  # the admin's user and key, then 5: checkpoints at 1 and 4
    with one_read(dstrail) as found:
        proof = get(client, admin, f"{INTEGRITY}/inclusion", seq=3)
    assert proof.json()["event"]["dataSourceName"] == "ds-a"
    assert found[0] == {
        "performedByUsername": admin.user.username, "performedBy": admin.id,
        "surface": "proof", "path": f"{INTEGRITY}/inclusion", "filter": {"seq": 3},
        "rows": "1", "complete": "true", "format": "inclusion",
    }  # fmt: skip
    with one_read(dstrail) as found:
        get(client, admin, f"{INTEGRITY}/proof", seq=3, treeSize=4)
    assert found[0]["filter"] == {"seq": 3, "treeSize": 4}
    assert (found[0]["surface"], found[0]["format"]) == ("proof", "tlog-proof")
    with one_read(dstrail) as found:
        bundle = get(client, admin, f"{TLOG}/tile/entries/000.p/5").content
    assert count_entries(bundle) == 5
    assert (found[0]["surface"], found[0]["path"]) == ("tlog", f"{TLOG}/tile/entries/000.p/5")
    assert (found[0]["filter"], found[0]["rows"]) == ({"firstSeq": 1, "lastSeq": 5}, "5")
    # No event in these: nothing recorded.
    before = audit_count(dstrail)
    get(client, admin, f"{TLOG}/checkpoint")
    get(client, admin, f"{TLOG}/tile/0/000.p/4")
    get(client, admin, f"{INTEGRITY}/checkpoint")
    get(client, admin, f"{INTEGRITY}/public-key")
    get(client, admin, f"{INTEGRITY}/consistency", first=1, second=4)
    assert audit_count(dstrail) == before


def count_entries(bundle: bytes) -> int:
    count, offset = 0, 0
    while offset < len(bundle):
        (length,) = struct.unpack_from(">H", bundle, offset)
        offset += 2 + length
        count += 1
    return count


# -- what records nothing, and refusals -----------------------------------------------------------


BAD_READS = [
    (AUDIT, {"startTime": "2024-02-01T00:00:00Z", "endTime": "2024-01-01T00:00:00Z"}),
    (AUDIT, {"eventKinds": "NoSuchKind"}),
    (AUDIT, {"dataSourceIds": "not-an-id"}),
    (AUDIT, {"unknown": "1"}),
    (AUDIT, {"limit": "0"}),
    (AUDIT, {"cursor": "1.1"}),
    (AUDIT, {"limit": "2", "cursor": "junk"}),
    (f"{AUDIT}/export", {"format": "xml"}),
    ("/v4/datasource/audit/download", {"jsonFile": "maybe"}),
    ("/v4/datasource/audit/download/runs", {}),
    ("/v4/datasource/audit/download/runs", {"runIds": "nope"}),
    (f"{INTEGRITY}/inclusion", {"seq": "0"}),
    (f"{INTEGRITY}/proof", {"seq": "x"}),
    (f"{TLOG}/tile/entries/1", {}),
]


def test_bad_input_and_nothing_found_record_nothing(
    client: TestClient, dstrail: Dstrail, admin: Login, clock: SettableClock
) -> None:
    some_events(dstrail, clock)
    before = audit_count(dstrail)
    for path, params in BAD_READS:
        response = client.get(path, params=params, headers=admin.headers)
        assert response.status_code == 400, (path, params, response.text)
    for path, params in (
        (f"{INTEGRITY}/inclusion", {"seq": "999"}),
        (f"{INTEGRITY}/proof", {"seq": "999"}),
        (f"{TLOG}/tile/entries/001", {}),
    ):
        response = client.get(path, params=params, headers=admin.headers)
        assert response.status_code == 404, (path, params, response.text)
    assert client.get(AUDIT).status_code == 401  # no caller: no one to name
    assert audit_count(dstrail) == before


def test_a_refused_read_is_recorded_with_no_rows(
    client: TestClient, dstrail: Dstrail, alice: Login
) -> None:
    for path, params, surface in (
        (AUDIT, {"dataSourceNames": ["ds-a", "ds-b"]}, "api"),
        (f"{AUDIT}/export", {"format": "jsonl"}, "export"),
        ("/v4/datasource/audit/download", {"jsonFile": "true"}, "download"),
        (f"{INTEGRITY}/proof", {"seq": "1"}, "proof"),
        (f"{TLOG}/tile/entries/000.p/1", {}, "tlog"),
    ):
        with one_read(dstrail) as found:
            response = client.get(path, params=params, headers=alice.headers)
        assert response.status_code == 403
        assert found == [
            {
                "performedByUsername": "alice",
                "performedBy": alice.id,
                "surface": surface,
                "path": path,
                "filter": {k: v if isinstance(v, list) else [v] for k, v in params.items()},
                "rows": "0",
                "refused": "true",
            }
        ]
    before = audit_count(dstrail)
    assert client.get(f"{INTEGRITY}/public-key", headers=alice.headers).status_code == 403
    assert audit_count(dstrail) == before  # no event in it: not a read of the trail


def test_a_very_long_filter_is_shortened_to_fit_a_log_entry(
    client: TestClient, dstrail: Dstrail, admin: Login
) -> None:
    names = [f"{'n' * 150}-{i}" for i in range(200)]
    with one_read(dstrail) as found:
        get(client, admin, AUDIT, dataSourceNames=names)
    asked = found[0]["filter"]
    assert asked["dataSourceNames"] == [name[:100] for name in names[:10]]
    assert asked["omitted"] == {"dataSourceNames": 190}
    [event] = reads(dstrail)
    assert len(event.metadata) < 4_000
    bundle = client.get(f"{TLOG}/tile/entries/000.p/{event.seq}", headers=admin.headers)
    assert bundle.status_code == 200  # the event fits an entry bundle


# -- a real server: a client that leaves, and a read that cannot be recorded ---------------------


@contextmanager
def serving(dstrail: Dstrail) -> Iterator[str]:
    """The app on a real uvicorn server (in a thread); its base URL."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    config = uvicorn.Config(create_app(dstrail), log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while not server.started:
            assert thread.is_alive() and time.monotonic() < deadline, "the server did not start"
            time.sleep(0.02)
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        listener.close()


def test_a_download_the_client_leaves_part_way_records_the_rows_sent(dstrail: Dstrail) -> None:
    total = bulk_load(dstrail, 3 * CHUNK_ROWS + 500)
    reader = make_user(dstrail, "leaving-reader", Role.SYS_ADMIN)
    before = len(reads(dstrail))
    with serving(dstrail) as base:
        port = int(base.rsplit(":", 1)[1])
        client = socket.socket()
        client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # let little pile up
        client.connect(("127.0.0.1", port))
        request = (
            f"GET {AUDIT}/export?format=jsonl HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"X-Domino-Api-Key: {reader.api_key}\r\n\r\n"
        )
        client.sendall(request.encode())
        assert client.recv(4096).startswith(b"HTTP/1.1 200")
        # Leave at once: a reset, not a graceful close.
        client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        client.close()
        deadline = time.monotonic() + 60
        while len(reads(dstrail)) == before:
            assert time.monotonic() < deadline, "the cut read was not recorded"
            time.sleep(0.05)
    [event] = reads(dstrail)[before:]
    read = metadata(event)
    assert event.performed_by == reader.id
    assert (read["surface"], read["format"], read["complete"]) == ("export", "jsonl", "false")
    assert int(read["rows"]) < total


@contextmanager
def recording_refused(dstrail: Dstrail) -> Iterator[None]:
    """The database refuses to store reads of the trail (as a full disk or a lost connection
    would, for them alone)."""
    if dstrail.store.dialect == "sqlite":
        create = [
            "CREATE TRIGGER refuse_reads BEFORE INSERT ON audit_events "
            f"WHEN NEW.event_kind = '{TRAIL_READ}' "
            "BEGIN SELECT RAISE(ABORT, 'reads of the trail refused'); END"
        ]
        drop = ["DROP TRIGGER refuse_reads"]
    else:
        create = [
            "CREATE FUNCTION refuse_reads() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
            f"IF NEW.event_kind = '{TRAIL_READ}' THEN "
            "RAISE EXCEPTION 'reads of the trail refused'; END IF; RETURN NEW; END $$",
            "CREATE TRIGGER refuse_reads BEFORE INSERT ON audit_events "
            "FOR EACH ROW EXECUTE FUNCTION refuse_reads()",
        ]
        drop = ["DROP TRIGGER refuse_reads ON audit_events", "DROP FUNCTION refuse_reads()"]
    with dstrail.store.engine.begin() as connection:
        for statement in create:
            connection.execute(text(statement))
    try:
        yield
    finally:
        with dstrail.store.engine.begin() as connection:
            for statement in drop:
                connection.execute(text(statement))


def test_a_read_that_cannot_be_recorded_returns_nothing(
    client: TestClient, dstrail: Dstrail, admin: Login, clock: SettableClock
) -> None:
    some_events(dstrail, clock)
    before = audit_count(dstrail)
    with recording_refused(dstrail):
        for path, params in (
            (AUDIT, {}),
            (AUDIT, {"limit": "2"}),
            (f"{INTEGRITY}/inclusion", {"seq": "3"}),
            (f"{TLOG}/tile/entries/000.p/5", {}),
        ):
            response = client.get(path, params=params, headers=admin.headers)
            assert response.status_code == 503, (path, response.text)
            body = response.json()
            assert set(body) == {"requestId", "errors"}  # the audit API's error shape
            assert "could not be recorded" in body["errors"][0]
            assert "ds-a" not in response.text
        # Appends other than reads still work: only the read is refused.
        append(dstrail, clock(), data_source_name="ds-z")
    assert audit_count(dstrail) == before + 1
    assert len(get(client, admin, AUDIT).json()) == 6  # and reads work again once it can


def test_a_streamed_read_that_cannot_be_recorded_never_ends_well(
    dstrail: Dstrail, admin: Login, clock: SettableClock
) -> None:
    some_events(dstrail, clock)
    with serving(dstrail) as base, recording_refused(dstrail):
        for path, params in (
            ("/v4/datasource/audit/download", {"jsonFile": "true"}),
            (f"{AUDIT}/export", {"format": "csv"}),
        ):
            # The rows are streamed before the read is recorded: the failure cuts the answer
            # short of its end, which every HTTP client reports as an error.
            with pytest.raises(httpx.RemoteProtocolError):
                httpx.get(f"{base}{path}", params=params, headers=admin.headers, timeout=30)
    assert reads(dstrail) == []
