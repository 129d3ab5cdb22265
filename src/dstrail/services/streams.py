"""Managing stream destinations (SysAdmins only): every change is recorded in the trail in the
same transaction, since silencing the SIEM feed is itself an event worth seeing.

A destination's secret (a webhook's signing key, a Splunk HEC token, a NATS token) is
encrypted with the credential vault's key, never returned, logged or recorded: events name
only whether a secret was set. A webhook without a secret gets a new Standard Webhooks key,
shown once when it is added.
"""

from __future__ import annotations

import base64
import re
import secrets
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import urlsplit

from dstrail.audit.recorder import record_platform_event
from dstrail.domain.datasources import NAME_PATTERN as DATA_SOURCE_NAME_PATTERN
from dstrail.domain.datasources import NAME_RULE as DATA_SOURCE_NAME_RULE
from dstrail.domain.ids import new_object_id
from dstrail.domain.streams import (
    STREAM_NAME_PATTERN,
    STREAM_NAME_RULE,
    DeliveryState,
    Destination,
    StreamFilter,
    StreamFormat,
    StreamKind,
)
from dstrail.domain.text import ACCEPTED_TEXT, check_text, text_problem
from dstrail.domain.timestamps import format_ms
from dstrail.domain.trail import EventKind, parse_event_kind
from dstrail.domain.users import User
from dstrail.errors import InvalidInput, NotFound
from dstrail.services.credentials import CredentialVault
from dstrail.services.users import require_admin
from dstrail.store import Repositories, Store

_NAME = re.compile(STREAM_NAME_PATTERN)
_SUBJECT = re.compile(r"[^\s.*>]+(\.[^\s.*>]+)*")
_APP_NAME = re.compile(r"[!-~]{1,48}")
_HOST = re.compile(r"^[A-Za-z0-9.-]{1,253}$|^\[[0-9A-Fa-f:.]+\]$")
MAX_CONFIG_VALUE = 2048
MAX_SECRET = 8192
"""Characters of a secret accepted (a token, a signing key)."""
MAX_FILTER_VALUES = 100
"""Event kinds, and data source names, a filter may name."""
MAX_FILTER_NAME = 200
"""Characters of a refused data source name quoted back."""
_DATA_SOURCE_NAME = re.compile(DATA_SOURCE_NAME_PATTERN)

CONFIG_KEYS: dict[StreamKind, dict[str, bool]] = {
    StreamKind.WEBHOOK: {"url": True, "body": False},
    StreamKind.SPLUNK_HEC: {
        "url": True, "index": False, "source": False, "sourcetype": False, "host": False,
    },
    StreamKind.SYSLOG: {"host": True, "port": True, "tls": False, "caFile": False, "appName": False},
    StreamKind.NATS: {"url": True, "subject": True, "caFile": False},
}  # fmt: skip
"""Each transport's config keys, and whether it is required."""

SECRET_REQUIRED = frozenset({StreamKind.SPLUNK_HEC})
WEBHOOK_SECRET_PREFIX = "whsec_"  # noqa: S105 - the format's prefix


@dataclass(frozen=True, slots=True)
class DestinationSpec:
    """What a caller gives to add a destination."""

    name: str
    kind: str
    format: str = StreamFormat.NATIVE.value
    config: dict[str, str] | None = None
    secret: str | None = None
    event_kinds: tuple[str, ...] = ()
    data_source_names: tuple[str, ...] = ()
    from_seq: int | None = None
    """The first event to deliver; default: the next one appended (nothing of the past)."""


@dataclass(frozen=True, slots=True)
class AddedDestination:
    """A new destination, and its webhook signing key when dstrail made one (shown once)."""

    destination: Destination
    generated_secret: str | None


def _choice(value: str, enum: type[StreamKind] | type[StreamFormat], field: str) -> str:
    accepted = [member.value for member in enum]
    if value not in accepted:
        raise InvalidInput(f"{field}: unknown value {value!r}; accepted: {', '.join(accepted)}")
    return value


