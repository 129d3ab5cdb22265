"""The data path: signed URLs and listings for object stores, Arrow Flight for tabular sources.

Access decisions and their audit events live in ``dstrail.services.access``; this package only
serves what was granted.
"""

from dstrail.proxy.flight import FlightService, start_flight_server
from dstrail.proxy.objectstore import list_keys, signed_url

__all__ = ["FlightService", "list_keys", "signed_url", "start_flight_server"]
