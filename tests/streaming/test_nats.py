"""The NATS JetStream transport against a real nats-server (``-js``) started by the tests on a
free port with a store directory of its own, so each can be stopped and restarted; for TLS
(``tls://``) with a server certificate of a test CA (``tests.streaming.rsyslog``). Without the
binary the tests skip (fail under ``CI=true``)."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import shutil
import socket
import ssl
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import nats
import orjson
import pytest
from nats.js.api import AckPolicy, ConsumerConfig, StreamConfig

from dstrail.domain.streams import Destination, StreamFilter, StreamFormat, StreamKind, StreamRecord
from dstrail.errors import InvalidInput
from dstrail.services.streams import check_config
from dstrail.streaming.transports import DeliveryError
from dstrail.streaming.transports import open_transport as open_any_transport
from dstrail.streaming.transports.nats import NatsTransport, open_transport
from tests.streaming.rsyslog import Certificates, make_certificates

NATS_SERVER = shutil.which("nats-server") or "/usr/sbin/nats-server"
TOKEN = "s3cret-nats-token-" + uuid.uuid4().hex


def _free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class NatsServer:
    """A nats-server child process with JetStream, on a fixed port and store directory."""

    store: Path
    token: str | None = None
    port: int = 0
    process: subprocess.Popen[bytes] | None = None
    tls: Certificates | None = None
    """When set, the server takes only TLS clients, with this server certificate."""
    host: str = "127.0.0.1"

    @property
    def url(self) -> str:
        return f"{'tls' if self.tls else 'nats'}://{self.host}:{self.port}"

    def start(self) -> None:
        self.port = self.port or _free_port(self.host)
        command = [NATS_SERVER, "-js", "-a", self.host, "-p", str(self.port)]
        command += ["-sd", str(self.store)]
        if self.token:
            command += ["--auth", self.token]
        if self.tls:
            command += ["--tls", "--tlscert", str(self.tls.cert), "--tlskey", str(self.tls.key)]
        log = (self.store.parent / f"nats-{self.port}.log").open("ab")
        self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            assert self.process.poll() is None, "nats-server exited; see its log"
            try:
                socket.create_connection((self.host, self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        raise AssertionError("nats-server did not start")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)
        self.process = None


def _server(
    tmp_path: Path,
    token: str | None = None,
    *,
    tls: Certificates | None = None,
    host: str = "127.0.0.1",
) -> Iterator[NatsServer]:
    if not os.path.exists(NATS_SERVER):
        if os.environ.get("CI") == "true":
            pytest.fail(f"nats-server is required under CI=true ({NATS_SERVER} is missing)")
        pytest.skip(f"{NATS_SERVER} is missing")
    (tmp_path / "store").mkdir()
    server = NatsServer(store=tmp_path / "store", token=token, tls=tls, host=host)
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def nats_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NatsServer]:
    """One server for the tests that do not stop it (each uses a stream of its own)."""
    yield from _server(tmp_path_factory.mktemp("nats"))


@pytest.fixture
def own_server(tmp_path: Path) -> Iterator[NatsServer]:
    """A server for one test, which may stop and restart it."""
    yield from _server(tmp_path)


@pytest.fixture
def token_server(tmp_path: Path) -> Iterator[NatsServer]:
    """A server that takes only clients with ``TOKEN``."""
    yield from _server(tmp_path, token=TOKEN)


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    """A test CA, and a server certificate it signed for 127.0.0.1 and localhost."""
    return make_certificates(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def tls_server(
    tmp_path_factory: pytest.TempPathFactory, certificates: Certificates
) -> Iterator[NatsServer]:
    """A server that takes only TLS clients (``tls://127.0.0.1:PORT``), its certificate
    signed by the test CA; each test uses a stream of its own."""
    yield from _server(tmp_path_factory.mktemp("nats-tls"), tls=certificates)


def _trusting(certificates: Certificates) -> ssl.SSLContext:
    """What the test's own clients connect to ``tls_server`` with."""
    return ssl.create_default_context(cafile=str(certificates.ca))


def _destination(url: str, subject: str, **config: str) -> Destination:
    return Destination(
        id="d1",
        name="bus",
        kind=StreamKind.NATS,
        format=StreamFormat.NATIVE,
        config={"url": url, "subject": subject, **config},
        filter=StreamFilter(),
        paused=False,
        cursor=0,
        generation=0,
        created_at_ms=0,
        created_by="admin",
        has_secret=False,
    )


def _records(seqs: Sequence[int]) -> list[StreamRecord]:
    return [
        StreamRecord(
            seq=seq,
            event_id=hashlib.sha256(f"event {seq}".encode()).hexdigest(),
            timestamp_ms=1_700_000_000_000 + seq,
            body=orjson.dumps({"seq": seq, "kind": "AccessDataSource"}),
        )
        for seq in seqs
    ]


async def _add_stream(
    url: str,
    *,
    token: str | None = None,
    max_msg_size: int | None = None,
    tls: ssl.SSLContext | None = None,
) -> tuple[str, str]:
    """A new stream (2-minute duplicate window) on a new subject: (name, subject)."""
    name = "s" + uuid.uuid4().hex[:12]
    subject = f"audit.{name}"
    nc = await nats.connect(url, token=token, tls=tls)
    js = nc.jetstream()
    config = StreamConfig(
        name=name, subjects=[subject], duplicate_window=120.0, max_msg_size=max_msg_size
    )
    await js.add_stream(config)
    await nc.close()
    return name, subject


@dataclass(frozen=True)
class Stored:
    stream_seq: int
    body: bytes
    headers: dict[str, str]


async def _stored(
    url: str,
    stream: str,
    subject: str,
    *,
    token: str | None = None,
    tls: ssl.SSLContext | None = None,
) -> list[Stored]:
    """Everything the stream holds, in its order, read with an (ephemeral) pull consumer."""
    nc = await nats.connect(url, token=token, tls=tls)
    js = nc.jetstream()
    count = (await js.stream_info(stream)).state.messages
    stored: list[Stored] = []
    if count:
        config = ConsumerConfig(ack_policy=AckPolicy.NONE)
        subscription = await js.pull_subscribe(subject, stream=stream, config=config)
        while len(stored) < count:
            for msg in await subscription.fetch(min(count - len(stored), 500), timeout=5):
                headers = dict(msg.headers or {})
                stored.append(Stored(msg.metadata.sequence.stream, msg.data, headers))
    await nc.close()
    return stored


def _expected(records: Sequence[StreamRecord]) -> list[Stored]:
    return [
        Stored(
            stream_seq=index,
            body=record.body,
            headers={"Nats-Msg-Id": record.event_id, "Dstrail-Seq": str(record.seq)},
        )
        for index, record in enumerate(records, start=1)
    ]


def test_a_batch_is_stored_in_order_with_its_ids(nats_server: NatsServer) -> None:
    async def scenario() -> list[Stored]:
        stream, subject = await _add_stream(nats_server.url)
        transport = open_any_transport(_destination(nats_server.url, subject), None)
        assert isinstance(transport, NatsTransport)
        await transport.send(_records([7, 8, 9]))
        await transport.send([])
        await transport.send(_records([10]))
        await transport.close()
        return await _stored(nats_server.url, stream, subject)

    assert asyncio.run(scenario()) == _expected(_records([7, 8, 9, 10]))


def test_a_large_batch_is_pipelined_and_kept_in_order(nats_server: NatsServer) -> None:
    records = _records(range(1, 2001))

    async def scenario() -> tuple[float, list[Stored]]:
        stream, subject = await _add_stream(nats_server.url)
        transport = open_transport(_destination(nats_server.url, subject), None)
        started = time.monotonic()
        await transport.send(records)
        elapsed = time.monotonic() - started
        await transport.close()
        return elapsed, await _stored(nats_server.url, stream, subject)

    elapsed, stored = asyncio.run(scenario())
    assert stored == _expected(records)
    assert elapsed < 5, f"2000 records took {elapsed:.1f}s: not pipelined?"


def test_a_batch_sent_again_adds_nothing(nats_server: NatsServer) -> None:
    async def scenario() -> list[Stored]:
        stream, subject = await _add_stream(nats_server.url)
        transport = open_transport(_destination(nats_server.url, subject), None)
        await transport.send(_records([1, 2, 3]))
        await transport.send(_records([1, 2, 3]))  # the same batch, resent after a failure
        await transport.send(_records([2, 3, 4]))  # overlapping: only 4 is new
        await transport.close()
        return await _stored(nats_server.url, stream, subject)

    assert asyncio.run(scenario()) == _expected(_records([1, 2, 3, 4]))


def test_a_subject_no_stream_covers_fails_saying_so(nats_server: NatsServer) -> None:
    subject = f"audit.nostream{uuid.uuid4().hex[:8]}"

    async def scenario() -> None:
        transport = open_transport(_destination(nats_server.url, subject), None)
        try:
            await transport.send(_records([1, 2]))
        finally:
            await transport.close()

    with pytest.raises(DeliveryError) as failure:
        asyncio.run(scenario())
    assert str(failure.value) == (
        f"no JetStream stream covers subject {subject} at {nats_server.url}; "
        f"create one, e.g. `nats stream add --subjects {subject}`"
    )


def test_a_record_the_stream_refuses_fails_the_batch_naming_it(nats_server: NatsServer) -> None:
    records = _records([1, 2, 3])
    records[1] = StreamRecord(2, records[1].event_id, records[1].timestamp_ms, b"x" * 500)

    async def scenario() -> tuple[str, list[Stored]]:
        stream, subject = await _add_stream(nats_server.url, max_msg_size=200)
        transport = open_transport(_destination(nats_server.url, subject), None)
        with pytest.raises(DeliveryError) as failure:
            await transport.send(records)
        message = str(failure.value).replace(subject, "SUBJECT")
        await transport.close()
        return message, await _stored(nats_server.url, stream, subject)

    message, stored = asyncio.run(scenario())
    assert message == (
        f"JetStream at {nats_server.url} refused record seq 2 on subject SUBJECT: "
        "message size exceeds maximum allowed (error 10054)"
    )
    assert [s.headers["Dstrail-Seq"] for s in stored] == ["1", "3"]


def test_a_record_over_the_servers_max_payload_fails_naming_it(nats_server: NatsServer) -> None:
    records = _records([1, 2])
    big = StreamRecord(2, records[1].event_id, records[1].timestamp_ms, b"x" * (1024 * 1024 + 1))

    async def scenario() -> str:
        _, subject = await _add_stream(nats_server.url)
        transport = open_transport(_destination(nats_server.url, subject), None)
        with pytest.raises(DeliveryError) as failure:
            await transport.send([records[0], big])
        await transport.send(records)  # the connection is still good
        await transport.close()
        return str(failure.value)

    assert asyncio.run(scenario()) == (
        f"record seq 2 (1048577 bytes) is larger than the max_payload of the NATS server at "
        f"{nats_server.url}"
    )


def test_a_subject_nothing_acknowledges_times_out(nats_server: NatsServer) -> None:
    """A plain subscriber (no stream) takes the records: the server answers no one."""
    subject = f"audit.plain{uuid.uuid4().hex[:8]}"

    async def scenario() -> tuple[str, int]:
        listener = await nats.connect(nats_server.url)
        received: list[bytes] = []

        async def keep(msg: nats.aio.msg.Msg) -> None:
            received.append(msg.data)

        await listener.subscribe(subject, cb=keep)
        await listener.flush()
        transport = NatsTransport(url=nats_server.url, subject=subject, token=None, ack_timeout=0.3)
        with pytest.raises(DeliveryError) as failure:
            await transport.send(_records([5, 6]))
        await transport.close()
        await listener.close()
        return str(failure.value), len(received)

    message, received = asyncio.run(scenario())
    assert message == (
        f"JetStream at {nats_server.url} did not acknowledge record seq 5 on subject "
        f"{subject} within 0.3s"
    )
    assert received == 2


def test_the_token_is_sent_and_never_shown(token_server: NatsServer) -> None:
    async def scenario() -> tuple[str, list[Stored]]:
        stream, subject = await _add_stream(token_server.url, token=TOKEN)
        destination = _destination(token_server.url, subject)
        wrong = open_transport(destination, "not-" + TOKEN)
        with pytest.raises(DeliveryError) as failure:
            await wrong.send(_records([1]))
        await wrong.close()
        right = open_transport(destination, TOKEN)
        await right.send(_records([1]))
        await right.close()
        return str(failure.value), await _stored(token_server.url, stream, subject, token=TOKEN)

    message, stored = asyncio.run(scenario())
    assert message.startswith(f"cannot connect to NATS at {token_server.url}: ")
    # The server sends -ERR 'Authorization Violation' and closes; now and then the client
    # sees the reset before it reads the -ERR (about one run in three on this machine).
    assert (
        message.endswith(
            "authorization violation: the server refused the token (the destination's secret)"
        )
        or "reset" in message.lower()
    ), message
    assert TOKEN not in message
    assert stored == _expected(_records([1]))


def test_a_stopped_server_fails_the_send_and_a_restarted_one_takes_the_next(
    own_server: NatsServer,
) -> None:
    url = own_server.url

    async def scenario() -> tuple[str, str, list[Stored]]:
        stream, subject = await _add_stream(url)
        transport = NatsTransport(url=url, subject=subject, token=None, connect_timeout=1)
        await transport.send(_records([1]))
        own_server.stop()
        with pytest.raises(DeliveryError) as lost:
            await transport.send(_records([2]))
        with pytest.raises(DeliveryError) as down:
            await transport.send(_records([2]))
        own_server.start()  # same port, same store: the stream is still there
        await transport.send(_records([2, 3]))
        await transport.close()
        return str(lost.value), str(down.value), await _stored(url, stream, subject)

    lost, down, stored = asyncio.run(scenario())
    assert lost.startswith(f"lost the connection to NATS at {url}") or lost.startswith(
        f"cannot connect to NATS at {url}"
    ), lost
    assert down.startswith(f"cannot connect to NATS at {url}: "), down
    assert stored == _expected(_records([1, 2, 3]))


def test_config_that_cannot_work_names_the_field() -> None:
    with pytest.raises(DeliveryError, match=r"^config\.subject: 'audit\.\*' must be a NATS"):
        open_transport(_destination("nats://127.0.0.1:4222", "audit.*"), None)
    with pytest.raises(DeliveryError, match=r"^config\.subject: 'audit trail' must be a NATS"):
        open_transport(_destination("nats://127.0.0.1:4222", "audit trail"), None)
    with pytest.raises(DeliveryError, match=r"^config\.url: 'http://x:4222' must be a nats://"):
        open_transport(_destination("http://x:4222", "audit.trail"), None)


# -- TLS ----------------------------------------------------------------------------------------


def test_over_tls_with_the_ca_file_a_batch_is_stored_in_order_with_its_ids(
    tls_server: NatsServer, certificates: Certificates
) -> None:
    """The server takes only TLS clients: the transport got through its handshake, having
    checked the certificate against ``caFile`` (the system's CAs do not know the test CA)."""
    url, trusting = tls_server.url, _trusting(certificates)
    assert url.startswith("tls://127.0.0.1:")

    async def scenario() -> list[Stored]:
        stream, subject = await _add_stream(url, tls=trusting)
        destination = _destination(url, subject, caFile=str(certificates.ca))
        transport = open_any_transport(destination, None)
        assert isinstance(transport, NatsTransport)
        await transport.check()
        await transport.send(_records([1, 2, 3]))
        await transport.send(_records([4]))
        await transport.close()
        return await _stored(url, stream, subject, tls=trusting)

    assert asyncio.run(scenario()) == _expected(_records([1, 2, 3, 4]))


@pytest.mark.parametrize("trust", ["system", "other-ca"])
def test_over_tls_a_certificate_the_trusted_cas_did_not_sign_fails_the_send(
    tls_server: NatsServer,
    certificates: Certificates,
    tmp_path: Path,
    trust: str,
) -> None:
    """Without ``caFile`` the system's CAs are trusted, and they never signed the test CA;
    nor did another CA. Nothing reaches the stream."""
    url = tls_server.url
    config = {} if trust == "system" else {"caFile": str(make_certificates(tmp_path).ca)}

    async def scenario() -> tuple[str, list[Stored]]:
        stream, subject = await _add_stream(url, tls=_trusting(certificates))
        transport = open_transport(_destination(url, subject, **config), TOKEN)
        with pytest.raises(DeliveryError) as failure:
            await asyncio.wait_for(transport.send(_records([1, 2])), 10)  # a hang fails
        await transport.close()
        return str(failure.value), await _stored(url, stream, subject, tls=_trusting(certificates))

    message, stored = asyncio.run(scenario())
    trusted = (
        "the system's trusted CAs; for a private CA, set config.caFile"
        if trust == "system"
        else f"the CAs in config.caFile {config.get('caFile')!r}"
    )
    assert message == (
        f"cannot connect to NATS at {url}: TLS: the server's certificate was not accepted: "
        f"unable to get local issuer certificate (checked against {trusted})"
    )
    assert TOKEN not in message
    assert stored == []


@pytest.fixture
def tls_server_elsewhere(tmp_path: Path, certificates: Certificates) -> Iterator[NatsServer]:
    """A TLS server with the test CA's certificate for 127.0.0.1 and localhost, listening on
    127.0.0.2, which the certificate does not name."""
    yield from _server(tmp_path, tls=certificates, host="127.0.0.2")


def test_over_tls_a_host_name_the_certificate_does_not_name_fails_the_send(
    tls_server_elsewhere: NatsServer, certificates: Certificates
) -> None:
    """The CA is trusted: only the host name check can refuse the certificate."""
    url = tls_server_elsewhere.url
    assert url.startswith("tls://127.0.0.2:")

    async def scenario() -> str:
        transport = open_transport(
            _destination(url, "audit.trail", caFile=str(certificates.ca)), None
        )
        with pytest.raises(DeliveryError) as failure:
            await asyncio.wait_for(transport.send(_records([1])), 10)
        await transport.close()
        return str(failure.value)

    assert asyncio.run(scenario()) == (
        f"cannot connect to NATS at {url}: TLS: the server's certificate was not accepted: "
        "IP address mismatch, certificate is not valid for '127.0.0.2' "
        f"(checked against the CAs in config.caFile {str(certificates.ca)!r})"
    )


def test_a_nats_url_to_a_tls_server_fails_saying_it_is_the_certificate(
    tls_server: NatsServer,
) -> None:
    """nats-py goes over to TLS when the server requires it, with the system's CAs."""
    url = f"nats://127.0.0.1:{tls_server.port}"

    async def scenario() -> str:
        transport = open_transport(_destination(url, "audit.trail"), None)
        with pytest.raises(DeliveryError) as failure:
            await asyncio.wait_for(transport.send(_records([1])), 10)
        await transport.close()
        return str(failure.value)

    assert asyncio.run(scenario()) == (
        f"cannot connect to NATS at {url}: TLS: the server's certificate was not accepted: "
        "unable to get local issuer certificate (checked against the system's trusted CAs; "
        "for a private CA, set a tls:// URL and config.caFile)"
    )


def test_ca_file_is_only_for_tls_urls_and_must_load(tmp_path: Path) -> None:
    ca = "/etc/ssl/certs/ca-certificates.crt"
    plain = {"url": "nats://h:4222", "subject": "audit.trail", "caFile": ca}
    with pytest.raises(InvalidInput) as refused:
        check_config(StreamKind.NATS, plain)
    assert str(refused.value) == (
        "config.caFile: only for tls:// URLs (the CAs of a TLS server's certificate)"
    )
    over_tls = {**plain, "url": "tls://h:4222"}
    assert check_config(StreamKind.NATS, over_tls) == over_tls
    assert check_config(StreamKind.NATS, {**plain, "caFile": ""})["caFile"] == ""

    with pytest.raises(DeliveryError) as raised:
        open_transport(_destination("nats://h:4222", "audit.trail", caFile=ca), None)
    assert str(raised.value) == "config.caFile: only for tls:// URLs; config.url is 'nats://h:4222'"
    missing = str(tmp_path / "missing.pem")
    with pytest.raises(DeliveryError) as raised:
        open_transport(_destination("tls://h:4222", "audit.trail", caFile=missing), None)
    assert str(raised.value) == (
        f"config.caFile: cannot load {missing!r}: [Errno 2] No such file or directory"
    )
    (tmp_path / "not.pem").write_text("not a certificate\n")
    with pytest.raises(DeliveryError, match=r"^config\.caFile: cannot load '.*not\.pem': "):
        open_transport(
            _destination("tls://h:4222", "audit.trail", caFile=str(tmp_path / "not.pem")), None
        )
    assert isinstance(
        open_transport(_destination("tls://h:4222", "audit.trail"), None), NatsTransport
    )


class _ClearTextServer:
    """A server that answers like nats-server without TLS (its INFO has no ``tls_required``)
    and keeps every byte a client sends: what a man in the middle of a tls:// URL would get.
    A double of the NATS protocol's first messages (INFO, then PONG to a PING), as no real
    server can be told to drop TLS for one client; it answers nothing else."""

    def __init__(self) -> None:
        self.received = bytearray()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                peer, _ = self.listener.accept()
            except OSError:
                return
            info = {"server_id": "double", "version": "2.9.10", "max_payload": 1048576,
                    "auth_required": True, "headers": True, "proto": 1}  # fmt: skip
            peer.sendall(b"INFO " + json.dumps(info).encode() + b"\r\n")
            peer.settimeout(1.0)
            with contextlib.suppress(OSError):
                while chunk := peer.recv(65536):
                    self.received += chunk
                    if b"PING\r\n" in chunk:
                        peer.sendall(b"PONG\r\n")
            peer.close()

    def close(self) -> None:
        self.listener.close()


@pytest.mark.parametrize("token", ["s3cret-token-value", None])
def test_a_tls_url_to_a_server_without_tls_sends_nothing_in_clear(
    certificates: Certificates, token: str | None
) -> None:
    server = _ClearTextServer()
    url = f"tls://127.0.0.1:{server.port}"
    destination = _destination(url, "audit.trail", caFile=str(certificates.ca))

    async def scenario() -> str:
        transport = open_any_transport(destination, token)
        with pytest.raises(DeliveryError) as raised:
            await asyncio.wait_for(transport.send(_records([1])), 10)
        await transport.close()
        return str(raised.value)

    try:
        message = asyncio.run(scenario())
    finally:
        time.sleep(0.2)
        server.close()
    assert "did not ask for TLS" in message and url in message
    assert b"s3cret" not in server.received  # the token was not sent
    assert b"HPUB" not in server.received and b"PUB " not in server.received  # nor a record
    if token:
        assert token not in message
