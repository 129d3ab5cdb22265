"""Stream destinations: their settings (in a management transaction) and their cursor, lease
and delivery state (written by the workers, each in a short transaction of its own)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson
from sqlalchemy import Connection, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from dstrail.domain.streams import (
    DeliveryState,
    Destination,
    StreamFilter,
    StreamFormat,
    StreamKind,
)
from dstrail.errors import Conflict
from dstrail.store.schema import stream_destinations

_T = stream_destinations.c
_COLUMNS = (
    _T.id, _T.name, _T.kind, _T.format, _T.config, _T.filter_kinds, _T.filter_names,
    _T.secret.isnot(None), _T.paused, _T.cursor_seq, _T.generation, _T.created_at,
    _T.created_by, _T.last_delivery_at, _T.last_error, _T.last_error_at, _T.delivered,
    _T.lease_owner, _T.lease_until, _T.errors,
)  # fmt: skip
MAX_ERROR = 1000
"""Characters of a delivery error kept (the rest is cut)."""


def _destination(row: Sequence[Any]) -> Destination:
    (
        id_, name, kind, format_, config, kinds, names, has_secret, paused, cursor, generation,
        created_at, created_by, delivered_at, error, error_at, delivered, owner, until, errors,
    ) = row  # fmt: skip
    return Destination(
        id=id_,
        name=name,
        kind=StreamKind(kind),
        format=StreamFormat(format_),
        config=orjson.loads(config),
        filter=StreamFilter(
            event_kinds=tuple(orjson.loads(kinds)), data_source_names=tuple(orjson.loads(names))
        ),
        paused=bool(paused),
        cursor=int(cursor),
        generation=int(generation),
        created_at_ms=int(created_at),
        created_by=created_by,
        has_secret=bool(has_secret),
        state=DeliveryState(
            last_delivery_ms=delivered_at,
            last_error=error,
            last_error_ms=error_at,
            delivered=int(delivered),
            lease_owner=owner,
            lease_until_ms=int(until),
            errors=int(errors),
        ),
    )


class StreamRepository:
    """Reads and writes stream destinations."""

    def __init__(self, connection: Connection) -> None:
        self._db = connection

    # -- reads ---------------------------------------------------------------------------------

    def all(self) -> list[Destination]:
        """Every destination, by name."""
        rows = self._db.execute(select(*_COLUMNS).order_by(_T.name))
        return [_destination(row) for row in rows]

    def by_id(self, destination_id: str) -> Destination | None:
        """One destination by id."""
        row = self._db.execute(select(*_COLUMNS).where(_T.id == destination_id)).first()
        return _destination(row) if row else None

    def by_name(self, name: str, *, for_update: bool = False) -> Destination | None:
        """One destination; ``for_update`` locks its row."""
        query = select(*_COLUMNS).where(_T.name == name)
        row = self._db.execute(query.with_for_update() if for_update else query).first()
        return _destination(row) if row else None

    def secret_of(self, destination_id: str) -> str | None:
        """The encrypted secret (``CredentialVault`` ciphertext), if it has one."""
        value: str | None = self._db.execute(
            select(_T.secret).where(_T.id == destination_id)
        ).scalar()
        return value

    # -- management ----------------------------------------------------------------------------

    def add(self, destination: Destination, *, secret: str | None) -> None:
        """Insert a destination; ``Conflict`` when its name is taken."""
        try:
            with self._db.begin_nested():
                self._db.execute(
                    insert(stream_destinations).values(
                        id=destination.id,
                        name=destination.name,
                        kind=destination.kind.value,
                        format=destination.format.value,
                        config=orjson.dumps(destination.config).decode(),
                        filter_kinds=orjson.dumps(destination.filter.event_kinds).decode(),
                        filter_names=orjson.dumps(destination.filter.data_source_names).decode(),
                        secret=secret,
                        paused=destination.paused,
                        cursor_seq=destination.cursor,
                        generation=destination.generation,
                        created_at=destination.created_at_ms,
                        created_by=destination.created_by,
                        lease_owner="",
                        lease_until=0,
                        last_error="",
                        delivered=0,
                    )
                )
        except IntegrityError:
            raise Conflict(f"a stream destination is already named {destination.name!r}") from None

    def set_paused(self, destination_id: str, paused: bool) -> None:
        """Pause or resume."""
        self._db.execute(update(stream_destinations).where(_T.id == destination_id).values(
            paused=paused
        ))  # fmt: skip

    def rewind(self, destination_id: str, cursor: int) -> None:
        """Move the cursor (a replay) and bump the generation, so that no worker mid-batch
        moves it past the replay."""
        self._db.execute(
            update(stream_destinations)
            .where(_T.id == destination_id)
            .values(cursor_seq=cursor, generation=_T.generation + 1, last_error="")
        )

    def set_secret(self, destination_id: str, secret: str | None) -> None:
        """Replace the encrypted secret."""
        self._db.execute(update(stream_destinations).where(_T.id == destination_id).values(
            secret=secret
        ))  # fmt: skip

    def remove(self, destination_id: str) -> None:
        """Delete a destination."""
        self._db.execute(delete(stream_destinations).where(_T.id == destination_id))

    # -- the workers ---------------------------------------------------------------------------

    def take_lease(self, destination_id: str, *, owner: str, now_ms: int, until_ms: int) -> bool:
        """Hold (or renew) the right to deliver a destination until ``until_ms``: granted when
        nobody holds it, it ran out, or ``owner`` holds it already."""
        result = self._db.execute(
            update(stream_destinations)
            .where(_T.id == destination_id)
            .where((_T.lease_owner == owner) | (_T.lease_until < now_ms) | (_T.lease_owner == ""))
            .values(lease_owner=owner, lease_until=until_ms)
        )
        return result.rowcount == 1

    def release_lease(self, destination_id: str, *, owner: str) -> None:
        """Give the lease up (a worker stopping)."""
        self._db.execute(
            update(stream_destinations)
            .where(_T.id == destination_id, _T.lease_owner == owner)
            .values(lease_owner="", lease_until=0)
        )

    def advance(
        self,
        destination_id: str,
        *,
        owner: str,
        generation: int,
        cursor: int,
        delivered: int,
        now_ms: int,
    ) -> bool:
        """Move the cursor forward after a delivery; only for the lease holder, only when no
        replay happened since the batch was read (``generation``) and only while it is not
        paused."""
        values: dict[str, Any] = {"cursor_seq": cursor, "delivered": _T.delivered + delivered}
        if delivered:
            values.update(last_delivery_at=now_ms, last_error="", last_error_at=None)
        result = self._db.execute(
            update(stream_destinations)
            .where(
                _T.id == destination_id,
                _T.lease_owner == owner,
                _T.generation == generation,
                _T.paused.is_(False),
                _T.cursor_seq < cursor,
            )
            .values(**values)
        )
        return result.rowcount == 1

    def note_error(self, destination_id: str, *, owner: str, error: str, now_ms: int) -> None:
        """Say why the last delivery failed (the cursor stays)."""
        self._db.execute(
            update(stream_destinations)
            .where(_T.id == destination_id, _T.lease_owner == owner)
            .values(last_error=error[:MAX_ERROR], last_error_at=now_ms, errors=_T.errors + 1)
        )
