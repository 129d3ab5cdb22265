"""The CEF format of real events, made through the services on both databases: the exact
lines, CEF's escaping, and the same lines carried by the syslog transport to rsyslog."""

from __future__ import annotations

import asyncio
import functools
import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from dstrail import __version__
from dstrail.context import Dstrail
from dstrail.domain.datasources import DataSource, Permissions
from dstrail.domain.streams import (
    Destination,
    StreamFilter,
    StreamFormat,
    StreamKind,
    StreamRecord,
)
from dstrail.domain.trail import EventKind, SealedRow
from dstrail.services import access
from dstrail.services.access import AccessClaim, AccessRefused, AccessRequest, Grant
from dstrail.services.auth import CallerCredentials
from dstrail.streaming.formats import cef
from dstrail.streaming.transports import open_transport
from tests.services.support import make_project, start_run
from tests.streaming.rsyslog import Rsyslog, rsyslogd
from tests.support import Login, SettableClock, create_dataset, make_user

T0 = 1692826821669
PREFIX = "a=b|c\\d\ne"
"""A listing prefix with what CEF escapes (``=``, ``\\``, a line break) and ``|``, which it
leaves alone in an extension value."""


@pytest.fixture
def rsyslog(tmp_path: Path) -> Iterator[Rsyslog]:
    """A plain TCP rsyslog, started."""
    directory = tmp_path / "rsyslog"
    directory.mkdir()
    server = Rsyslog(rsyslogd(), directory, tls=None)
    server.start()
    yield server
    server.stop()


def _use(
    dstrail: Dstrail,
    login: Login,
    ds: DataSource,
    operation: functools.partial[access.AccessOperation],
    run_id: str | None = None,
) -> Grant:
    request = AccessRequest(
        credentials=CallerCredentials(api_key=login.api_key),
        claim=AccessClaim(run_id=run_id, client_source="Python"),
        data_source_id=ds.id,
        operation=operation,
    )
    return access.serve_access(
        dstrail.store, dstrail.vault, request,
        signing_key=dstrail.keys.signing_key, clock=dstrail.clock, serve=lambda grant: grant,
    )  # fmt: skip


def _leaf(row: SealedRow) -> str:
    """The row's leaf hash, hex (every event dstrail appends has one)."""
    leaf = row[11]
    assert leaf is not None
    return leaf.hex()


def _rows(dstrail: Dstrail) -> list[SealedRow]:
    with dstrail.store.read() as tx:
        return tx.integrity.events_after(0, limit=100)


