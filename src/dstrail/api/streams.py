"""Stream destinations over HTTP (``/api/dstrail/v1/streams``): where the trail is pushed,
their lag and last delivery, pausing, replaying, rotating a secret. SysAdmins only, with an API
key (code inside a run, holding the run's token, may not silence the feed). Each change is
recorded in the trail; a secret is never returned, except a webhook signing key dstrail made,
in the answer that made it."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Response, status
from pydantic import BaseModel, ConfigDict, Field

from dstrail.api.deps import DstrailDep, admin_with_api_key, get_caller
from dstrail.api.errors import PUBLIC
from dstrail.api.schemas import TextBody
from dstrail.domain.streams import STREAM_NAME_RULE
from dstrail.domain.timestamps import ACCEPTED_TIME, parse_iso
from dstrail.services import streams as stream_service
from dstrail.services.auth import Caller
from dstrail.services.streams import DestinationSpec
from dstrail.streaming.checks import check_new_destination

router = APIRouter(
    prefix="/api/dstrail/v1/streams",
    tags=["streams"],
    responses=PUBLIC.responses(400, 401, 403),
)
_NAMED = PUBLIC.responses(404)

_WHAT_IT_HOLDS = (
    "encrypted at rest, never returned: a Splunk HEC token, a NATS token, or a webhook's "
    "Standard Webhooks signing key (whsec_...); a webhook given none gets one from dstrail, "
    "returned once as `secret`"
)


def get_admin(caller: Annotated[Caller, Depends(get_caller)]) -> Caller:
    """A SysAdmin with an API key; 403 for anyone else, before the body is read."""
    return admin_with_api_key(caller, managing="stream destinations")


AdminDep = Annotated[Caller, Depends(get_admin)]


# -- shapes ------------------------------------------------------------------------------------


class _Body(TextBody):
    """A request body that refuses unknown fields (400 naming them)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class StreamCreateBody(_Body):
    """``POST /api/dstrail/v1/streams``."""

    name: str = Field(description=STREAM_NAME_RULE)
    kind: str = Field(description="webhook, splunk-hec, syslog or nats")
    format: str = Field(default="native", description="native (default), ocsf or cef")
    config: dict[str, str] = Field(
        default_factory=dict,
        description="the transport's settings: webhook `url`, `body` (json, ndjson); "
        "splunk-hec `url`, `index`, `source`, `sourcetype`, `host`; syslog `host`, `port`, "
        "`tls` (true, false), `caFile`, `appName`; nats `url`, `subject`, `caFile` (tls://)",
    )
    secret: str | None = Field(default=None, description=_WHAT_IT_HOLDS)
    check: bool = Field(
        default=False,
        description="reach the receiver first (a webhook needs its `secret` given); "
        "unreachable: 400 and nothing is added",
    )
    eventKinds: list[str] = Field(  # noqa: N815
        default_factory=list, description="only events of these kinds; default: every kind"
    )
    dataSourceNames: list[str] = Field(  # noqa: N815
        default_factory=list,
        description="only events of these data sources (by the name they had then); "
        "default: every event",
    )
    fromSeq: int | None = Field(  # noqa: N815
        default=None,
        description="the first event to deliver (1: the whole trail); default: the next one "
        "appended",
    )


class ReplayBody(_Body):
    """``POST /api/dstrail/v1/streams/{name}/replay``: exactly one of the two."""

    fromSeq: int | None = Field(default=None, description="deliver again from this seq on")  # noqa: N815
    fromTime: str | None = Field(  # noqa: N815
        default=None,
        description=f"from the first event at or after this time ({ACCEPTED_TIME})",
    )


class SecretBody(_Body):
    """``POST /api/dstrail/v1/streams/{name}/secret``."""

    secret: str | None = Field(default=None, description=f"the new one, {_WHAT_IT_HOLDS}")


class StreamRead(BaseModel):
    """A destination, its lag and what the workers last did with it; never its secret."""

    name: str
    id: str
    kind: str = Field(description="webhook, splunk-hec, syslog or nats")
    format: str = Field(description="native, ocsf or cef")
    target: str = Field(description="where it delivers: the URL, host:port, or URL and subject")
    config: dict[str, str] = Field(description="the transport's settings (no secret)")
    eventKinds: list[str] = Field(description="its filter; empty: every kind")  # noqa: N815
    dataSourceNames: list[str] = Field(description="its filter; empty: every event")  # noqa: N815
    hasSecret: bool = Field(description="whether a secret is stored (never returned)")  # noqa: N815
    paused: bool
    cursor: int = Field(description="the seq of the last event it took (delivered or filtered)")
    lagEvents: int = Field(description="events appended after its cursor")  # noqa: N815
    lagSeconds: float = Field(  # noqa: N815
        description="how long the oldest of those has waited; 0 when caught up"
    )
    delivered: int = Field(description="records delivered since it was added")
    errors: int = Field(description="failed deliveries since it was added")
    lastDelivery: str | None = Field(description="ISO 8601; null: never")  # noqa: N815
    lastError: str = Field(description="why the last delivery failed; empty after a success")  # noqa: N815
    lastErrorAt: str | None = Field(description="ISO 8601; null: no error")  # noqa: N815
    leaseHolder: str = Field(  # noqa: N815
        description="the worker process (host:pid:id) delivering it; empty: none"
    )
    leaseUntil: str | None = Field(description="ISO 8601; when that lease runs out")  # noqa: N815
    createdAt: str = Field(description="ISO 8601")  # noqa: N815
    createdBy: str = Field(description="the id of who added it")  # noqa: N815


