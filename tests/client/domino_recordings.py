"""What Domino's data source service answered its own client: our table of the facts.

``dominodatalab-data``'s repository holds VCR cassettes recorded against a real Domino
deployment (``tests/cassettes/test_datasource/`` and ``tests/cassettes/test_dataset/``). They
hold 58 interactions; 5 of them are the client's direct GET/PUT of a signed URL on S3 or on
Domino's dataset file host, not requests to the data source service, and are left out
(``test_datasource/test_object_store_get#3``, ``.../test_object_store_put#3``,
``.../test_object_store_upload_file#3``, ``.../test_object_store_upload_fileojb#3``,
``test_dataset/test_get_file#3``). The other 53 are below, one row each, in the cassettes'
order. Neither the cassettes nor Domino's code are copied: each row states the request as sent
(method, path, JSON body with the data source named symbolically, ``data_source``) and what
Domino answered, reduced to what must carry over (status, shape, ``errorType``, keys).

Ids are ``<cassette folder>/<cassette>#<1-based interaction>``. Data sources are the names the
recordings use; ``no-credentials-s3`` stands for the data source of
``test_client_get_key_url_returns_not_found``, which that recording names only by id.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

Shape = Literal["dto", "denied", "missing", "url", "keys", "proxyError", "empty"]
"""What a 200 or an error looks like: the data source DTO; Domino's v4 refusal of an unknown
credential (``success``, ``message``, ``debugMessage``, ``reason``); its v4 not-found
(``message``, ``success``); a JSON string that is an http(s) URL; a JSON array of object keys;
the proxy's ``{"errorType", "subType", "rawError"}``; no body."""

Auth = Literal["apiKey", "jwt", "invalidKey"]
"""``X-Domino-Api-Key`` of ``caller``; ``Authorization: Bearer`` with the token of
``caller``'s run (the ``*_with_jwt`` recordings, which send no ``runId``); or an API key that
does not exist (the ``*_without_access`` recordings)."""

DENIED_MESSAGE = "Your role does not authorize you to perform this action"
"""Domino's v4 message for a request without a valid credential (its client surfaces it)."""


@dataclass(frozen=True, slots=True)
class Recording:
    """One recorded request to the data source service and the facts of its answer."""

    id: str
    method: str
    path: str
    status: int
    shape: Shape
    data_source: str = ""
    """Which data source the request names (the lookup's name, or the body's ``datasourceId``)."""
    body: dict[str, Any] | None = None
    """The JSON body as recorded, key order kept, without ``datasourceId`` (it goes first)."""
    auth: Auth = "apiKey"
    caller: str = "alice"
    keys: tuple[str, ...] = ()
    """``keys``: the expected listing. ``url``: the object key the URL names."""
    region: str = ""
    """``url`` of S3: the region of the signature's ``X-Amz-Credential``, as recorded."""
    error_type: str = ""
    message: str = ""
    """``missing``, ``denied``: Domino's message. ``proxyError``: text ``rawError`` holds."""
    staged: tuple[str, ...] = ()
    """Objects that exist only while this request runs: the recordings were made on different
    days, and the listings of other rows show a bucket and a dataset without them."""
    break_listing: bool = False
    """Make the listing fail for real while the request runs (see the test module)."""
    not_reproducible: str = ""
    """Why dstrail cannot reproduce this recording; the test skips it with this reason."""


DATASOURCE = "test_datasource/"
DATASET = "test_dataset/"
_NO_OVERWRITES: dict[str, Any] = {}


def lookup(
    id: str,
    name: str,
    *,
    auth: Auth = "apiKey",
    caller: str = "alice",
    status: int = 200,
    message: str = "",
) -> Recording:
    """``GET /v4/datasource/name/{name}``."""
    shape: Shape = "dto" if status == 200 else "denied" if status == 403 else "missing"
    return Recording(
        id, "GET", f"/v4/datasource/name/{name}", status, shape, data_source=name, auth=auth,
        caller=caller, message=message,
    )  # fmt: skip


def key(
    id: str,
    data_source: str,
    object_key: str,
    *,
    read_write: bool,
    overwrites: dict[str, Any] = _NO_OVERWRITES,
    status: int = 200,
    region: str = "",
    error_type: str = "",
    message: str = "",
    staged: tuple[str, ...] = (),
) -> Recording:
    """``POST /objectstore/key``, body as the client sent it."""
    body = {
        "isReadWrite": read_write,
        "objectKey": object_key,
        "configOverwrites": dict(overwrites),
        "credentialOverwrites": {},
    }
    return Recording(
        id, "POST", "/objectstore/key", status, "url" if status == 200 else "proxyError",
        data_source=data_source, body=body, keys=(object_key,), region=region,
        error_type=error_type, message=message, staged=staged,
    )  # fmt: skip


