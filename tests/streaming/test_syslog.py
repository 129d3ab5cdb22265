"""The syslog transport against Debian's rsyslogd (``tests/streaming/rsyslog.py``): plain TCP
with RFC 6587 octet counting and TLS per RFC 5425, each message compared whole with what was
meant to be sent, and as rsyslog parsed it."""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from dstrail.domain.streams import (
    Destination,
    StreamFilter,
    StreamFormat,
    StreamKind,
    StreamRecord,
)
from dstrail.streaming.transports import DeliveryError, open_transport
from dstrail.streaming.transports.syslog import (
    SyslogTransport,
    frame,
    message,
    sd_value,
    timestamp,
)
from tests.streaming.rsyslog import (
    Certificates,
    Rsyslog,
    free_port,
    make_certificates,
    require_tls_driver,
    rsyslogd,
)

HOSTNAME = socket.gethostname()
PROCID = str(os.getpid())
T0 = 1692826821669  # 2023-08-23T21:40:21.669Z


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    """A test CA and a server certificate, made once for the module."""
    return make_certificates(tmp_path_factory.mktemp("pki"))


@pytest.fixture
def rsyslog(tmp_path: Path) -> Iterator[Rsyslog]:
    """A plain TCP rsyslog, started."""
    server = Rsyslog(rsyslogd(), tmp_path, tls=None)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def rsyslog_tls(tmp_path: Path, certificates: Certificates) -> Iterator[Rsyslog]:
    """A TLS rsyslog (ossl driver), started."""
    binary = rsyslogd()
    require_tls_driver()
    server = Rsyslog(binary, tmp_path, tls=certificates)
    server.start()
    yield server
    server.stop()


def destination(config: dict[str, str]) -> Destination:
    """A syslog destination as the store would hand it over."""
    return Destination(
        id="0123456789abcdef01234567",
        name="siem",
        kind=StreamKind.SYSLOG,
        format=StreamFormat.NATIVE,
        config=config,
        filter=StreamFilter(),
        paused=False,
        cursor=0,
        generation=0,
        created_at_ms=T0,
        created_by="a" * 24,
        has_secret=False,
    )


def record(seq: int, body: str, event_id: str | None = None) -> StreamRecord:
    """A record at ``T0 + seq`` ms."""
    return StreamRecord(
        seq=seq,
        event_id=event_id or f"{seq:064x}",
        timestamp_ms=T0 + seq,
        body=body.encode(),
    )


def expected(r: StreamRecord, app_name: str = "dstrail") -> str:
    """The RFC 5424 message of a record, written out here rather than by the transport."""
    millis = f"{(T0 + r.seq) % 1000:03d}"
    return (
        f"<109>1 2023-08-23T21:40:21.{millis}Z {HOSTNAME} {app_name} {PROCID} audit "
        f'[dstrail@32473 seq="{r.seq}" eventId="{r.event_id}"] {r.body.decode()}'
    )


def parsed(r: StreamRecord, app_name: str = "dstrail") -> str:
    """What rsyslog's parsed template shows of a record."""
    millis = f"{(T0 + r.seq) % 1000:03d}"
    return (
        f"109|2023-08-23T21:40:21.{millis}Z|{HOSTNAME}|{app_name}|{PROCID}|audit|{r.seq}|"
        f"{r.event_id}|{r.body.decode()}"
    )


def transport(config: dict[str, str]) -> SyslogTransport:
    opened = open_transport(destination(config), None)
    assert isinstance(opened, SyslogTransport)
    return opened


# -- the message --------------------------------------------------------------------------------


def test_a_record_is_an_rfc5424_message_framed_by_its_length_in_bytes() -> None:
    tricky = StreamRecord(seq=7, event_id='a"b\\c]d', timestamp_ms=0, body='{"k":"é]"}'.encode())
    msg = message(tricky, hostname="host-1", app_name="feed", procid="42")
    assert msg == (
        b'<109>1 1970-01-01T00:00:00.000Z host-1 feed 42 audit [dstrail@32473 seq="7" '
        b'eventId="a\\"b\\\\c\\]d"] {"k":"\xc3\xa9]"}'
    )
    assert frame(b"ab\xc3\xa9") == b"4 ab\xc3\xa9"
    assert timestamp(T0) == "2023-08-23T21:40:21.669Z"
    assert timestamp(1_000) == "1970-01-01T00:00:01.000Z"
    assert sd_value('x"\\]') == 'x\\"\\\\\\]'


@pytest.mark.parametrize(
    ("config", "error"),
    [
        ({"port": "514"}, "config.host: a syslog destination needs one"),
        ({"host": "h", "port": "0"}, "config.port: '0' must be 1 to 65535"),
        ({"host": "h", "port": "514", "tls": "yes"}, "config.tls: 'yes'; accepted: true, false"),
        (
            {"host": "h", "port": "514", "appName": "two words"},
            "config.appName: 'two words' must be 1 to 48 printable ASCII characters, no spaces",
        ),
        (
            {"host": "h", "port": "514", "caFile": "/etc/ssl/certs/ca-certificates.crt"},
            "config.caFile: set, but config.tls is not true",
        ),
        (
            {"host": "h", "port": "514", "tls": "true", "caFile": "/nonexistent/ca.pem"},
            "config.caFile: cannot load '/nonexistent/ca.pem': [Errno 2] No such file or directory",
        ),
    ],
    ids=["no-host", "port", "tls", "appName", "caFile-without-tls", "caFile-missing"],
)
def test_a_bad_config_is_refused_naming_the_field(config: dict[str, str], error: str) -> None:
    with pytest.raises(DeliveryError) as raised:
        open_transport(destination(config), None)
    assert str(raised.value) == error