class StreamCreated(StreamRead):
    """A destination just added or given a new secret."""

    secret: str | None = Field(
        default=None,
        description="present only when dstrail made a webhook signing key: shown this once",
    )


# -- routes ------------------------------------------------------------------------------------


@router.get("", response_model=list[StreamRead])
def list_streams(dstrail: DstrailDep, caller: AdminDep) -> list[dict[str, Any]]:
    """Every destination by name, with its lag and last delivery."""
    with dstrail.store.read() as tx:
        found = stream_service.statuses(tx, actor=caller.user, now_ms=dstrail.clock())
    return [stream_service.status_document(each) for each in found]


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=StreamCreated,
    response_model_exclude_unset=True,
    responses=PUBLIC.responses(409),
)
def add_stream(body: StreamCreateBody, dstrail: DstrailDep, caller: AdminDep) -> dict[str, Any]:
    """Add a destination (409 when the name is taken); records ``StreamDestinationAdded``."""
    spec = DestinationSpec(
        name=body.name,
        kind=body.kind,
        format=body.format,
        config=body.config,
        secret=body.secret,
        event_kinds=tuple(body.eventKinds),
        data_source_names=tuple(body.dataSourceNames),
        from_seq=body.fromSeq,
    )
    draft = stream_service.draft_destination(spec, actor=caller.user, now_ms=dstrail.clock())
    if body.check:
        check_new_destination(draft, field="check")
    with dstrail.store.write() as tx:
        added = stream_service.add_destination(
            tx, dstrail.vault, spec=spec, actor=caller.user, now_ms=dstrail.clock(), draft=draft
        )
    return stream_service.changed_document(
        dstrail.store,
        added.destination,
        now_ms=dstrail.clock(),
        generated_secret=added.generated_secret,
    )


@router.get("/{name}", response_model=StreamRead, responses=_NAMED)
def get_stream(name: str, dstrail: DstrailDep, caller: AdminDep) -> dict[str, Any]:
    """One destination, with its lag and last delivery."""
    with dstrail.store.read() as tx:
        found = stream_service.status(tx, name=name, actor=caller.user, now_ms=dstrail.clock())
    return stream_service.status_document(found)


def _set_paused(dstrail: DstrailDep, caller: Caller, name: str, paused: bool) -> dict[str, Any]:
    with dstrail.store.write() as tx:
        destination = stream_service.set_paused(
            tx, name=name, paused=paused, actor=caller.user, now_ms=dstrail.clock()
        )
    return stream_service.changed_document(dstrail.store, destination, now_ms=dstrail.clock())


@router.post("/{name}/pause", response_model=StreamRead, responses=_NAMED)
def pause_stream(name: str, dstrail: DstrailDep, caller: AdminDep) -> dict[str, Any]:
    """Stop delivering (the cursor stays); records ``StreamDestinationPaused`` unless it was
    paused already."""
    return _set_paused(dstrail, caller, name, True)


@router.post("/{name}/resume", response_model=StreamRead, responses=_NAMED)
def resume_stream(name: str, dstrail: DstrailDep, caller: AdminDep) -> dict[str, Any]:
    """Deliver again from the cursor; records ``StreamDestinationResumed`` unless it was not
    paused."""
    return _set_paused(dstrail, caller, name, False)


@router.post("/{name}/replay", response_model=StreamRead, responses=_NAMED)
def replay_stream(
    name: str, body: ReplayBody, dstrail: DstrailDep, caller: AdminDep
) -> dict[str, Any]:
    """Deliver again from an event on (by seq, or the first at or after a time); records
    ``StreamDestinationReplayed``."""
    from_time = None if body.fromTime is None else parse_iso(body.fromTime, field="fromTime")
    with dstrail.store.write() as tx:
        destination = stream_service.replay(
            tx, name=name, from_seq=body.fromSeq, from_time_ms=from_time, actor=caller.user,
            now_ms=dstrail.clock(),
        )  # fmt: skip
    return stream_service.changed_document(dstrail.store, destination, now_ms=dstrail.clock())


@router.post(
    "/{name}/secret",
    response_model=StreamCreated,
    response_model_exclude_unset=True,
    responses=_NAMED,
)
def rotate_secret(
    name: str, dstrail: DstrailDep, caller: AdminDep, body: SecretBody | None = None
) -> dict[str, Any]:
    """Replace the secret (a webhook given none gets a new signing key, returned once);
    records ``StreamDestinationSecretRotated``."""
    secret = body.secret if body is not None else None
    with dstrail.store.write() as tx:
        rotated = stream_service.rotate_secret(
            tx, dstrail.vault, name=name, secret=secret, actor=caller.user, now_ms=dstrail.clock()
        )
    return stream_service.changed_document(
        dstrail.store,
        rotated.destination,
        now_ms=dstrail.clock(),
        generated_secret=rotated.generated_secret,
    )


@router.delete("/{name}", status_code=status.HTTP_204_NO_CONTENT, responses=_NAMED)
def remove_stream(name: str, dstrail: DstrailDep, caller: AdminDep) -> Response:
    """Remove a destination and its cursor; records ``StreamDestinationRemoved``."""
    with dstrail.store.write() as tx:
        stream_service.remove(tx, name=name, actor=caller.user, now_ms=dstrail.clock())
    return Response(status_code=status.HTTP_204_NO_CONTENT)