def listing(
    id: str,
    data_source: str,
    prefix: str,
    *,
    page_size: int | None,
    keys: tuple[str, ...] = (),
    overwrites: dict[str, Any] = _NO_OVERWRITES,
    status: int = 200,
    error_type: str = "",
    message: str = "",
    staged: tuple[str, ...] = (),
    break_listing: bool = False,
    not_reproducible: str = "",
) -> Recording:
    """``POST /objectstore/list``; ``pageSize`` (camelCase) only where the recording sent it."""
    body: dict[str, Any] = {"prefix": prefix}
    if page_size is not None:
        body["pageSize"] = page_size
    body |= {"configOverwrites": dict(overwrites), "credentialOverwrites": {}}
    return Recording(
        id, "POST", "/objectstore/list", status, "keys" if status == 200 else "proxyError",
        data_source=data_source, body=body, keys=keys, error_type=error_type, message=message,
        staged=staged, break_listing=break_listing, not_reproducible=not_reproducible,
    )  # fmt: skip


def metric(id: str, direction: str) -> Recording:
    """``HEAD /objectstore/metric``: the client's byte counter after a transfer."""
    return Recording(
        id, "HEAD", f"/objectstore/metric?t=S3Config&b=1000&m={direction}", 200, "empty"
    )


S3 = "aduser-s3"
REDSHIFT = "redshift_sdk_test"
DATASET_DS = "dataset-test"
NO_CREDENTIALS = "no-credentials-s3"
BOTH = ("diabetes.csv", "diabetes_changed.csv")
CHANGED = ("diabetes_changed.csv",)
FIRST = ("diabetes.csv",)
GAB = ("gabrieltest.csv",)
SNAPSHOT = "68011fa7b4ec1d6d4f81df7e"
WEST = "us-west-2"
D = DATASOURCE
T = DATASET

