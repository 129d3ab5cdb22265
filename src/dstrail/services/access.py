"""Code reaching data sources: every access decision and its audit event in one transaction.

The rules (SPEC sections 2 and 4):

- the caller may use the data source (owner, listed user, or a data source for everyone);
- a run id is accepted only from the user who started that run, or with that run's own token,
  and only while the run is running; the run keys of the event (``runType``, ``projectId``,
  ``runId``, ``dataPlaneId``) come from the run dstrail knows, never from the caller;
- a refused attempt raises ``AccessRefused``: nothing of its transaction is kept, the refusal is
  recorded and committed in a transaction of its own, and the entry point answers 403;
- access from outside any run is recorded without run keys.

Overwrites sent by the client: ``configOverwrites`` may change the config keys Domino accepts
for the data source's type (``CONFIG_OVERWRITES``: a bucket, region, subfolder, database...),
as on Domino. Since they can aim the owner's credentials elsewhere, every overwrite is recorded
in the access event (``configOverwrites``: the keys and values, as JSON), and a data source
whose owner turned them off (``config_overwrites_allowed``) refuses them, recorded as a refusal
(``configOverwritesForbidden``). ``credentialOverwrites`` are the caller's own secrets: when
given they replace (never merge with) the stored credentials and are never recorded.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

import orjson

from dstrail.audit.recorder import record_event
from dstrail.domain.datasources import CONFIG_OVERWRITES, CredentialType, DataSource, can_use
from dstrail.domain.projects import Run
from dstrail.domain.trail import EventKind
from dstrail.domain.users import User
from dstrail.errors import Forbidden, InvalidInput, MissingCredentials, NotFound
from dstrail.services.auth import Caller, CallerCredentials, authenticate
from dstrail.services.credentials import CredentialVault, credentials_for, validate_credentials
from dstrail.services.users import hash_api_key
from dstrail.store import ReadAhead, Repositories, Store

T = TypeVar("T")

OBJECT_STORE_TYPES = frozenset({"DatasetConfig", "S3Config", "GenericS3Config"})
"""Types served through signed URLs and listings."""

TABULAR_TYPES = frozenset({"PostgreSQLConfig", "MySQLConfig", "MariaDBConfig"})
"""Types served through Arrow Flight queries."""

NO_CREDENTIAL_TYPES = frozenset({"DatasetConfig"})
"""Types whose files dstrail keeps itself: no credentials involved."""

MAX_OBJECT_KEY = 1024
MAX_PAGE_SIZE = 10_000
KNOWN_CLIENT_SOURCES = ("Python", "R")
_CLIENT_SOURCE = re.compile(r"^[A-Za-z0-9_.-]{1,32}$")


class Operation:
    """The ``operation`` metadata values."""

    GET_DATA_SOURCE = "getDataSource"
    OBJECT_KEY = "objectKey"
    LIST_OBJECTS = "listObjects"
    QUERY = "query"


@dataclass(frozen=True, slots=True)
class AccessClaim:
    """What the caller says about where it runs: checked, never trusted alone."""

    run_id: str | None
    client_source: str


@dataclass(frozen=True, slots=True)
class AccessOperation:
    """What one call of the data path does: the data source types it applies to and what the
    trail records of it (``operation`` and its keys)."""

    types: frozenset[str]
    kind: str
    """The types in words, for the error when a data source is of another type."""
    details: dict[str, str]


@dataclass(frozen=True, slots=True)
class AccessRequest:
    """One call of the data path, as parsed by its entry point (HTTP or Arrow Flight)."""

    credentials: CallerCredentials
    claim: AccessClaim
    data_source_id: object
    """As sent: anything but an id of an active data source is a 404."""
    operation: Callable[[], AccessOperation]
    """Builds (and checks) what the call does, once the caller is authenticated: a request
    without valid credentials is a 401 whatever else it holds. See ``object_key_operation``."""
    config_overwrites: object = None
    credential_overwrites: object = field(default=None, repr=False)

    def read_ahead(self) -> ReadAhead:
        """The rows authenticating and deciding it read (see ``read_ahead``)."""
        return read_ahead(
            api_key=self.credentials.api_key, claim=self.claim, data_source_id=self.data_source_id
        )


@dataclass(frozen=True, slots=True)
class Grant:
    """An allowed, recorded access: what the data path needs to serve it."""

    data_source: DataSource
    user: User
    run: Run | None
    credentials: dict[str, str] | None = field(repr=False)
    config: dict[str, str] = field(default_factory=dict)


class AccessRefused(Forbidden):
    """A refused access; ``record_refusal`` writes it down in its own transaction."""

    def __init__(
        self, message: str, *, data_source: DataSource, actor: User, metadata: dict[str, str]
    ) -> None:
        super().__init__(message)
        self.data_source = data_source
        self.actor = actor
        self.metadata = metadata
        self.sub_type = metadata.get("reason", "")


class DeletedDataSourceRefused(AccessRefused):
    """A use of a deleted data source by its id: answered as missing (404), recorded as a
    refusal (reason ``deleted``) since somebody still holds its id."""

    status_code = 404
    error_type = "NotFound"


def client_source_of(header: str | None, user_agent: str | None = None) -> str:
    """``X-Domino-Client-Source`` when sane; else guessed from the user agent."""
    if header and _CLIENT_SOURCE.match(header):
        return header
    agent = (user_agent or "").lower()
    if "httr" in agent or "r-curl" in agent:
        return "R"
    if "python" in agent or "grpc" in agent:
        return "Python"
    return "Unknown"


def query_digest(sql: str) -> str:
    """SHA-256 of the SQL text, hex: what the trail keeps instead of the query."""
    return hashlib.sha256(sql.encode()).hexdigest()


# -- decisions ---------------------------------------------------------------------------------


def decide_access(
    tx: Repositories,
    *,
    caller: Caller,
    data_source: DataSource,
    claim: AccessClaim,
    details: dict[str, str],
) -> Run | None:
    """The run this access belongs to; ``AccessRefused`` when it may not happen."""
    user = caller.user
    refusal = {"clientSource": claim.client_source, **details}
    if claim.run_id:
        refusal["claimedRunId"] = claim.run_id[:64]
    if not can_use(data_source, user):
        raise AccessRefused(
            f"user {user.username!r} may not use data source {data_source.name!r}",
            data_source=data_source,
            actor=user,
            metadata={**refusal, "reason": "notPermitted"},
        )
    run = _run_of(tx, caller=caller, claimed_run_id=claim.run_id)
    problem = _run_problem(caller=caller, run=run, claimed_run_id=claim.run_id)
    if problem is not None:
        reason, message = problem
        raise AccessRefused(
            message, data_source=data_source, actor=user, metadata={**refusal, "reason": reason}
        )
    return run


def _run_of(tx: Repositories, *, caller: Caller, claimed_run_id: str | None) -> Run | None:
    if not claimed_run_id:
        return caller.token_run
    if caller.token_run is not None and caller.token_run.id == claimed_run_id:
        return caller.token_run
    return tx.runs.by_id(claimed_run_id)


def _run_problem(
    *, caller: Caller, run: Run | None, claimed_run_id: str | None
) -> tuple[str, str] | None:
    token_run = caller.token_run
    if claimed_run_id and token_run is not None and token_run.id != claimed_run_id:
        return "runTokenMismatch", (
            f"run {claimed_run_id!r} does not match the run of the token ({token_run.id!r})"
        )
    if claimed_run_id and run is None:
        return "unknownRun", f"run {claimed_run_id!r} is not known"
    if run is None:
        return None
    if run.user_id != caller.user.id:
        return "runOfAnotherUser", (
            f"run {run.id!r} was not started by user {caller.user.username!r}"
        )
    if not run.is_running:
        return "runEnded", f"run {run.id!r} has ended"
    return None


def record_access(
    tx: Repositories,
    *,
    grant_to: User,
    data_source: DataSource,
    run: Run | None,
    claim: AccessClaim,
    details: dict[str, str],
    now_ms: int,
) -> None:
    """Write down a granted access (``AccessDataSource``); appending it also keeps the data
    source's last access from the run's project (``ProjectLink``)."""
    record_event(
        tx,
        kind=EventKind.ACCESS_DATA_SOURCE,
        data_source=data_source,
        actor=grant_to,
        now_ms=now_ms,
        run=run,
        metadata={"clientSource": claim.client_source, **details},
    )


def record_refusal(tx: Repositories, *, refusal: AccessRefused, now_ms: int) -> None:
    """Write down a refused access (``AccessDataSourceRefused``); the caller commits it."""
    record_event(
        tx,
        kind=EventKind.ACCESS_REFUSED,
        data_source=refusal.data_source,
        actor=refusal.actor,
        now_ms=now_ms,
        metadata=refusal.metadata,
    )


# -- lookups -----------------------------------------------------------------------------------


def read_ahead(
    *,
    api_key: str | None,
    claim: AccessClaim,
    name: str | None = None,
    data_source_id: object = None,
) -> ReadAhead:
    """The rows that authenticating and deciding this access read one by one (the caller's
    key, the data source, the claimed run), for ``Store.write_grouped`` to read them together
    with those of concurrent accesses; nothing changes without it."""
    return ReadAhead(
        api_key_hash=hash_api_key(api_key) if api_key else None,
        data_source_name=name,
        data_source_id=data_source_id if isinstance(data_source_id, str) else None,
        run_id=claim.run_id,
    )


def _active_by_id(
    tx: Repositories,
    data_source_id: object,
    *,
    caller: Caller,
    claim: AccessClaim,
    details: dict[str, str],
) -> DataSource:
    ds = tx.data_sources.by_id(data_source_id) if isinstance(data_source_id, str) else None
    missing = f"no data source with id {data_source_id!r}"
    if ds is None:
        raise NotFound(missing)
    if not ds.is_active:
        raise DeletedDataSourceRefused(
            missing, data_source=ds, actor=caller.user,
            metadata={"clientSource": claim.client_source, **details, "reason": "deleted"},
        )  # fmt: skip
    return ds


# -- the data path -----------------------------------------------------------------------------


def _checked_config_overwrites(ds: DataSource, overwrites: object) -> dict[str, str]:
    """The overwrites as sent when Domino accepts each of them for the type; ``InvalidInput``
    naming the accepted keys else."""
    if not overwrites:
        return {}
    accepted = CONFIG_OVERWRITES.get(ds.data_source_type, frozenset())
    listed = ", ".join(sorted(accepted)) or "none"
    if not isinstance(overwrites, dict):
        raise InvalidInput("configOverwrites: must be an object of string values")
    for key, value in overwrites.items():
        if key not in accepted:
            raise InvalidInput(
                f"configOverwrites: {key!r} cannot be overwritten on a {ds.data_source_type}; "
                f"accepted: {listed}"
            )
        if not isinstance(value, str) or len(value) > MAX_OBJECT_KEY:
            raise InvalidInput(
                f"configOverwrites: {key!r} must be a string of at most {MAX_OBJECT_KEY} characters"
            )
    return dict(sorted(overwrites.items()))


def _overwritten_config(
    ds: DataSource, overwrites: dict[str, str], *, caller: Caller, refusal: dict[str, str]
) -> dict[str, str]:
    """The config this call uses; ``AccessRefused`` when the owner turned overwrites off."""
    if overwrites and not ds.config_overwrites_allowed:
        raise AccessRefused(
            f"data source {ds.name!r} does not accept configOverwrites: its owner turned them "
            "off; call without them",
            data_source=ds, actor=caller.user,
            metadata={**refusal, "reason": "configOverwritesForbidden"},
        )  # fmt: skip
    if "subfolder" in overwrites and overwrites["subfolder"].strip("/"):
        check_object_key(overwrites["subfolder"].strip("/"), field="configOverwrites.subfolder")
    return {**ds.config, **overwrites}


def _credentials(
    tx: Repositories, vault: CredentialVault, *, ds: DataSource, user: User
) -> dict[str, str]:
    stored = credentials_for(tx, vault, data_source=ds, user=user)
    if stored is not None:
        return stored
    if ds.credential_type is CredentialType.INDIVIDUAL:
        raise MissingCredentials(
            f"data source {ds.name!r} uses Individual credentials and user {user.username!r} "
            f"has none stored; store yours with PUT /api/datasource/v1/datasources/{ds.id}"
            "/credentials, or ask an operator to run `dstrail datasources credentials set "
            f"{ds.name} --user {user.username} --field username=... --field password`"
        )
    raise MissingCredentials(
        f"data source {ds.name!r} has no shared credentials stored; its owner sets them with "
        f"PUT /api/datasource/v1/datasources/{ds.id}/credentials"
    )


def grant(
    tx: Repositories, vault: CredentialVault, *, caller: Caller, request: AccessRequest, now_ms: int
) -> Grant:
    """Allow (and record) one call of the data path; ``AccessRefused`` when it may not happen."""
    operation = request.operation()
    details = operation.details
    claim = request.claim
    ds = _active_by_id(tx, request.data_source_id, caller=caller, claim=claim, details=details)
    # Decided before the type is checked: a caller who may not use the data source is refused
    # (and recorded) whatever they asked for, and learns nothing of its type.
    run = decide_access(tx, caller=caller, data_source=ds, claim=claim, details=details)
    if ds.data_source_type not in operation.types:
        raise InvalidInput(
            f"data source {ds.name!r} is a {ds.data_source_type}, not {operation.kind}; "
            "accepted: " + ", ".join(sorted(operation.types))
        )
    overwrites = _checked_config_overwrites(ds, request.config_overwrites)
    if overwrites:
        details = {**details, "configOverwrites": orjson.dumps(overwrites).decode()}
    config = _overwritten_config(
        ds, overwrites, caller=caller, refusal={"clientSource": claim.client_source, **details}
    )
    credentials: dict[str, str] | None = None
    if request.credential_overwrites and ds.data_source_type not in NO_CREDENTIAL_TYPES:
        credentials = validate_credentials(
            request.credential_overwrites, field="credentialOverwrites"
        )
        details = {**details, "credentialSource": "caller"}
    elif ds.data_source_type not in NO_CREDENTIAL_TYPES:
        credentials = _credentials(tx, vault, ds=ds, user=caller.user)
    record_access(
        tx, grant_to=caller.user, data_source=ds, run=run, claim=claim, details=details,
        now_ms=now_ms,
    )  # fmt: skip
    return Grant(data_source=ds, user=caller.user, run=run, credentials=credentials, config=config)


def check_object_key(key: object, *, field: str = "objectKey") -> str:
    """A relative object key without empty, ``.`` or ``..`` segments; ``InvalidInput`` else."""
    if not isinstance(key, str) or not key or len(key) > MAX_OBJECT_KEY:
        raise InvalidInput(f"{field}: must be 1 to {MAX_OBJECT_KEY} characters")
    if key.startswith("/") or "\\" in key or "\x00" in key:
        raise InvalidInput(f"{field}: {key!r} must be relative, with '/' separators")
    if any(part in ("", ".", "..") for part in key.split("/")):
        raise InvalidInput(f"{field}: {key!r} has an empty, '.' or '..' segment")
    return key


def object_key_operation(object_key: object, *, is_read_write: bool) -> AccessOperation:
    """One signed URL for ``object_key``; records ``objectKey``."""
    key = check_object_key(object_key)
    return AccessOperation(
        types=OBJECT_STORE_TYPES,
        kind="an object store",
        details={
            "operation": Operation.OBJECT_KEY,
            "objectKey": key,
            "isReadWrite": "true" if is_read_write else "false",
        },
    )


def listing_operation(prefix: object) -> AccessOperation:
    """Listing the keys under ``prefix``; records ``listObjects``."""
    if not isinstance(prefix, str) or len(prefix) > MAX_OBJECT_KEY or "\x00" in prefix:
        raise InvalidInput(f"prefix: must be a string of at most {MAX_OBJECT_KEY} characters")
    return AccessOperation(
        types=OBJECT_STORE_TYPES,
        kind="an object store",
        details={"operation": Operation.LIST_OBJECTS, "prefix": prefix},
    )


def query_operation(sql: object) -> AccessOperation:
    """One query; the trail keeps its SHA-256 (``queryDigest``), not the SQL."""
    if not isinstance(sql, str) or not sql.strip():
        raise InvalidInput("sqlQuery: must be a non-empty SQL statement")
    return AccessOperation(
        types=TABULAR_TYPES,
        kind="a tabular data source",
        details={"operation": Operation.QUERY, "queryDigest": query_digest(sql)},
    )


# -- the data path's transactions --------------------------------------------------------------


def run_access(
    store: Store,
    decide: Callable[[Repositories], T],
    *,
    read_ahead: ReadAhead | None,
    clock: Callable[[], int],
) -> T:
    """``decide`` in a write transaction shared with concurrent accesses (one commit for all,
    ``Store.write_grouped``); returned once its event is durable.

    The data path's one exception to "the entry point owns the transaction": concurrent
    accesses share it. ``read_ahead`` names the rows ``decide`` reads, read with those of the
    others in one round trip. When ``decide`` raises ``AccessRefused`` its transaction keeps
    nothing, the refusal is recorded and committed in a write of its own, and it is raised on.
    """
    try:
        return store.write_grouped(decide, read_ahead=read_ahead)
    except AccessRefused as refused:
        refusal = refused
    store.write_grouped(lambda tx: record_refusal(tx, refusal=refusal, now_ms=clock()))
    raise refusal


def serve_access(
    store: Store,
    vault: CredentialVault,
    request: AccessRequest,
    *,
    signing_key: str,
    clock: Callable[[], int],
    serve: Callable[[Grant], T],
) -> T:
    """Authenticate, decide and record ``request``, then ``serve`` the grant inside the same
    transaction (so a grant that cannot be served, a signed URL that cannot be made, records
    nothing). ``serve`` may run twice (``Store.write_grouped``): it must have no effect."""

    def decide(tx: Repositories) -> T:
        caller = authenticate(tx, request.credentials, signing_key=signing_key)
        return serve(grant(tx, vault, caller=caller, request=request, now_ms=clock()))

    return run_access(store, decide, read_ahead=request.read_ahead(), clock=clock)
