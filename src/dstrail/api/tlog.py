"""The trail as a C2SP transparency log (``tlog-checkpoint``, ``tlog-tiles``), for any
verifier, under ``/api/dstrail/v1/tlog``:

- ``GET /checkpoint``: the latest checkpoint as a signed note, with the cosignatures of the
  witnesses that cosigned it (``no-cache``);
- ``GET /tile/<L>/<N>[.p/<W>]``: hash tiles (``dstrail.audit.tiles`` says which exist);
- ``GET /tile/entries/<N>[.p/<W>]``: entry bundles, gzip-compressed when the client accepts it.

Auth: the audit API's (a SysAdmin or Auditor API key). With the ``tlog_public`` setting
(``DSTRAIL_TLOG_PUBLIC``) the checkpoint and the hash tiles are served to anyone (they reveal
no event content); entry bundles always need the audit API's authentication, and each one
served is recorded as a read of the trail (``AuditTrailRead``, surface ``tlog``).

Caching: full tiles and bundles never change (``max-age`` a year, ``immutable``); partial ones
are cached a minute; hash tiles are ``public`` only with ``tlog_public`` (else ``private``, as
bundles always are: a shared cache must not hand them to callers without a key).
"""

from __future__ import annotations

import gzip
from typing import Annotated, Final

from fastapi import APIRouter, Depends, Request
from fastapi.responses import PlainTextResponse, Response

from dstrail.api.deps import DstrailDep, get_caller, trail_reader
from dstrail.api.errors import PUBLIC
from dstrail.audit import tiles, tlog
from dstrail.domain.trail import note
from dstrail.services.auth import require_audit_reader
from dstrail.services.trail_reads import Surface, TrailReader

PREFIX = "/api/dstrail/v1/tlog"
TILE_MEDIA_TYPE: Final = "application/octet-stream"
IMMUTABLE: Final = "max-age=31536000, immutable"
PARTIAL: Final = "max-age=60"
router = APIRouter(
    prefix=PREFIX, tags=["transparency log"], responses=PUBLIC.responses(401, 403, 404)
)
_TILE_RESPONSES: Final[dict[int | str, dict[str, object]]] = {
    200: {"content": {TILE_MEDIA_TYPE: {}}, "description": "the tile's bytes"},
    **PUBLIC.responses(400),
}


def get_tlog_reader(request: Request, dstrail: DstrailDep) -> None:
    """Who may read the checkpoint and the hash tiles: anyone with ``tlog_public``, else a
    caller of the audit API (401 without a key, 403 for a plain user)."""
    if not dstrail.settings.tlog_public:
        require_audit_reader(get_caller(request, dstrail))


TlogReaderDep = Annotated[None, Depends(get_tlog_reader)]
EntriesReader = Annotated[TrailReader, Depends(trail_reader(Surface.TLOG))]
"""The caller of an entry bundle, which holds events: a read of the trail, recorded."""


@router.get(
    "/checkpoint",
    summary="The latest checkpoint as a C2SP signed note, with its witnesses' cosignatures",
    # Response, not PlainTextResponse: errors are JSON, and OpenAPI would document them as text
    response_class=Response,
    responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}},
)
def checkpoint(dstrail: DstrailDep, _reader: TlogReaderDep) -> PlainTextResponse:
    """``<origin>``, ``<tree size>``, ``<base64 root>``, a blank line, then the log's
    signature line and one line a cosignature (c2sp.org/tlog-checkpoint). Verify it with the
    vkey of ``/api/datasource/v1/audit/integrity/public-key``."""
    with dstrail.store.read() as tx:
        checkpoint_text = tlog.checkpoint_note(tx)
    # The key is sent in X-Domino-Api-Key, not Authorization, so a shared cache would keep an
    # authenticated answer unless it is marked private.
    cache = "no-cache" if dstrail.settings.tlog_public else "private, no-cache"
    return PlainTextResponse(
        checkpoint_text, media_type=note.TEXT_MEDIA_TYPE, headers={"Cache-Control": cache}
    )


@router.get(
    "/tile/entries/{path:path}",
    summary="An entry bundle: 256 events (or W of a partial one) in their canonical encoding",
    response_class=Response,
    responses={**_TILE_RESPONSES, **PUBLIC.responses(409, 503)},
)
def entry_bundle(
    path: str, request: Request, dstrail: DstrailDep, reader: EntriesReader
) -> Response:
    """``<N>[.p/<W>]``: events ``N * 256 + 1`` onwards, each a big-endian uint16 length then
    the bytes its leaf hashes (c2sp.org/tlog-tiles). Always behind the audit API's auth; each
    bundle served is a read of its events, recorded (``AuditTrailRead``)."""
    tile = tiles.parse_entry_bundle(path)
    with dstrail.store.read() as tx:
        data = tiles.entry_bundle(tx, tile)
    first_seq = tile.first_hash() + 1
    reader.record({"firstSeq": first_seq, "lastSeq": first_seq + tile.width - 1}, rows=tile.width)
    headers = {"Cache-Control": _cache_control(tile, public=False), "Vary": "Accept-Encoding"}
    if accepts_gzip(request.headers.get("accept-encoding", "")):
        data = gzip.compress(data, compresslevel=6, mtime=0)
        headers["Content-Encoding"] = "gzip"
    return Response(data, media_type=TILE_MEDIA_TYPE, headers=headers)


@router.get(
    "/tile/{path:path}",
    summary="A hash tile: 256 Merkle tree hashes of one tile level (or W of a partial one)",
    response_class=Response,
    responses=_TILE_RESPONSES,
)
def hash_tile(path: str, dstrail: DstrailDep, _reader: TlogReaderDep) -> Response:
    """``<L>/<N>[.p/<W>]``: hash ``i`` is the tree hash of the events ``(N * 256 + i) *
    256**L + 1`` to ``(N * 256 + i + 1) * 256**L`` (c2sp.org/tlog-tiles)."""
    tile = tiles.parse_hash_tile(path)
    with dstrail.store.read() as tx:
        data = tiles.hash_tile(tx, tile)
    headers = {"Cache-Control": _cache_control(tile, public=dstrail.settings.tlog_public)}
    return Response(data, media_type=TILE_MEDIA_TYPE, headers=headers)


def _cache_control(tile: tiles.TileId, *, public: bool) -> str:
    return f"{'public' if public else 'private'}, {IMMUTABLE if tile.full else PARTIAL}"


def accepts_gzip(accept_encoding: str) -> bool:
    """Whether an ``Accept-Encoding`` value accepts gzip (``gzip`` or ``*``, with q > 0)."""
    for item in accept_encoding.split(","):
        coding, *parameters = (part.strip() for part in item.split(";"))
        if coding.lower() not in ("gzip", "x-gzip", "*"):
            continue
        quality = 1.0
        for parameter in parameters:
            name, _, value = parameter.partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        return quality > 0
    return False
