"""Checking a destination before it is added (``stream add --check``, ``"check": true``):
its receiver must be reachable, or the add is refused and nothing changes."""

from __future__ import annotations

from dstrail.errors import InvalidInput
from dstrail.services.streams import DraftDestination
from dstrail.streaming.transports import DeliveryError, check_destination


def check_new_destination(draft: DraftDestination, *, field: str) -> None:
    """Reach the drafted destination's receiver; ``InvalidInput`` naming ``field`` and why
    when it cannot."""
    if draft.generated:
        raise InvalidInput(
            f"{field}: a webhook is checked with its signing key: give it (one dstrail makes "
            "is known to the receiver only once the destination is added)"
        )
    try:
        check_destination(draft.destination, draft.secret)
    except DeliveryError as error:
        raise InvalidInput(f"{field}: the receiver cannot be reached: {error}") from None
