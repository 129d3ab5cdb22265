"""The streams page (SysAdmins): each destination's target, cursor, lag and last delivery or
error, as ``dstrail stream list`` shows them. Destinations are managed with the CLI or the
streams API, each change recorded."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from dstrail.api.deps import DstrailDep
from dstrail.domain.timestamps import format_ms
from dstrail.services import streams as stream_service
from dstrail.web.deps import SignedInDep
from dstrail.web.pages import page

router = APIRouter(include_in_schema=False)


@router.get("/streams")
def streams_page(request: Request, dstrail: DstrailDep, signed_in: SignedInDep) -> Response:
    """Every stream destination and how far behind the trail it is."""
    with dstrail.store.read() as tx:
        statuses = stream_service.statuses(tx, actor=signed_in.user, now_ms=dstrail.clock())
    rows = [
        {
            "status": status,
            "target": stream_service.target_of(status.destination),
            "last_delivery": format_ms(ms) if (ms := status.state.last_delivery_ms) else "never",
            "last_error_at": format_ms(ms) if (ms := status.state.last_error_ms) else "",
        }
        for status in statuses
    ]
    return page(
        request, dstrail, "streams.html", {"rows": rows},
        user=signed_in.user, session=signed_in.session,
    )  # fmt: skip