def test_create_access_and_refusal_are_exact_cef_lines(
    dstrail: Dstrail, clock: SettableClock
) -> None:
    clock.now_ms = T0
    alice = make_user(dstrail, "alice")
    bob = make_user(dstrail, "bob")
    project = make_project(dstrail, alice)
    run = start_run(dstrail, alice, project).run
    ds = create_dataset(dstrail, alice, "alices-files", permissions=Permissions(is_everyone=False))
    clock.now_ms = T0 + 1
    _use(dstrail, alice, ds, functools.partial(access.listing_operation, PREFIX), run_id=run.id)
    clock.now_ms = T0 + 2
    with pytest.raises(AccessRefused):
        read = functools.partial(access.object_key_operation, "a/b.csv", is_read_write=False)
        _use(dstrail, bob, ds, read)

    rows = _rows(dstrail)
    by_kind = {row[3]: row for row in rows}
    records = cef.encode(rows, None)
    assert [(r.seq, r.event_id, r.timestamp_ms) for r in records] == [
        (row[7], _leaf(row), row[6]) for row in rows
    ]
    lines = {row[3]: r.body.decode() for row, r in zip(rows, records, strict=True)}
    head = f"CEF:0|dstrail|dstrail|{__version__}"
    user_created = by_kind[EventKind.USER_CREATED]  # the last one: bob's
    assert lines[EventKind.USER_CREATED] == (
        f"{head}|UserCreated|User created|3|rt={T0} suser=operator suid={'0' * 24} "
        f"cn1Label=seq cn1={user_created[7]} externalId={_leaf(user_created)} outcome=success "
        f'msg={{"performedByUsername":"operator","userId":"{bob.id}","username":"bob",'
        '"role":"User"}'
    )
    created = by_kind[EventKind.CREATE_DATA_SOURCE]
    assert lines[EventKind.CREATE_DATA_SOURCE] == (
        f"{head}|CreateDataSource|Data source created|3|rt={T0} suser=alice suid={alice.id} "
        f"cs1Label=dataSourceName cs1=alices-files cs2Label=dataSourceId cs2={ds.id} "
        f"cs3Label=dataSourceType cs3=DatasetConfig cn1Label=seq cn1={created[7]} "
        f"externalId={_leaf(created)} outcome=success "
        f'msg={{"performedByUsername":"alice","credentialType":"Shared","isEveryone":"false",'
        f'"ownerId":"{alice.id}","userIds":"","projectIds":""}}'
    )
    accessed = by_kind[EventKind.ACCESS_DATA_SOURCE]
    assert lines[EventKind.ACCESS_DATA_SOURCE] == (
        f"{head}|AccessDataSource|Data source accessed|3|rt={T0 + 1} suser=alice "
        f"suid={alice.id} cs1Label=dataSourceName cs1=alices-files cs2Label=dataSourceId "
        f"cs2={ds.id} cs3Label=dataSourceType cs3=DatasetConfig cs4Label=runId cs4={run.id} "
        f"cs5Label=projectId cs5={project.id} cn1Label=seq cn1={accessed[7]} "
        f"externalId={_leaf(accessed)} outcome=success act=listObjects "
        f'msg={{"performedByUsername":"alice","runType":"Workspace","projectId":"{project.id}",'
        f'"runId":"{run.id}","dataPlaneId":"0123456789abcdef01234567","clientSource":"Python",'
        '"operation":"listObjects","prefix":"a\\=b|c\\\\\\\\d\\\\ne"}'
    )
    refused = by_kind[EventKind.ACCESS_REFUSED]
    assert lines[EventKind.ACCESS_REFUSED] == (
        f"{head}|AccessDataSourceRefused|Data source access refused|7|rt={T0 + 2} suser=bob "
        f"suid={bob.id} cs1Label=dataSourceName cs1=alices-files cs2Label=dataSourceId "
        f"cs2={ds.id} cs3Label=dataSourceType cs3=DatasetConfig cn1Label=seq cn1={refused[7]} "
        f"externalId={_leaf(refused)} outcome=failure act=objectKey reason=notPermitted "
        f'msg={{"performedByUsername":"bob","clientSource":"Python","operation":"objectKey",'
        '"objectKey":"a/b.csv","isReadWrite":"false","reason":"notPermitted"}'
    )


def test_escaping_follows_cef() -> None:
    assert cef.header_value("a|b\\c\nd\r\ne") == "a\\|b\\\\c d e"
    assert cef.extension_value("a=b|c\\d\ne\rf") == "a\\=b|c\\\\d\\ne\\rf"


def test_every_kind_has_a_name_and_an_unknown_kind_is_named_by_its_words() -> None:
    assert set(cef.NAMES) == {kind.value for kind in EventKind}
    assert cef.name_of("SomethingNewHappened") == "Something new happened"


def test_cef_lines_reach_rsyslog_as_the_msg_of_syslog_messages(
    dstrail: Dstrail, clock: SettableClock, rsyslog: Rsyslog
) -> None:
    clock.now_ms = T0
    alice = make_user(dstrail, "alice")
    ds = create_dataset(dstrail, alice, "files")
    _use(dstrail, alice, ds, functools.partial(access.listing_operation, PREFIX))
    records: list[StreamRecord] = cef.encode(_rows(dstrail), None)

    async def scenario() -> None:
        sender = open_transport(
            Destination(
                id="0123456789abcdef01234567", name="siem", kind=StreamKind.SYSLOG,
                format=StreamFormat.CEF, config={"host": "127.0.0.1", "port": str(rsyslog.port)},
                filter=StreamFilter(), paused=False, cursor=0, generation=0, created_at_ms=T0,
                created_by="a" * 24, has_secret=False,
            ),
            None,
        )  # fmt: skip
        try:
            await sender.send(records)
        finally:
            await sender.close()

    asyncio.run(scenario())
    assert rsyslog.lines(rsyslog.parsed, len(records)) == [
        f"109|2023-08-23T21:40:21.669Z|{socket.gethostname()}|dstrail|{os.getpid()}|audit|"
        f"{r.seq}|{r.event_id}|" + r.body.decode()
        for r in records
    ]