RECORDINGS: tuple[Recording, ...] = (
    # -- test_datasource: the redshift and S3 data sources ------------------------------------
    lookup(D + "test_client_execute#1", REDSHIFT),
    lookup(D + "test_client_get_key_url#1", S3),
    key(D + "test_client_get_key_url#2", S3, "akey", read_write=True, region=WEST),
    key(
        D + "test_client_get_key_url_returns_not_found#1", NO_CREDENTIALS, "akey",
        read_write=True, status=400, error_type="credentialsError",
    ),
    lookup(D + "test_client_get_key_url_with_override#1", S3),
    key(
        D + "test_client_get_key_url_with_override#2", S3, "akey", read_write=True,
        overwrites={"region": "us-east-1"}, region="us-east-1",
    ),
    lookup(D + "test_client_list_keys_in_object_store#1", S3),
    listing(D + "test_client_list_keys_in_object_store#2", S3, "", page_size=1000, keys=BOTH),
    listing(D + "test_client_list_keys_in_object_store#3", S3, "", page_size=1, keys=FIRST),
    listing(
        D + "test_client_list_keys_in_object_store#4", S3, "diabetes_", page_size=1000,
        keys=CHANGED,
    ),
    lookup(D + "test_client_list_keys_returns_error#1", S3),
    listing(
        D + "test_client_list_keys_returns_error#2", S3, "", page_size=None,
        overwrites={"bucket": "notreal"}, status=500, error_type="internalError",
    ),
    lookup(D + "test_client_list_keys_without_jwt#1", S3),
    listing(D + "test_client_list_keys_without_jwt#2", S3, "", page_size=None, keys=BOTH),
    listing(
        D + "test_client_list_keys_without_jwt#3", S3, "diabetes_", page_size=None, keys=CHANGED
    ),
    metric(D + "test_client_log_metric_read#1", "read"),
    metric(D + "test_client_log_metric_write#1", "write"),
    lookup(D + "test_get_datasource#1", REDSHIFT),
    # as a SysAdmin (listed on aduser-s3): the answer carries adminInfo
    lookup(D + "test_get_datasource#2", S3, caller="admin"),
    lookup(
        D + "test_get_datasource_does_not_exists#1", "not-a-datasource", status=404,
        message="Datasource with name not-a-datasource does not exist",
    ),
    lookup(D + "test_get_datasource_with_jwt#1", REDSHIFT, auth="jwt"),
    lookup(
        D + "test_get_datasource_without_access#1", S3, auth="invalidKey", status=403,
        message=DENIED_MESSAGE,
    ),
    lookup(D + "test_object_store_get#1", S3),
    key(D + "test_object_store_get#2", S3, "diabetes.csv", read_write=False, region=WEST),
    lookup(D + "test_object_store_list_objects#1", S3),
    listing(
        D + "test_object_store_list_objects#2", S3, "gab", page_size=None, keys=GAB, staged=GAB
    ),
    lookup(D + "test_object_store_put#1", S3),
    key(D + "test_object_store_put#2", S3, "gabrieltest.csv", read_write=True, region=WEST),
    lookup(D + "test_object_store_upload_file#1", S3),
    key(D + "test_object_store_upload_file#2", S3, "gabrieltest.csv", read_write=True, region=WEST),
    lookup(D + "test_object_store_upload_fileojb#1", S3),
    key(
        D + "test_object_store_upload_fileojb#2", S3, "gabrieltest.csv", read_write=True,
        region=WEST,
    ),
    # -- test_dataset: the DatasetConfig data source ------------------------------------------
    lookup(T + "test_config_override#1", DATASET_DS),
    listing(T + "test_config_override#2", DATASET_DS, "", page_size=1000, keys=BOTH),
    listing(
        T + "test_config_override#3", DATASET_DS, "", page_size=1,
        overwrites={"snapshotID": SNAPSHOT}, status=400, error_type="notFoundError",
        message=SNAPSHOT,
    ),
    lookup(T + "test_get_dataset#1", DATASET_DS),
    lookup(
        T + "test_get_dataset_does_not_exist#1", "not-a-dataset", status=404,
        message="Dataset with name not-a-dataset does not exist",
    ),
    lookup(T + "test_get_dataset_with_jwt#1", DATASET_DS, auth="jwt"),
    lookup(
        T + "test_get_dataset_without_access#1", DATASET_DS, auth="invalidKey", status=403,
        message=DENIED_MESSAGE,
    ),
    lookup(T + "test_get_file#1", DATASET_DS),
    key(T + "test_get_file#2", DATASET_DS, "diabetes.csv", read_write=False),
    lookup(T + "test_get_file_url#1", DATASET_DS),
    key(T + "test_get_file_url#2", DATASET_DS, "aFile", read_write=False, staged=("aFile",)),
    lookup(T + "test_get_file_url_not_found#1", DATASET_DS),
    key(
        T + "test_get_file_url_not_found#2", DATASET_DS, "aFakeFile", read_write=False,
        status=400, error_type="notFoundError", message="aFakeFile",
    ),
    lookup(T + "test_list_files#1", DATASET_DS),
    listing(T + "test_list_files#2", DATASET_DS, "", page_size=1000, keys=BOTH),
    listing(T + "test_list_files#3", DATASET_DS, "", page_size=1, keys=FIRST),
    listing(T + "test_list_files#4", DATASET_DS, "diabetes_", page_size=1000, keys=CHANGED),
    lookup(T + "test_list_files_returns_error#1", DATASET_DS),
    listing(
        T + "test_list_files_returns_error#2", DATASET_DS, "", page_size=1000, status=500,
        error_type="internalError", message="Error listing files", break_listing=True,
    ),
    lookup(T + "test_list_files_without_jwt#1", DATASET_DS),
    listing(T + "test_list_files_without_jwt#2", DATASET_DS, "", page_size=1000, keys=BOTH),
)  # fmt: skip

_PAGE_OF_ONE = (
    "answer ['diabetes_changed.csv'] for pageSize 1: no sorted listing of the two keys starts "
    "with it (S3 lists in UTF-8 byte order, '.' < '_'; Domino's dataset listing is sorted too), "
    "and the later test_dataset/test_config_override#3 answers ['diabetes.csv'] to the same "
    "request; taken for a copy of #4's answer, so the row expects the first key"
)
_V4V4 = "the signed URL's path starts /v4v4/ (doubled prefix): only a URL is asserted"
HAND_EDITS: dict[str, str] = {
    D + "test_client_list_keys_in_object_store#3": _PAGE_OF_ONE,
    T + "test_list_files#3": _PAGE_OF_ONE,
    T + "test_config_override#3": (
        'the body is not JSON ({"snapshotId: "6801..."}); replayed with the client\'s real key '
        "snapshotID (ConfigElem.SNAPSHOTID). Domino answered 200 ['diabetes.csv'] from that "
        "snapshot; dstrail keeps no dataset snapshots, so a named one is not found: 400 "
        "notFoundError naming it"
    ),
    T + "test_get_dataset_without_access#1": (
        "the request carries the suite's valid API key while the answer refuses an "
        "AnonymousPrincipal (Domino's test passes api_key='NOTAKEY'); replayed with a key that "
        "does not exist"
    ),
    T + "test_get_file#2": _V4V4,
    T + "test_get_file_url#2": _V4V4,
    # test_dataset/test_list_files#4: the answer ends with a space after the array: irrelevant
}
"""Recordings that were edited by hand after recording, and what the rows do about it."""