def check_config(kind: StreamKind, config: dict[str, str] | None) -> dict[str, str]:
    """A transport's config, each key known and each required one given; ``InvalidInput``
    naming the field otherwise."""
    config = dict(config or {})
    keys = CONFIG_KEYS[kind]
    for key, value in config.items():
        if key not in keys:
            raise InvalidInput(
                f"config: {key!r} is not a {kind.value} setting; accepted: {', '.join(keys)}"
            )
        if not isinstance(value, str) or len(value) > MAX_CONFIG_VALUE:
            raise InvalidInput(
                f"config.{key}: must be text of at most {MAX_CONFIG_VALUE} characters"
            )
        check_text(value, field=f"config.{key}")
    missing = [key for key, required in keys.items() if required and not config.get(key)]
    if missing:
        raise InvalidInput(f"config: a {kind.value} destination needs {', '.join(missing)}")
    if "url" in config:
        _check_url(kind, config["url"])
    if kind is StreamKind.SYSLOG:
        _check_syslog(config)
    if kind is StreamKind.NATS and not _SUBJECT.fullmatch(config["subject"]):
        raise InvalidInput(
            "config.subject: a NATS subject to publish to: dot-separated tokens, no spaces "
            "or wildcards (* >)"
        )
    if kind is StreamKind.NATS and config.get("caFile") and not config["url"].startswith("tls://"):
        raise InvalidInput(
            "config.caFile: only for tls:// URLs (the CAs of a TLS server's certificate)"
        )
    if kind is StreamKind.WEBHOOK and config.get("body", "json") not in ("json", "ndjson"):
        raise InvalidInput("config.body: accepted: json (a JSON array a batch), ndjson")
    return config


def _check_url(kind: StreamKind, url: str) -> None:
    schemes = ("nats", "tls") if kind is StreamKind.NATS else ("https", "http")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as error:
        raise InvalidInput(f"config.url: {url!r} is not a URL: {error}") from None
    if parts.scheme not in schemes or not parts.hostname:
        raise InvalidInput(f"config.url: {url!r} must be a {' or '.join(schemes)} URL with a host")
    if parts.username or parts.password:
        raise InvalidInput("config.url: put credentials in the secret, not in the URL")
    _ = port


def _check_syslog(config: dict[str, str]) -> None:
    if not _HOST.fullmatch(config["host"]):
        raise InvalidInput(f"config.host: {config['host']!r} is not a host name or address")
    if not config["port"].isdigit() or not 1 <= int(config["port"]) <= 65535:
        raise InvalidInput(f"config.port: {config['port']!r} must be 1 to 65535")
    if config.get("tls", "false") not in ("true", "false"):
        raise InvalidInput("config.tls: accepted: true (RFC 5425), false (plain TCP, RFC 6587)")
    if "appName" in config and not _APP_NAME.fullmatch(config["appName"]):
        raise InvalidInput("config.appName: 1 to 48 printable ASCII characters, no spaces")
    if config.get("caFile") and config.get("tls") != "true":
        raise InvalidInput("config.caFile: only with tls true (plain TCP checks no certificate)")


def _check_filter(spec: DestinationSpec) -> StreamFilter:
    for field, values in (
        ("eventKinds", spec.event_kinds),
        ("dataSourceNames", spec.data_source_names),
    ):
        if len(values) > MAX_FILTER_VALUES:
            raise InvalidInput(f"{field}: at most {MAX_FILTER_VALUES} values")
    for value in spec.data_source_names:
        check_text(value, field="dataSourceNames")
        if not _DATA_SOURCE_NAME.fullmatch(value):
            raise InvalidInput(
                f"dataSourceNames: {value[:MAX_FILTER_NAME]!r} is not a data source name; "
                f"accepted: {DATA_SOURCE_NAME_RULE}"
            )
    for value in spec.event_kinds:
        try:
            parse_event_kind(value)
        except ValueError as error:
            raise InvalidInput(f"eventKinds: {error}") from None
    return StreamFilter(
        event_kinds=tuple(sorted(set(spec.event_kinds))),
        data_source_names=tuple(sorted(set(spec.data_source_names))),
    )


