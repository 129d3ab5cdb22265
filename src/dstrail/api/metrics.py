"""``GET /metrics``: Prometheus metrics in the text exposition format.

What the trail and the streams say is read from the database at each scrape (so any dstrail
process answers for all of them, wherever the workers run); request latency is this
process's own. Protected, as Prometheus scrapes expect: ``Authorization: Bearer <token>`` with
``DSTRAIL_METRICS_TOKEN``, or the API key of a SysAdmin or Auditor in ``X-Domino-Api-Key``.

- ``dstrail_audit_events_total{kind}``: events appended, by kind;
- ``dstrail_access_refused_total``: refused data source accesses;
- ``dstrail_audit_trail_size``: events in the trail;
- ``dstrail_http_request_duration_seconds{method,status}``: a histogram of request latency
  (status by class: ``2xx``, ``4xx``...);
- per stream destination (label ``destination``): ``dstrail_stream_lag_events``,
  ``dstrail_stream_lag_seconds``, ``dstrail_stream_delivered_total``,
  ``dstrail_stream_errors_total``, ``dstrail_stream_paused``,
  ``dstrail_stream_last_delivery_timestamp_seconds``.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterator
from typing import Any

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from dstrail.api.deps import DstrailDep, bearer_of, credentials_of
from dstrail.api.errors import PUBLIC
from dstrail.context import Dstrail
from dstrail.domain.trail import EventKind
from dstrail.errors import NotAuthenticated
from dstrail.services.auth import authenticate, require_audit_reader
from dstrail.services.metrics import trail_metrics

router = APIRouter(tags=["metrics"], responses=PUBLIC.responses(401, 403))


class TrailCollector(Collector):
    """The trail's and the streams' metrics, read at each scrape."""

    def __init__(self, dstrail: Dstrail) -> None:
        self._dstrail = dstrail

    def collect(self) -> Iterator[Any]:
        now_ms = self._dstrail.clock()
        with self._dstrail.store.read() as tx:
            read = trail_metrics(tx, now_ms=now_ms)
        by_kind, size, statuses = read.events_by_kind, read.trail_size, read.streams
        events = CounterMetricFamily(
            "dstrail_audit_events", "Events appended to the audit trail, by kind", labels=["kind"]
        )
        for kind, count in sorted(by_kind.items()):
            events.add_metric([kind], count)
        yield events
        yield CounterMetricFamily(
            "dstrail_access_refused",
            "Refused data source accesses",
            value=by_kind.get(EventKind.ACCESS_REFUSED.value, 0),
        )
        yield GaugeMetricFamily("dstrail_audit_trail_size", "Events in the trail", value=size)
        families: dict[str, GaugeMetricFamily | CounterMetricFamily] = {
            "lag_events": GaugeMetricFamily(
                "dstrail_stream_lag_events", "Events not yet delivered", labels=["destination"]
            ),
            "lag_seconds": GaugeMetricFamily(
                "dstrail_stream_lag_seconds",
                "Age of the oldest event not yet delivered",
                labels=["destination"],
            ),
            "delivered": CounterMetricFamily(
                "dstrail_stream_delivered", "Records delivered", labels=["destination"]
            ),
            "errors": CounterMetricFamily(
                "dstrail_stream_errors", "Failed deliveries", labels=["destination"]
            ),
            "paused": GaugeMetricFamily(
                "dstrail_stream_paused", "1 when paused", labels=["destination"]
            ),
            "last_delivery": GaugeMetricFamily(
                "dstrail_stream_last_delivery_timestamp_seconds",
                "When a batch was last delivered (epoch seconds)",
                labels=["destination"],
            ),
        }
        for status in statuses:
            name = [status.destination.name]
            state = status.destination.state
            families["lag_events"].add_metric(name, status.lag_events)
            families["lag_seconds"].add_metric(name, status.lag_seconds)
            families["delivered"].add_metric(name, state.delivered)
            families["errors"].add_metric(name, state.errors)
            families["paused"].add_metric(name, 1 if status.destination.paused else 0)
            if state.last_delivery_ms is not None:
                families["last_delivery"].add_metric(name, state.last_delivery_ms / 1000)
        yield from families.values()


class Metrics:
    """One app's registry: the trail collector and the request histogram."""

    def __init__(self, dstrail: Dstrail) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(TrailCollector(dstrail))
        self.requests = Histogram(
            "dstrail_http_request_duration_seconds",
            "HTTP request latency",
            labelnames=("method", "status"),
            registry=self.registry,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
        )

    def observe(self, method: str, status: int, seconds: float) -> None:
        """Count one request (status by class: cardinality stays small)."""
        self.requests.labels(method, f"{status // 100}xx").observe(seconds)


def _check_scraper(request: Request, dstrail: Dstrail) -> None:
    token = dstrail.settings.metrics_token
    bearer = bearer_of(request)
    if token and bearer and hmac.compare_digest(bearer.encode(), token.encode()):
        return
    credentials = credentials_of(request)
    if not credentials.api_key:
        raise NotAuthenticated(
            "metrics need Authorization: Bearer <DSTRAIL_METRICS_TOKEN>, or the API key of a "
            "SysAdmin or Auditor in X-Domino-Api-Key"
        )
    with dstrail.store.read() as tx:
        caller = authenticate(tx, credentials, signing_key=dstrail.keys.signing_key)
    require_audit_reader(caller)


@router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE_LATEST: {}}, "description": "Prometheus text"}},
)
def metrics(request: Request, dstrail: DstrailDep) -> Response:
    """Prometheus metrics (text exposition format)."""
    _check_scraper(request, dstrail)
    registry: Metrics = request.app.state.metrics
    return Response(generate_latest(registry.registry), media_type=CONTENT_TYPE_LATEST)
