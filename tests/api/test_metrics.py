"""``GET /metrics``: Prometheus text, readable by Prometheus's own parser, and protected."""

from __future__ import annotations

from dataclasses import replace

from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from dstrail.app import create_app
from dstrail.context import Dstrail
from dstrail.services import streams as stream_service
from dstrail.services.streams import DestinationSpec
from tests.support import Login, audit_count, create_dataset


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_only_audit_readers_or_the_metrics_token_may_scrape(
    client: TestClient, dstrail: Dstrail, admin: Login, alice: Login
) -> None:
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", headers=alice.headers).status_code == 403
    answer = client.get("/metrics", headers=admin.headers)
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/plain; version=")
    with_token = replace(
        dstrail, settings=dstrail.settings.model_copy(update={"metrics_token": "s3cr3t-token"})
    )
    with TestClient(create_app(with_token)) as scraper:
        assert (
            scraper.get("/metrics", headers={"Authorization": "Bearer s3cr3t-token"}).status_code
            == 200
        )
        wrong = scraper.get("/metrics", headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401
        assert "s3cr3t-token" not in wrong.text


def test_the_trail_the_streams_and_request_latency(
    client: TestClient, dstrail: Dstrail, admin: Login, alice: Login
) -> None:
    for name in ("a", "b"):
        create_dataset(dstrail, alice, name)
    with dstrail.store.write() as tx:
        stream_service.add_destination(
            tx, dstrail.vault, actor=admin.user, now_ms=dstrail.clock(),
            spec=DestinationSpec(name="siem", kind="webhook", config={"url": "http://127.0.0.1:9/x"}, from_seq=1),
        )  # fmt: skip
    client.get("/healthz")
    samples = _samples(client.get("/metrics", headers=admin.headers).text)
    size = audit_count(dstrail)
    assert samples[("dstrail_audit_events_total", (("kind", "CreateDataSource"),))] == 2
    assert samples[("dstrail_audit_trail_size", ())] == size
    assert samples[("dstrail_access_refused_total", ())] == 0
    assert samples[("dstrail_stream_lag_events", (("destination", "siem"),))] == size
    assert samples[("dstrail_stream_delivered_total", (("destination", "siem"),))] == 0
    assert samples[("dstrail_stream_paused", (("destination", "siem"),))] == 0
    healthz = (("method", "GET"), ("status", "2xx"))
    assert samples[("dstrail_http_request_duration_seconds_count", healthz)] >= 1