def new_webhook_secret() -> str:
    """A Standard Webhooks signing key: ``whsec_`` and 32 random bytes in base64."""
    return WEBHOOK_SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def _check_secret(kind: StreamKind, secret: str | None) -> str | None:
    if secret is None or secret == "":
        if kind in SECRET_REQUIRED:
            raise InvalidInput(f"secret: a {kind.value} destination needs one (its token)")
        return None
    if len(secret) > MAX_SECRET:
        raise InvalidInput(f"secret: at most {MAX_SECRET} characters")
    if text_problem(secret) is not None:  # not check_text: its message quotes a character
        raise InvalidInput(f"secret: accepted: {ACCEPTED_TEXT}")
    if kind is StreamKind.WEBHOOK:
        key = secret.removeprefix(WEBHOOK_SECRET_PREFIX)
        try:
            if len(base64.b64decode(key, validate=True)) < 24:
                raise ValueError("too short")
        except ValueError:
            raise InvalidInput(
                "secret: a webhook signing key is whsec_ and at least 24 bytes in base64 "
                "(Standard Webhooks); leave it out for dstrail to make one"
            ) from None
    return secret


@dataclass(frozen=True, slots=True)
class DraftDestination:
    """A destination checked but not stored: what ``stream add --check`` probes."""

    destination: Destination
    secret: str | None
    generated: bool
    """Whether dstrail made the secret (a webhook's signing key nobody knows yet)."""


def draft_destination(spec: DestinationSpec, *, actor: User, now_ms: int) -> DraftDestination:
    """Check everything about ``spec`` that needs no database; ``InvalidInput`` naming the
    field otherwise. The draft's cursor is 0 (``add_destination`` sets it)."""
    require_admin(actor, "adding a stream destination")
    if not _NAME.fullmatch(spec.name):
        raise InvalidInput(f"name: {spec.name!r} is not accepted; accepted: {STREAM_NAME_RULE}")
    kind = StreamKind(_choice(spec.kind, StreamKind, "kind"))
    format_ = StreamFormat(_choice(spec.format, StreamFormat, "format"))
    config = check_config(kind, spec.config)
    stream_filter = _check_filter(spec)
    secret = _check_secret(kind, spec.secret)
    generated = secret is None and kind is StreamKind.WEBHOOK
    if generated:
        secret = new_webhook_secret()
    destination = Destination(
        id=new_object_id(),
        name=spec.name,
        kind=kind,
        format=format_,
        config=config,
        filter=stream_filter,
        paused=False,
        cursor=0,
        generation=0,
        created_at_ms=now_ms,
        created_by=actor.id,
        has_secret=secret is not None,
    )
    return DraftDestination(destination=destination, secret=secret, generated=generated)


def add_destination(
    tx: Repositories,
    vault: CredentialVault,
    *,
    spec: DestinationSpec,
    actor: User,
    now_ms: int,
    draft: DraftDestination | None = None,
) -> AddedDestination:
    """Add a destination (``draft``: the one already drafted from ``spec``, and checked);
    records ``StreamDestinationAdded`` (never its secret)."""
    draft = draft or draft_destination(spec, actor=actor, now_ms=now_ms)
    size = tx.audit.size()
    start = size + 1 if spec.from_seq is None else spec.from_seq
    if not 1 <= start <= size + 1:
        raise InvalidInput(f"fromSeq: must be 1 to {size + 1} (the next event)")
    destination = replace(draft.destination, cursor=start - 1)
    secret, stream_filter = draft.secret, destination.filter
    tx.streams.add(destination, secret=vault.seal({"secret": secret}) if secret else None)
    _record(tx, EventKind.STREAM_ADDED, destination, actor, now_ms, {
        "kind": destination.kind.value,
        "format": destination.format.value,
        "target": target_of(destination),
        "fromSeq": str(start),
        "eventKinds": ",".join(stream_filter.event_kinds),
        "dataSourceNames": ",".join(stream_filter.data_source_names),
        "secretSet": "true" if secret else "false",
    })  # fmt: skip
    return AddedDestination(
        destination=destination, generated_secret=secret if draft.generated else None
    )


