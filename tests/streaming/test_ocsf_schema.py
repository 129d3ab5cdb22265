"""The ``ocsf`` format against the OCSF 1.5.0 schema itself, as ocsf-lib models it.

``data/ocsf-1.5.0-schema.json`` is OCSF's v1.5.0 release compiled by ocsf-lib's compiler (the
form the OCSF server exports), cut to the classes dstrail writes and every object and type they
reach (``data/README.md``). ocsf-lib's ``ocsf.schema`` loads it as an ``OcsfSchema``, and the
validator below walks each record against that model alone, as the OCSF server's validator
does: the class of its ``class_uid``; no attribute its class or object does not define (an
object that defines none, ``object``, is open: ``unmapped``); every required one; each value of
its type (primitive types through their base types and the types' ranges, lengths, patterns and
values; objects recursively; arrays by ``is_array``); enum values the schema lists; enum
siblings (``activity_name``, ``status``, ``severity``, ``type``...) with their member's caption;
the classes' and objects' constraints; ``type_uid == class_uid * 100 + activity_id``; profile
attributes only for the profiles ``metadata.profiles`` declares.

Every record dstrail makes is checked: one of every event kind (``test_ocsf.EVERY_KIND``), the
choices within a kind, and real rows made through the services on both databases.
"""

from __future__ import annotations

import copy
import functools
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeGuard

import ocsf.schema
import pytest
from ocsf.schema import OcsfAttr, OcsfEvent, OcsfObject, OcsfSchema, OcsfType

from dstrail.audit.checkpoints import checkpoint_now
from dstrail.context import Dstrail
from dstrail.domain.datasources import DATA_SOURCE_TYPES, Permissions
from dstrail.domain.trail import CheckpointRecord, EventKind
from dstrail.domain.users import Role
from dstrail.errors import Forbidden
from dstrail.services import datasources as ds_service
from dstrail.services import streams as stream_service
from dstrail.services import users as user_service
from dstrail.services.refusals import writing
from dstrail.services.streams import DestinationSpec
from dstrail.streaming.formats.ocsf import OCSF_VERSION
from tests.services.support import make_project
from tests.streaming.test_ocsf import ALICE, DS, EVERY_KIND, READ_KEY, WRITE_KEY, decoded, row, use
from tests.support import SettableClock, create_dataset, make_user

SCHEMA_FILE = Path(__file__).parent / "data" / f"ocsf-{OCSF_VERSION}-schema.json"


@functools.cache
def schema() -> OcsfSchema:
    return ocsf.schema.from_file(str(SCHEMA_FILE))


# -- the validator -----------------------------------------------------------------------------