# -- plain TCP ----------------------------------------------------------------------------------


def test_every_record_arrives_exactly_as_sent_and_in_order(rsyslog: Rsyslog) -> None:
    first = [
        record(1, '{"eventKind":"CreateDataSource","name":"d\\u00e9j\\u00e0 vu"}'),
        record(2, 'CEF:0|dstrail|dstrail|0.1.0|AccessDataSource|x|3|msg={"a":"b]\\"c"}'),
        record(3, "é 日本 " + "x" * 20_000),  # beyond rsyslog's default 8 KiB, several bytes a char
    ]
    second = [record(4, "fourth"), record(5, "fifth", event_id='odd"id\\with]')]

    async def scenario() -> None:
        sender = transport({"host": "127.0.0.1", "port": str(rsyslog.port), "appName": "feed"})
        try:
            await sender.send(first)
            await sender.send(second)
            await sender.send([])
        finally:
            await sender.close()

    asyncio.run(scenario())
    sent = first + second
    assert rsyslog.lines(rsyslog.raw, 5) == [
        *(expected(r, "feed") for r in sent[:4]),
        f"<109>1 2023-08-23T21:40:21.674Z {HOSTNAME} feed {PROCID} audit "
        '[dstrail@32473 seq="5" eventId="odd\\"id\\\\with\\]"] fifth',
    ]
    assert rsyslog.lines(rsyslog.parsed, 5) == [parsed(r, "feed") for r in sent]


def test_a_stopped_receiver_fails_the_send_and_a_restarted_one_gets_the_next(
    rsyslog: Rsyslog,
) -> None:
    batches = [[record(1, "one"), record(2, "two")], [record(3, "three")], [record(4, "four")]]

    async def scenario() -> None:
        sender = transport({"host": "127.0.0.1", "port": str(rsyslog.port)})
        try:
            await sender.send(batches[0])
            # Written to the socket is not processed: stopped before reading them, rsyslog would
            # drop them (plain TCP syslog has no acknowledgements), so wait for them first.
            rsyslog.lines(rsyslog.raw, 2)
            rsyslog.stop()
            with pytest.raises(DeliveryError) as raised:
                await sender.send(batches[1])
            assert str(raised.value) == (
                f"syslog 127.0.0.1:{rsyslog.port}: ConnectionRefusedError: [Errno 111] "
                f"Connect call failed ('127.0.0.1', {rsyslog.port})"
            )
            rsyslog.start()
            await sender.send(batches[1])  # the worker sends the failed batch again
            rsyslog.lines(rsyslog.raw, 3)
            # Restarted between two sends: the closed connection is noticed and made again,
            # rather than the batch being written into it and lost.
            rsyslog.stop()
            rsyslog.start()
            await sender.send(batches[2])
        finally:
            await sender.close()

    asyncio.run(scenario())
    sent = [r for batch in batches for r in batch]
    assert rsyslog.lines(rsyslog.raw, 4) == [expected(r) for r in sent]


def test_an_unreachable_receiver_is_a_delivery_error_naming_it() -> None:
    port = free_port()

    async def scenario() -> None:
        sender = transport({"host": "127.0.0.1", "port": str(port)})
        try:
            with pytest.raises(DeliveryError) as raised:
                await sender.send([record(1, "one")])
            assert str(raised.value) == (
                f"syslog 127.0.0.1:{port}: ConnectionRefusedError: [Errno 111] "
                f"Connect call failed ('127.0.0.1', {port})"
            )
        finally:
            await sender.close()

    asyncio.run(scenario())


# -- TLS ----------------------------------------------------------------------------------------


def test_over_tls_records_arrive_exactly_as_sent(
    rsyslog_tls: Rsyslog, certificates: Certificates
) -> None:
    batches = [[record(1, "one"), record(2, '{"x":"y"}')], [record(3, "three")]]
    config = {
        "host": "127.0.0.1",
        "port": str(rsyslog_tls.port),
        "tls": "true",
        "caFile": str(certificates.ca),
    }

    async def scenario() -> None:
        sender = transport(config)
        try:
            for batch in batches:
                await sender.send(batch)
            rsyslog_tls.lines(rsyslog_tls.raw, 3)
            rsyslog_tls.stop()
            rsyslog_tls.start()
            await sender.send([record(4, "after a restart")])
        finally:
            await sender.close()

    asyncio.run(scenario())
    sent = [*batches[0], *batches[1], record(4, "after a restart")]
    assert rsyslog_tls.lines(rsyslog_tls.raw, 4) == [expected(r) for r in sent]
    assert rsyslog_tls.lines(rsyslog_tls.parsed, 4) == [parsed(r) for r in sent]


def test_over_tls_a_receiver_the_ca_did_not_sign_is_refused(rsyslog_tls: Rsyslog) -> None:
    """Without ``caFile`` the system's CAs are trusted, and they did not sign the test CA."""

    async def scenario() -> None:
        sender = transport({"host": "127.0.0.1", "port": str(rsyslog_tls.port), "tls": "true"})
        try:
            with pytest.raises(DeliveryError) as raised:
                await sender.send([record(1, "one")])
            assert str(raised.value).startswith(
                f"syslog 127.0.0.1:{rsyslog_tls.port} (TLS): SSLCertVerificationError: "
                "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: "
                "self-signed certificate in certificate chain"
            )
        finally:
            await sender.close()

    asyncio.run(scenario())
    assert not rsyslog_tls.raw.exists()