def target_of(destination: Destination) -> str:
    """Where it delivers, for people: the URL, or host:port for syslog (never a secret)."""
    config = destination.config
    if destination.kind is StreamKind.SYSLOG:
        return f"{config['host']}:{config['port']}" + (
            " (TLS)" if config.get("tls") == "true" else ""
        )
    if destination.kind is StreamKind.NATS:
        return f"{config['url']} {config['subject']}"
    return config["url"]


def _get(tx: Repositories, name: str, actor: User, action: str) -> Destination:
    require_admin(actor, action)
    destination = tx.streams.by_name(name, for_update=True)
    if destination is None:
        raise NotFound(f"no stream destination named {name!r}")
    return destination


def _record(
    tx: Repositories,
    kind: EventKind,
    destination: Destination,
    actor: User,
    now_ms: int,
    metadata: dict[str, str] | None = None,
) -> None:
    record_platform_event(
        tx, kind=kind, actor=actor, now_ms=now_ms,
        metadata={"streamId": destination.id, "streamName": destination.name, **(metadata or {})},
    )  # fmt: skip


def set_paused(
    tx: Repositories, *, name: str, paused: bool, actor: User, now_ms: int
) -> Destination:
    """Pause or resume; records ``StreamDestinationPaused`` / ``Resumed`` when it changes."""
    destination = _get(tx, name, actor, "pausing a stream destination")
    if destination.paused == paused:
        return destination
    tx.streams.set_paused(destination.id, paused)
    kind = EventKind.STREAM_PAUSED if paused else EventKind.STREAM_RESUMED
    _record(tx, kind, destination, actor, now_ms, {"cursor": str(destination.cursor)})
    return replace(destination, paused=paused)


def replay(
    tx: Repositories,
    *,
    name: str,
    from_seq: int | None,
    from_time_ms: int | None,
    actor: User,
    now_ms: int,
) -> Destination:
    """Deliver again from an event on (by seq, or the first at or after a time); records
    ``StreamDestinationReplayed``. A time only picks the first seq: delivery goes by seq."""
    destination = _get(tx, name, actor, "replaying a stream destination")
    if (from_seq is None) == (from_time_ms is None):
        raise InvalidInput("replay: give exactly one of fromSeq and fromTime")
    size = tx.audit.size()
    if from_time_ms is not None:
        found = tx.audit.first_seq_from(from_time_ms)
        start = found if found is not None else size + 1
    else:
        assert from_seq is not None
        start = from_seq
    if not 1 <= start <= size + 1:
        raise InvalidInput(f"fromSeq: must be 1 to {size + 1} (the next event)")
    tx.streams.rewind(destination.id, start - 1)
    _record(tx, EventKind.STREAM_REPLAYED, destination, actor, now_ms, {
        "fromSeq": str(start), "previousCursor": str(destination.cursor),
    })  # fmt: skip
    return replace(destination, cursor=start - 1, generation=destination.generation + 1)


def rotate_secret(
    tx: Repositories,
    vault: CredentialVault,
    *,
    name: str,
    secret: str | None,
    actor: User,
    now_ms: int,
) -> AddedDestination:
    """Replace the secret (a webhook without one given gets a new key, shown once); records
    ``StreamDestinationSecretRotated``."""
    destination = _get(tx, name, actor, "rotating a stream destination's secret")
    checked = _check_secret(destination.kind, secret)
    generated = None
    if checked is None:
        if destination.kind is not StreamKind.WEBHOOK:
            raise InvalidInput("secret: give the new one")
        checked = generated = new_webhook_secret()
    tx.streams.set_secret(destination.id, vault.seal({"secret": checked}))
    _record(tx, EventKind.STREAM_SECRET_ROTATED, destination, actor, now_ms)
    return AddedDestination(
        destination=replace(destination, has_secret=True), generated_secret=generated
    )


def remove(tx: Repositories, *, name: str, actor: User, now_ms: int) -> Destination:
    """Remove a destination (its cursor with it); records ``StreamDestinationRemoved``."""
    destination = _get(tx, name, actor, "removing a stream destination")
    tx.streams.remove(destination.id)
    _record(tx, EventKind.STREAM_REMOVED, destination, actor, now_ms, {
        "cursor": str(destination.cursor), "target": target_of(destination),
    })  # fmt: skip
    return destination