def _integer(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _natural(key: str) -> tuple[int, str]:
    return len(key), key


PRIMITIVES: dict[str, Callable[[Any], bool]] = {
    "string_t": lambda value: isinstance(value, str),
    "integer_t": _integer,
    "long_t": _integer,
    "float_t": lambda value: _integer(value) or isinstance(value, float),
    "boolean_t": lambda value: isinstance(value, bool),
    "json_t": lambda value: True,
}
"""What a value of each primitive type (a type with no base ``type``) is in JSON."""


OTHER = "99"
"""The enum member whose sibling holds the source's own name (``activity_name`` of activity
99), not the member's caption: the one exception the OCSF server's validator makes."""


class Validation:
    """One record checked against ``schema``: ``errors``, each ``path: what is wrong``."""

    def __init__(self, schema: OcsfSchema, profiles: list[str]) -> None:
        self.schema = schema
        self.profiles = set(profiles)
        self.errors: list[str] = []

    def fail(self, path: str, message: str) -> None:
        self.errors.append(f"{path or '(record)'}: {message}")

    def applies(self, attr: OcsfAttr) -> bool:
        """A profile's attribute exists only for an event that declares the profile."""
        named = [attr.profile] if isinstance(attr.profile, str) else attr.profile or []
        return not named or any(profile in self.profiles for profile in named)

    def item(self, value: dict[str, Any], spec: OcsfEvent | OcsfObject, path: str) -> None:
        """An event (``path`` "") or an object (``path`` "its.path.")."""
        attributes = {name: a for name, a in spec.attributes.items() if self.applies(a)}
        if not attributes:  # ``object``: open to any attributes (``unmapped``)
            return
        for key in sorted(value.keys() - attributes.keys()):
            self.fail(path + key, f"not an attribute of {spec.name}")
        for name, attr in attributes.items():
            if value.get(name) is None:
                if attr.requirement == "required":
                    self.fail(path + name, f"required by {spec.name}, missing")
                continue
            self.attribute(value[name], attr, path + name)
            self.sibling(value, name, attr, path)
        for constraint, names in (spec.constraints or {}).items():
            present = [name for name in names if value.get(name) is not None]
            if constraint == "at_least_one" and not present:
                self.fail(path.rstrip("."), f"{spec.name} needs at least one of {names}")
            elif constraint == "just_one" and len(present) != 1:
                self.fail(path.rstrip("."), f"{spec.name} needs exactly one of {names}")
            elif constraint not in {"at_least_one", "just_one"}:
                self.fail(path.rstrip("."), f"unknown constraint {constraint} of {spec.name}")

    def attribute(self, value: Any, attr: OcsfAttr, path: str) -> None:
        if not attr.is_array:
            self.value(value, attr, path)
        elif not isinstance(value, list):
            self.fail(path, f"{value!r} is not an array of {attr.type}")
        else:
            for index, element in enumerate(value):
                self.value(element, attr, f"{path}[{index}]")

    def value(self, value: Any, attr: OcsfAttr, path: str) -> None:
        obj = self.schema.objects.get(attr.type)
        if obj is not None:
            if isinstance(value, dict):
                self.item(value, obj, path + ".")
            else:
                self.fail(path, f"{value!r} is not an object ({attr.type})")
            return
        if not self.typed(value, attr.type, path):
            return
        if attr.enum is not None and str(value) not in attr.enum:  # enum keys are text
            self.fail(path, f"{value!r} is not in its enum {sorted(attr.enum, key=_natural)}")

    def typed(self, value: Any, type_name: str, path: str) -> bool:
        """``value`` is of ``type_name``: of its primitive base type, then within the range,
        length, pattern and values of each type on the way there."""
        chain: list[OcsfType] = []
        name: str | None = type_name
        while name is not None:
            if name not in self.schema.types:
                self.fail(path, f"type {name} is not in the schema")
                return False
            primitive, chain = name, [*chain, self.schema.types[name]]
            name = chain[-1].type
        if not PRIMITIVES[primitive](value):
            self.fail(path, f"{value!r} is not of type {type_name}")
            return False
        for t in chain:
            if t.range is not None and not t.range[0] <= value <= t.range[1]:
                self.fail(path, f"{value!r} is out of {type_name}'s range {t.range}")
            if t.max_len is not None and len(value) > t.max_len:
                self.fail(path, f"{value!r} is longer than {type_name}'s {t.max_len}")
            if t.regex is not None and not re.search(t.regex, value):
                self.fail(path, f"{value!r} does not match {type_name}'s pattern")
            if t.values is not None and value not in t.values:
                self.fail(path, f"{value!r} is not one of {type_name}'s values {t.values}")
        return True

    def sibling(self, value: dict[str, Any], name: str, attr: OcsfAttr, path: str) -> None:
        """An enum's sibling (``activity_id``'s ``activity_name``) is its member's caption."""
        if attr.enum is None or attr.sibling is None or attr.sibling not in value:
            return
        key = str(value[name])
        if key not in attr.enum or key == OTHER:
            return
        member = attr.enum[key]
        if value[attr.sibling] != member.caption:
            self.fail(
                path + attr.sibling,
                f"{value[attr.sibling]!r} is not {member.caption!r}, {name} {value[name]}'s caption",
            )


def validate(record: dict[str, Any], against: OcsfSchema | None = None) -> list[str]:
    """What is wrong with ``record`` as an OCSF event of ``against`` (the schema subset)."""
    against = against or schema()
    uid = record.get("class_uid")
    classes = {event.uid: event for event in against.classes.values()}
    if not _integer(uid) or uid not in classes:
        return [f"class_uid: {uid!r} is no class of the schema"]
    metadata = record.get("metadata")
    declared = metadata.get("profiles") if isinstance(metadata, dict) else None
    profiles = [p for p in declared if isinstance(p, str)] if isinstance(declared, list) else []
    validation = Validation(against, profiles)
    for profile in profiles:
        if profile not in (against.profiles or {}):
            validation.fail("metadata.profiles", f"{profile!r} is not a profile of the schema")
    validation.item(record, classes[uid], "")
    activity, type_uid = record.get("activity_id"), record.get("type_uid")
    if _integer(activity) and _integer(type_uid) and type_uid != uid * 100 + activity:
        validation.fail("type_uid", f"{type_uid} is not class_uid * 100 + activity_id")
    return validation.errors


def assert_valid(record: dict[str, Any]) -> None:
    assert validate(record) == [], record


# -- the schema, as ocsf-lib loads it ----------------------------------------------------------


def test_the_schema_is_ocsf_1_5_0_with_the_classes_dstrail_writes() -> None:
    loaded = schema()
    assert isinstance(loaded, OcsfSchema)
    assert loaded.version == OCSF_VERSION == "1.5.0"
    assert {event.uid: name for name, event in loaded.classes.items()} == {
        0: "base_event",
        2004: "detection_finding",
        3001: "account_change",
        3004: "entity_management",
        3005: "user_access",
        6005: "datastore_activity",
    }
    # ``"profile": null`` in the class: its own ``actor``, not the host profile's (README.md)
    assert loaded.classes["datastore_activity"].attributes["actor"].requirement == "required"
    assert "actor" in loaded.classes["entity_management"].attributes


def test_the_schema_holds_every_object_and_type_its_classes_reach() -> None:
    loaded = schema()
    items: list[OcsfEvent | OcsfObject] = [*loaded.classes.values(), *loaded.objects.values()]
    for item in items:
        for name, attr in item.attributes.items():
            assert attr.type in loaded.objects or attr.type in loaded.types, (item.name, name)
            assert attr.profile is None, (item.name, name)  # no profile's attributes
    for name, t in loaded.types.items():
        base = name
        while loaded.types[base].type is not None:
            base = loaded.types[base].type or ""
        assert base in PRIMITIVES, name
        if t.regex is not None:
            re.compile(t.regex)
    assert loaded.objects["object"].attributes == {}  # open: ``unmapped``
    assert not loaded.profiles


# -- every record dstrail makes ----------------------------------------------------------------


@pytest.mark.parametrize("kind", list(EventKind), ids=str)
def test_each_kind_is_valid_against_the_schema(kind: EventKind) -> None:
    source, class_uid, _ = EVERY_KIND[kind]
    (record,) = decoded([source])
    assert record["class_uid"] == class_uid
    assert_valid(record)


@pytest.mark.parametrize("ds_type", [*sorted(DATA_SOURCE_TYPES), "FutureConfig"])
def test_every_data_source_type_is_a_valid_datastore(ds_type: str) -> None:
    records = decoded(
        [
            row("AccessDataSource", {"clientSource": "Python", "operation": "objectKey",
                                     "objectKey": "raw/2024/a.csv", "isReadWrite": "false"},
                ds=(DS[0], "store", ds_type)),
            row("AccessDataSourceRefused", {"clientSource": "Python", "operation": "listObjects",
                                            "reason": "notPermitted"},
                ds=(DS[0], "store", ds_type)),
        ]
    )  # fmt: skip
    for record in records:
        assert "databucket" in record or "database" in record
        assert_valid(record)


@pytest.mark.parametrize(
    "access",
    [
        {"operation": "getDataSource"},
        {"operation": "objectKey", "objectKey": "raw/2024/a.csv", "isReadWrite": "false"},
        {"operation": "objectKey", "objectKey": "out/b.parquet", "isReadWrite": "true"},
        {"operation": "listObjects", "prefix": "raw/"},
        {"operation": "query", "queryDigest": "ab" * 32},
        {"operation": "export"},
        {},
    ],
    ids=["get", "read-key", "write-key", "list", "query", "export", "no-operation"],
)
def test_every_access_operation_is_valid(access: dict[str, str]) -> None:
    for ds in (DS, ("6b0792c3673c327b643884f9", "raw-files", "S3Config")):
        (record,) = decoded([row("AccessDataSource", {"clientSource": "Python", **access}, ds=ds)])
        assert_valid(record)


@pytest.mark.parametrize(
    "metadata",
    [
        {"runType": "Job", "projectId": "c" * 24, "runId": "e" * 24, "dataPlaneId": "f" * 24,
         "clientSource": "R", "operation": "getDataSource"},
        {"operation": "query"},  # no client recorded
    ],
)  # fmt: skip
def test_an_access_from_a_run_or_an_unknown_client_is_valid(metadata: dict[str, str]) -> None:
    (record,) = decoded([row("AccessDataSource", metadata)])
    assert_valid(record)


@pytest.mark.parametrize(
    "metadata",
    [
        {"addedUserIds": "a" * 24, "removedUserIds": ""},
        {"addedUserIds": "", "removedUserIds": "b" * 24 + "," + "c" * 24},
        {"addedUserIds": "a" * 24, "removedUserIds": "b" * 24},
        {"isEveryone": "true", "addedUserIds": "", "removedUserIds": ""},
        {"isEveryone": "false", "addedUserIds": "", "removedUserIds": ""},
    ],
)
def test_every_permission_change_is_valid(metadata: dict[str, str]) -> None:
    (record,) = decoded([row("DataSourceChangeOfPermissions", metadata)])
    assert record["class_uid"] == 3005
    assert_valid(record)


@pytest.mark.parametrize("action", ["deleteDataSource", "setPermissions", "updateDataSource"])
def test_every_refused_change_is_valid(action: str) -> None:
    (record,) = decoded([row("DataSourceChangeRefused", {"action": action, "reason": "notOwner"})])
    assert (record["status"], record["status_detail"]) == ("Failure", "notOwner")
    assert_valid(record)


def test_a_kind_this_version_does_not_know_is_a_valid_base_event() -> None:
    (record,) = decoded([row("SomethingNew", {"x": "1"})])
    assert (record["class_uid"], record["type_uid"]) == (0, 99)
    assert_valid(record)


def test_a_row_with_text_metadata_or_under_a_checkpoint_is_valid() -> None:
    checkpoint = CheckpointRecord(
        tree_size=7, root_hash=bytes(range(32)), timestamp_ms=1, key_id="k", signature=b"s"
    )
    text = (*DS, "DeleteDataSource", "not json", ALICE, 5, 3, "alice", None, None, None)
    records = decoded([text, row("DeleteDataSource", {}, seq=7)], checkpoint)
    assert "checkpoint" in records[1]["unmapped"]
    for record in records:
        assert_valid(record)


def test_real_events_are_valid_against_the_schema(dstrail: Dstrail, clock: SettableClock) -> None:
    admin = make_user(dstrail, "sample-admin", Role.SYS_ADMIN)
    alice, bob, carol = (make_user(dstrail, name) for name in ("alice", "bob", "carol"))
    clock.advance(1000)
    ds = create_dataset(dstrail, alice, "alices-files", permissions=Permissions(False))
    with dstrail.store.write() as tx:
        ds_service.set_permissions(
            tx, data_source_id=ds.id, permissions=Permissions(False, (bob.id,)),
            actor=alice.user, now_ms=clock(),
        )  # fmt: skip
    project = make_project(dstrail, alice, "churn")
    with dstrail.store.write() as tx:
        ds_service.attach_to_project(
            tx, data_source_id=ds.id, project_id=project.id, actor=alice.user, now_ms=clock()
        )
    use(dstrail, bob, ds.id, READ_KEY)
    use(dstrail, bob, ds.id, WRITE_KEY)
    with pytest.raises(Forbidden):
        use(dstrail, carol, ds.id, READ_KEY)
    with dstrail.store.write() as tx:
        ds_service.detach_from_project(
            tx, data_source_id=ds.id, project_id=project.id, actor=alice.user, now_ms=clock()
        )
        user_service.set_role(
            tx, actor=admin.user, user_id=carol.id, role=Role.AUDITOR, now_ms=clock()
        )
    with pytest.raises(Forbidden), writing(dstrail.store, dstrail.clock) as tx:
        ds_service.delete_data_source(tx, data_source_id=ds.id, actor=bob.user, now_ms=clock())
    checkpoint = checkpoint_now(dstrail.store, now_ms=clock())
    with dstrail.store.write() as tx:
        stream_service.add_destination(
            tx, dstrail.vault, actor=admin.user, now_ms=clock(),
            spec=DestinationSpec(
                name="siem", kind="splunk-hec", format="ocsf",
                config={"url": "https://splunk.example:8088"}, secret="hec-token",
            ),
        )  # fmt: skip
    with dstrail.store.read() as tx:
        rows = tx.integrity.events_after(0, limit=100)

    records = decoded(rows, checkpoint)
    assert {r["metadata"]["event_code"] for r in records} == {
        "UserCreated", "ApiKeyIssued", "CreateDataSource", "DataSourceChangeOfPermissions",
        "ProjectCreated", "DataSourceAssociatedToProject", "AccessDataSource",
        "AccessDataSourceRefused", "DataSourceDissociatedFromProject", "UserRoleChanged",
        "DataSourceChangeRefused", "StreamDestinationAdded",
    }  # fmt: skip
    assert {r["class_uid"] for r in records} == {3001, 3004, 3005, 6005}
    assert {r["status"] for r in records} == {"Success", "Failure"}
    for record in records:
        assert_valid(record)


# -- the validator fails what is wrong ---------------------------------------------------------


VALID = {
    "entity": EVERY_KIND[EventKind.CREATE_DATA_SOURCE][0],
    "permissions": EVERY_KIND[EventKind.CHANGE_OF_PERMISSIONS][0],
    "access": row("AccessDataSource", {"clientSource": "R", "operation": "query"},
                  ds=(DS[0], "files", "DatasetConfig")),
}  # fmt: skip
"""Rows whose records have no error at all, to break."""


def valid(name: str) -> dict[str, Any]:
    (record,) = decoded([VALID[name]])
    assert validate(record) == []
    return dict(record)


def changed(record: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """``record`` with the attribute at ``path`` ("actor.user.uid") set, or removed for
    ``DELETE``."""
    *parents, last = path.split(".")
    at = record
    for key in parents:
        at = at[key]
    if value is DELETE:
        del at[last]
    else:
        at[last] = value
    return record


DELETE = object()
ENTITY, ACCESS, PERMISSIONS = "entity", "access", "permissions"


@pytest.mark.parametrize(
    ("kind", "path", "value", "errors"),
    [
        # attributes the class or object does not define
        (ENTITY, "colour", "red", ["colour: not an attribute of entity_management"]),
        (ENTITY, "actor.user.shoe_size", 9, ["actor.user.shoe_size: not an attribute of user"]),
        (ENTITY, "databucket", {"uid": "b", "type_id": 1},
         ["databucket: not an attribute of entity_management"]),
        (ENTITY, "device", {"name": "d", "type_id": 1},  # the host profile's, not declared
         ["device: not an attribute of entity_management"]),
        (ENTITY, "metadata.profiles", ["host"],
         ["metadata.profiles: 'host' is not a profile of the schema"]),
        # required attributes
        (ENTITY, "entity", DELETE, ["entity: required by entity_management, missing"]),
        (ENTITY, "time", DELETE, ["time: required by entity_management, missing"]),
        (ENTITY, "metadata.product", DELETE, ["metadata.product: required by metadata, missing"]),
        (PERMISSIONS, "privileges", DELETE, ["privileges: required by user_access, missing"]),
        (ACCESS, "src_endpoint", None, ["src_endpoint: required by datastore_activity, missing"]),
        # types
        (ENTITY, "time", "2023-08-23T21:40:21Z", ["time: '2023-08-23T21:40:21Z' is not of type timestamp_t"]),
        (ENTITY, "severity_id", True, ["severity_id: True is not of type integer_t"]),
        (ENTITY, "message", 7, ["message: 7 is not of type string_t"]),
        (ENTITY, "actor.user.uid", 1, ["actor.user.uid: 1 is not of type string_t"]),
        (ENTITY, "actor", "alice", ["actor: 'alice' is not an object (actor)"]),
        (ENTITY, "entity.data", {"any": ["json", 1, None]}, []),  # json_t
        (PERMISSIONS, "privileges", "use", ["privileges: 'use' is not an array of string_t"]),
        (PERMISSIONS, "privileges", ["use", 2], ["privileges[1]: 2 is not of type string_t"]),
        (PERMISSIONS, "resources", [{"uid": "r", "is_backed_up": "yes"}],
         ["resources[0].is_backed_up: 'yes' is not of type boolean_t"]),
        (ACCESS, "src_endpoint.port", 70000,
         ["src_endpoint.port: 70000 is out of port_t's range [0, 65535]"]),
        (ACCESS, "src_endpoint.ip", "not-an-ip",
         ["src_endpoint.ip: 'not-an-ip' does not match ip_t's pattern"]),
        # enum values
        (ENTITY, "status_id", 5, ["status_id: 5 is not in its enum ['0', '1', '2', '99']"]),
        (ENTITY, "entity.type_id", 8,
         ["entity.type_id: 8 is not in its enum ['0', '1', '2', '3', '4', '5', '6', '7', '99']"]),
        (ACCESS, "databucket.type_id", "99", ["databucket.type_id: '99' is not of type integer_t"]),
        # enum siblings
        (ENTITY, "activity_name", "Make", ["activity_name: 'Make' is not 'Create', activity_id 1's caption"]),
        (ENTITY, "status", "Fine", ["status: 'Fine' is not 'Success', status_id 1's caption"]),
        (ENTITY, "class_name", "Entities",
         ["class_name: 'Entities' is not 'Entity Management', class_uid 3004's caption"]),
        (ENTITY, "entity.type_id", 2, ["entity.type: 'Data Source' is not 'User', type_id 2's caption"]),
        # constraints
        (ENTITY, "actor", {}, ["actor: actor needs at least one of ['process', 'user', "
                               "'invoked_by', 'session', 'app_name', 'app_uid']"]),
        (ACCESS, "databucket", DELETE, ["(record): datastore_activity needs at least one of "
                                      "['database', 'databucket', 'table']"]),
        # the class
        (ENTITY, "class_uid", 3002, ["class_uid: 3002 is no class of the schema"]),
        (ENTITY, "class_uid", "3004", ["class_uid: '3004' is no class of the schema"]),
        # ``unmapped`` is open
        (ENTITY, "unmapped.anything", {"at": ["all", 1]}, []),
    ],
)  # fmt: skip
def test_the_validator_reports_what_is_wrong(
    kind: str, path: str, value: Any, errors: list[str]
) -> None:
    assert validate(changed(valid(kind), path, value)) == errors


def test_the_validator_reports_an_unknown_activity_and_a_wrong_type_uid() -> None:
    record = changed(valid(ENTITY), "activity_id", 42)
    assert validate(record) == [
        "activity_id: 42 is not in its enum "
        "['0', '1', '2', '3', '4', '5', '6', '7', '8', '9', '10', '11', '12', '13', '99']",
        "type_uid: 300401 is not class_uid * 100 + activity_id",
    ]
    record = changed(valid(ENTITY), "type_uid", 300404)
    assert validate(record) == [
        "type_name: 'Entity Management: Create' is not 'Entity Management: Delete', "
        "type_uid 300404's caption",
        "type_uid: 300404 is not class_uid * 100 + activity_id",
    ]


def test_the_validator_reads_every_rule_from_the_schema() -> None:
    """The same record against a schema that requires ``comment``: now it misses one."""
    stricter = copy.deepcopy(schema())
    stricter.classes["entity_management"].attributes["comment"].requirement = "required"
    record = valid(ENTITY)
    assert validate(record, stricter) == ["comment: required by entity_management, missing"]
    assert validate(record) == []


def test_an_other_activity_leaves_activity_name_to_the_source() -> None:
    (record,) = decoded([EVERY_KIND[EventKind.API_KEY_ISSUED][0]])
    assert (record["activity_id"], record["activity_name"]) == (99, "Issue API Key")
    assert validate(record) == []  # activity_name is free for Other; type_name is "...: Other"
    assert record["type_name"] == "Account Change: Other"
