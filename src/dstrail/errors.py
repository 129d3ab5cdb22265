"""The one error tree. Each error knows its HTTP status; renderers live in ``api.errors``.

::

    DstrailError                 500  something the caller cannot fix
     +-- InvalidInput            400  a parameter or body field is wrong (names it, says what is accepted)
     |    +-- MissingCredentials 400  no stored credentials to reach the data source with
     +-- NotAuthenticated        401  no credential, or an unknown one
     +-- Forbidden               403  a known caller that may not do this
     +-- NotFound                404  no such thing (or not visible to the caller)
     +-- Conflict                409  the change collides with the current state (a name in use)
     +-- UpstreamError           502  a data source behind the proxy failed
     +-- Unavailable             503  not now: a read of the trail could not be recorded
"""

from __future__ import annotations


class DstrailError(Exception):
    """Base of every error dstrail raises on purpose."""

    status_code = 500
    error_type = "InternalError"
    sub_type = ""
    """A code for the exact case, where one is known (a refusal's reason)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidInput(DstrailError):
    """A parameter or body field is wrong; the message names it and what is accepted."""

    status_code = 400
    error_type = "InvalidInput"


class NotAuthenticated(DstrailError):
    """No credential, or one dstrail does not know."""

    status_code = 401
    error_type = "Unauthenticated"


class Forbidden(DstrailError):
    """A known caller that is not allowed to do this."""

    status_code = 403
    error_type = "Forbidden"


class NotFound(DstrailError):
    """The thing does not exist, or the caller may not know it exists."""

    status_code = 404
    error_type = "NotFound"


class Conflict(DstrailError):
    """The change collides with the current state."""

    status_code = 409
    error_type = "Conflict"


class UpstreamError(DstrailError):
    """The data source behind the proxy failed."""

    status_code = 502
    error_type = "UpstreamError"


class Unavailable(DstrailError):
    """dstrail cannot do it now: it could not write what the request requires (such as the
    record of a read of the trail); trying again later may succeed."""

    status_code = 503
    error_type = "Unavailable"


class MissingCredentials(InvalidInput):
    """The data path has no credentials to reach a data source with, for this caller."""

    error_type = "MissingCredentials"