def destinations(tx: Repositories, *, actor: User) -> list[Destination]:
    """Every destination (SysAdmins)."""
    require_admin(actor, "listing stream destinations")
    return tx.streams.all()


def secret_of(tx: Repositories, vault: CredentialVault, destination: Destination) -> str | None:
    """The destination's secret, for its transport only."""
    sealed = tx.streams.secret_of(destination.id)
    return vault.open(sealed)["secret"] if sealed else None


# -- status ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DestinationStatus:
    """A destination and how far behind the trail it is."""

    destination: Destination
    lag_events: int
    """Events appended after its cursor (those its filter skips included): 0 when caught up."""
    lag_seconds: float
    """How long the oldest of those has waited (now - its time); 0 when caught up."""

    @property
    def state(self) -> DeliveryState:
        """What the workers last did with it."""
        return self.destination.state


def status_of(tx: Repositories, destination: Destination, *, now_ms: int) -> DestinationStatus:
    """The lag of ``destination``, read in ``tx`` (the trail's size and one event's time)."""
    lag_events = max(0, tx.audit.size() - destination.cursor)
    lag_ms = 0
    if lag_events:
        oldest = tx.audit.timestamp_of(destination.cursor + 1)
        lag_ms = max(0, now_ms - oldest) if oldest is not None else 0
    return DestinationStatus(
        destination=destination, lag_events=lag_events, lag_seconds=lag_ms / 1000
    )


def statuses(tx: Repositories, *, actor: User, now_ms: int) -> list[DestinationStatus]:
    """Every destination with its lag, by name (SysAdmins)."""
    return [status_of(tx, d, now_ms=now_ms) for d in destinations(tx, actor=actor)]


def status(tx: Repositories, *, name: str, actor: User, now_ms: int) -> DestinationStatus:
    """One destination with its lag (SysAdmins); ``NotFound`` for an unknown name."""
    require_admin(actor, "reading a stream destination")
    destination = tx.streams.by_name(name)
    if destination is None:
        raise NotFound(f"no stream destination named {name!r}")
    return status_of(tx, destination, now_ms=now_ms)


def _iso(ms: int | None) -> str | None:
    return format_ms(ms) if ms is not None else None


def status_document(found: DestinationStatus) -> dict[str, Any]:
    """A destination as ``dstrail stream`` and the streams API show it: its settings (never
    its secret, only whether it has one), its cursor and lag, what the workers last did.
    Times are ISO 8601 (UTC), null when it never happened."""
    destination, state = found.destination, found.state
    return {
        "name": destination.name,
        "id": destination.id,
        "kind": destination.kind.value,
        "format": destination.format.value,
        "target": target_of(destination),
        "config": dict(destination.config),
        "eventKinds": list(destination.filter.event_kinds),
        "dataSourceNames": list(destination.filter.data_source_names),
        "hasSecret": destination.has_secret,
        "paused": destination.paused,
        "cursor": destination.cursor,
        "lagEvents": found.lag_events,
        "lagSeconds": found.lag_seconds,
        "delivered": state.delivered,
        "errors": state.errors,
        "lastDelivery": _iso(state.last_delivery_ms),
        "lastError": state.last_error,
        "lastErrorAt": _iso(state.last_error_ms),
        "leaseHolder": state.lease_owner,
        "leaseUntil": _iso(state.lease_until_ms) if state.lease_owner else None,
        "createdAt": format_ms(destination.created_at_ms),
        "createdBy": destination.created_by,
    }


def changed_document(
    store: Store, destination: Destination, *, now_ms: int, generated_secret: str | None = None
) -> dict[str, Any]:
    """What a change to a destination answers (CLI and REST): its ``status_document``, read
    in a transaction of its own after the change's commit (which appended the change's own
    event), and the signing key dstrail made, if it made one (shown this once)."""
    with store.read() as tx:
        document = status_document(status_of(tx, destination, now_ms=now_ms))
    if generated_secret is not None:
        document["secret"] = generated_secret
    return document
