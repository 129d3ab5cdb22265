"""``check_destination`` (``stream add --check``): each transport reaches its real peer, or
says why it cannot, without delivering anything."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from dstrail.domain.streams import Destination, StreamFilter, StreamFormat, StreamKind
from dstrail.services.streams import new_webhook_secret
from dstrail.streaming.transports import DeliveryError, check_destination
from tests.client.conftest import free_port
from tests.streaming.receivers import WebhookReceiver
from tests.streaming.rsyslog import Rsyslog, rsyslogd
from tests.streaming.test_nats import NatsServer, _add_stream, _server
from tests.streaming.test_splunk import TOKEN, HecReceiver


def _destination(kind: StreamKind, **config: str) -> Destination:
    return Destination(
        id="6b0792c3673c327b643884fb", name="checked", kind=kind, format=StreamFormat.NATIVE,
        config=config, filter=StreamFilter(), paused=False, cursor=0, generation=0,
        created_at_ms=0, created_by="", has_secret=True,
    )  # fmt: skip


@pytest.fixture
def nats(tmp_path: Path) -> Iterator[NatsServer]:
    (tmp_path / "nats").mkdir()
    yield from _server(tmp_path / "nats")


def test_a_webhook_is_checked_with_a_signed_empty_batch() -> None:
    receiver = WebhookReceiver(secret=new_webhook_secret()).start()
    try:
        check_destination(_destination(StreamKind.WEBHOOK, url=receiver.url), receiver.secret)
        assert (receiver.batches, receiver.rejected) == ([[]], 0)  # verified, and empty
        with pytest.raises(DeliveryError, match="answered 401"):
            check_destination(
                _destination(StreamKind.WEBHOOK, url=receiver.url), new_webhook_secret()
            )
    finally:
        receiver.stop()
    with pytest.raises(DeliveryError, match="ConnectError"):
        check_destination(_destination(StreamKind.WEBHOOK, url=receiver.url), receiver.secret)


def test_splunk_is_checked_on_its_health_endpoint() -> None:
    receiver = HecReceiver().start()
    try:
        check_destination(_destination(StreamKind.SPLUNK_HEC, url=receiver.url), TOKEN)
        assert receiver.events == []
    finally:
        receiver.stop()
    unreachable = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(DeliveryError, match=re.escape(f"GET {unreachable}/services/collector")):
        check_destination(_destination(StreamKind.SPLUNK_HEC, url=unreachable), TOKEN)


def test_syslog_is_checked_by_connecting(tmp_path: Path) -> None:
    server = Rsyslog(rsyslogd(), tmp_path, tls=None)
    server.start()
    target = _destination(StreamKind.SYSLOG, host="127.0.0.1", port=str(server.port))
    try:
        check_destination(target, None)
    finally:
        server.stop()
    with pytest.raises(DeliveryError, match=f"syslog 127.0.0.1:{server.port}: ConnectionRefused"):
        check_destination(target, None)


def test_nats_is_checked_for_a_stream_on_the_subject(nats: NatsServer) -> None:
    _stream, subject = asyncio.run(_add_stream(nats.url))
    check_destination(_destination(StreamKind.NATS, url=nats.url, subject=subject), None)
    missing = _destination(StreamKind.NATS, url=nats.url, subject="no.stream.here")
    with pytest.raises(
        DeliveryError, match=re.escape("no JetStream stream covers subject no.stream.here")
    ):
        check_destination(missing, None)
    nats.stop()
    with pytest.raises(DeliveryError, match="cannot connect to NATS"):
        check_destination(replace(missing, config={"url": nats.url, "subject": subject}), None)
