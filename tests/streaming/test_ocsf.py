"""The ``ocsf`` format: real trail rows, made through the services on both databases, encoded
and checked against OCSF 1.5.0.

``py-ocsf-models`` 0.10 implements OCSF 1.5.0's base event, its objects and the Findings
classes only (2003, 2004, 2007), not the other four classes dstrail writes. So every record is
validated twice: with the library's ``BaseEvent`` model (metadata, product, severity and
status; a finding with its ``DetectionFinding`` model) and ``ResourceDetails`` model (the
resources), and against the class rules below,
copied from the OCSF 1.5.0 schema files (``events/application/datastore_activity.json``,
``events/iam/{entity_management,user_access,account_change,iam}.json``,
``events/findings/{detection_finding,finding}.json``, ``events/base_event.json`` and the
objects they name): required attributes, the attributes a
class defines (nothing else may appear), ``activity_id`` enums and ``at_least_one``
constraints.
"""

from __future__ import annotations

import functools
from typing import Any

import orjson
import py_ocsf_models
import pytest
from py_ocsf_models.events.base_event import BaseEvent
from py_ocsf_models.events.findings.detection_finding import DetectionFinding
from py_ocsf_models.objects.resource_details import ResourceDetails

from dstrail import __version__
from dstrail.audit.checkpoints import checkpoint_now
from dstrail.context import Dstrail
from dstrail.domain.datasources import Permissions
from dstrail.domain.streams import StreamFormat
from dstrail.domain.timestamps import format_ms
from dstrail.domain.trail import CheckpointRecord, EventKind, SealedRow
from dstrail.domain.users import Role
from dstrail.errors import Forbidden
from dstrail.services import access
from dstrail.services import datasources as ds_service
from dstrail.services import streams as stream_service
from dstrail.services.access import AccessClaim, AccessOperation, AccessRequest, Grant
from dstrail.services.auth import CallerCredentials
from dstrail.services.refusals import writing
from dstrail.services.streams import DestinationSpec
from dstrail.streaming.formats import encode as encode_as
from dstrail.streaming.formats.ocsf import MAPPINGS, OCSF_VERSION, encode
from tests.services.support import make_project
from tests.support import Login, SettableClock, create_dataset, make_user

# -- OCSF 1.5.0, as its schema files state it ------------------------------------------------


def names(text: str) -> frozenset[str]:
    return frozenset(text.split())


BASE_ATTRIBUTES = names(
    "activity_id activity_name category_name category_uid class_name class_uid count duration "
    "end_time enrichments message metadata observables raw_data raw_data_size severity "
    "severity_id start_time status status_code status_detail status_id time timezone_offset "
    "type_name type_uid unmapped"
)
BASE_REQUIRED = names("activity_id category_uid class_uid metadata severity_id time type_uid")
IAM_ATTRIBUTES = BASE_ATTRIBUTES | names("actor http_request http_response src_endpoint")

CLASSES: dict[int, dict[str, Any]] = {
    6005: {
        "name": "Datastore Activity",
        "category": (6, "Application Activity"),
        "attributes": BASE_ATTRIBUTES | names(
            "actor database databucket dst_endpoint http_request http_response query_info "
            "src_endpoint table type type_id"
        ),
        "required": BASE_REQUIRED | {"actor", "src_endpoint"},
        "at_least_one": ("database", "databucket", "table"),
        "activities": {1: "Read", 2: "Update", 3: "Connect", 4: "Query", 5: "Write",
                       6: "Create", 7: "Delete", 8: "List", 9: "Encrypt", 10: "Decrypt"},
    },
    3001: {
        "name": "Account Change",
        "category": (3, "Identity & Access Management"),
        "attributes": IAM_ATTRIBUTES | names("policies policy user user_result"),
        "required": BASE_REQUIRED | {"user"},
        "at_least_one": (),
        "activities": {1: "Create", 2: "Enable", 3: "Password Change", 4: "Password Reset",
                       5: "Disable", 6: "Delete", 7: "Attach Policy", 8: "Detach Policy",
                       9: "Lock", 10: "MFA Factor Enable", 11: "MFA Factor Disable",
                       12: "Unlock"},
    },
    3004: {
        "name": "Entity Management",
        "category": (3, "Identity & Access Management"),
        "attributes": IAM_ATTRIBUTES
        | names("access_list access_mask comment entity entity_result"),
        "required": BASE_REQUIRED | {"entity"},
        "at_least_one": (),
        "activities": {1: "Create", 2: "Read", 3: "Update", 4: "Delete", 5: "Move",
                       6: "Enroll", 7: "Unenroll", 8: "Enable", 9: "Disable", 10: "Activate",
                       11: "Deactivate", 12: "Suspend", 13: "Resume"},
    },
    3005: {
        "name": "User Access Management",
        "category": (3, "Identity & Access Management"),
        "attributes": IAM_ATTRIBUTES | names("privileges resource resources user"),
        "required": BASE_REQUIRED | {"privileges", "user"},
        "at_least_one": (),
        "activities": {1: "Assign Privileges", 2: "Revoke Privileges"},
    },
    2004: {
        "name": "Detection Finding",
        "category": (2, "Findings"),
        "attributes": BASE_ATTRIBUTES | names(
            "anomaly_analyses comment confidence confidence_id confidence_score device "
            "evidences finding_info impact impact_id impact_score is_alert malware "
            "malware_scan_info remediation resources risk_details risk_level risk_level_id "
            "risk_score vendor_attributes vulnerabilities"
        ),
        "required": BASE_REQUIRED | {"finding_info"},
        "at_least_one": (),
        "activities": {1: "Create", 2: "Update", 3: "Close"},
    },
    0: {
        "name": "Base Event",
        "category": (0, "Uncategorized"),
        "attributes": BASE_ATTRIBUTES,
        "required": BASE_REQUIRED,
        "at_least_one": (),
        "activities": {},
    },
}  # fmt: skip

OBJECTS: dict[str, dict[str, Any]] = {
    "actor": {
        "attributes": names("app_name app_uid authorizations idp invoked_by process session user"),
        "required": set(),
        "at_least_one": ("process", "user", "invoked_by", "session", "app_name", "app_uid"),
    },
    "user": {
        "attributes": names(
            "account credential_uid display_name domain email_addr forward_addr full_name groups "
            "has_mfa ldap_person name org phone_number risk_level risk_level_id risk_score type "
            "type_id uid uid_alt"
        ),
        "required": set(),
        "at_least_one": ("account", "name", "uid"),
        "type_ids": {0, 1, 2, 3, 99},
    },
    "managed_entity": {
        "attributes": names(
            "data device email group location name org policy type type_id uid user version"
        ),
        "required": set(),
        "at_least_one": ("name", "uid", "device", "group", "org", "policy", "user"),
        "type_ids": {0, 1, 2, 3, 4, 5, 6, 7, 99},
    },
    "network_endpoint": {
        "attributes": names(
            "agent_list autonomous_system domain hostname hw_info instance_uid interface_name "
            "interface_uid intermediate_ips ip isp isp_org location mac name os owner port "
            "proxy_endpoint subnet_uid svc_name type type_id uid vlan_uid vpc_uid zone"
        ),
        "required": set(),
        "at_least_one": ("ip", "uid", "name", "hostname", "svc_name", "instance_uid",
                         "interface_uid", "interface_name", "domain"),
    },
    "database": {
        "attributes": names("created_time desc groups modified_time name size type type_id uid"),
        "required": {"type_id"},
        "at_least_one": ("name", "uid"),
        "type_ids": {0, 1, 2, 3, 4, 5, 6, 99},
    },
    "databucket": {
        "attributes": names(
            "agent_list cloud_partition created_time criticality data desc encryption_details "
            "file group groups hostname ip is_backed_up is_encrypted is_public labels "
            "modified_time name namespace owner region resource_relationship size tags type "
            "type_id uid uid_alt version zone"
        ),
        "required": {"type_id"},
        "at_least_one": ("name", "uid"),
        "type_ids": {0, 1, 2, 3, 99},
    },
    "file": {
        "attributes": names("name path type_id uid type ext size hashes"),
        "required": {"name", "type_id"},
        "at_least_one": ("name", "uid"),
        "type_ids": {0, 1, 2, 3, 4, 5, 6, 7, 99},
    },
    "resource_details": {
        "attributes": names(
            "agent_list cloud_partition created_time criticality data group hostname ip "
            "is_backed_up labels modified_time name namespace owner region "
            "resource_relationship tags type uid uid_alt version zone"
        ),
        "required": set(),
        "at_least_one": ("name", "uid"),
    },
    "finding_info": {
        "attributes": names(
            "analytic attacks created_time data_sources desc first_seen_time kill_chain "
            "last_seen_time modified_time product product_uid related_analytics related_events "
            "related_events_count src_url tags title traits types uid uid_alt"
        ),
        "required": {"uid"},
        "at_least_one": (),
    },
    "evidences": {
        "attributes": names(
            "actor api connection_info container data database databucket device dst_endpoint "
            "email file http_request http_response ja4_fingerprint_list job name process query "
            "resources script src_endpoint tls uid url user verdict verdict_id"
        ),
        "required": set(),
        "at_least_one": ("name", "uid"),
    },
    "metadata": {
        "attributes": names(
            "correlation_uid debug event_code extension extensions labels log_level log_name "
            "log_provider log_version logged_time loggers modified_time original_time "
            "processed_time product profiles sequence tags tenant_uid transformation_info_list "
            "uid version"
        ),
        "required": {"product", "version"},
        "at_least_one": (),
    },
    "product": {
        "attributes": names("cpe_name feature lang name path uid url_string vendor_name version"),
        "required": set(),
        "at_least_one": ("name", "uid"),
    },
}  # fmt: skip
"""The objects dstrail writes (of ``file``, only the attributes worth listing here)."""


def check_object(kind: str, value: Any, where: str) -> None:
    """``value`` is an OCSF ``kind`` object: only its attributes, its required ones, one of its
    ``at_least_one``, a ``type_id`` of its enum."""
    spec = OBJECTS[kind]
    assert isinstance(value, dict), f"{where}: not an object"
    assert set(value) <= spec["attributes"], f"{where}: unknown {set(value) - spec['attributes']}"
    assert spec["required"] <= set(value), f"{where}: missing {spec['required'] - set(value)}"
    if spec["at_least_one"]:
        assert any(value.get(name) for name in spec["at_least_one"]), f"{where}: empty"
    if "type_id" in value:
        assert value["type_id"] in spec["type_ids"], f"{where}.type_id {value['type_id']}"


def check_ocsf(record: dict[str, Any]) -> None:
    """Fails unless ``record`` is a valid OCSF 1.5.0 event of its class."""
    BaseEvent.model_validate(record)  # py-ocsf-models: metadata, product, severity, status
    finding = record["class_uid"] == 2004
    if finding:
        DetectionFinding.model_validate(record)
    spec = CLASSES[record["class_uid"]]
    assert set(record) <= spec["attributes"], f"unknown {set(record) - spec['attributes']}"
    assert spec["required"] <= set(record), f"missing {spec['required'] - set(record)}"
    if spec["at_least_one"]:
        assert any(name in record for name in spec["at_least_one"])
    activity = record["activity_id"]
    assert activity in {0, 99} | set(spec["activities"])
    if activity in spec["activities"]:
        assert record["activity_name"] == spec["activities"][activity]
    assert record["class_name"] == spec["name"]
    assert (record["category_uid"], record["category_name"]) == spec["category"]
    assert record["type_uid"] == record["class_uid"] * 100 + activity
    # type_uid's caption in the schema: Other for an Other activity of a class (its own name
    # is activity_name); the Base Event (type_uid 99) names the activity itself
    other = activity == 99 and record["class_uid"] != 0
    caption = "Other" if other else record["activity_name"]
    assert record["type_name"] == f"{spec['name']}: {caption}"
    if finding:  # its own severity; New, or acknowledged (Other)
        assert (record["severity_id"], record["severity"]) in {
            (2, "Low"),
            (3, "Medium"),
            (4, "High"),
        }
        assert (record["status_id"], record["status"]) in {(1, "New"), (99, "Acknowledged")}
        check_object("finding_info", record["finding_info"], "finding_info")
        for index, evidence in enumerate(record.get("evidences", [])):
            check_object("evidences", evidence, f"evidences[{index}]")
            check_object("user", evidence["user"], f"evidences[{index}].user")
    else:
        assert record["severity_id"] in {1, 3}
        assert (record["status_id"], record["status"]) in {(1, "Success"), (2, "Failure")}
    assert isinstance(record["time"], int)
    assert record["metadata"]["version"] == py_ocsf_models.OCSF_VERSION
    check_object("metadata", record["metadata"], "metadata")
    check_object("product", record["metadata"]["product"], "metadata.product")
    if "actor" in record:
        check_object("actor", record["actor"], "actor")
        check_object("user", record["actor"]["user"], "actor.user")
    if "user" in record:
        check_object("user", record["user"], "user")
    if "entity" in record:
        check_object("managed_entity", record["entity"], "entity")
    if "src_endpoint" in record:
        check_object("network_endpoint", record["src_endpoint"], "src_endpoint")
    if "database" in record:
        check_object("database", record["database"], "database")
    if "databucket" in record:
        check_object("databucket", record["databucket"], "databucket")
        ResourceDetails.model_validate(record["databucket"])
        if "file" in record["databucket"]:
            check_object("file", record["databucket"]["file"], "databucket.file")
    for index, resource in enumerate(record.get("resources", [])):
        check_object("resource_details", resource, f"resources[{index}]")
        ResourceDetails.model_validate(resource)
    if record["class_uid"] == 3005:
        assert record["privileges"] and all(isinstance(p, str) for p in record["privileges"])
    if record["class_uid"] == 6005:
        assert record["type_id"] in {0, 1, 2, 3, 99}


def decoded(rows: list[SealedRow], checkpoint: CheckpointRecord | None = None) -> list[Any]:
    records = encode(rows, checkpoint)
    assert [r.seq for r in records] == [row[7] for row in rows]
    return [orjson.loads(r.body) for r in records]


# -- real rows, on both databases -------------------------------------------------------------

READ_KEY = functools.partial(access.object_key_operation, "raw/2024/a.csv", is_read_write=False)
WRITE_KEY = functools.partial(access.object_key_operation, "out/b.parquet", is_read_write=True)


def _served(grant: Grant) -> Grant:
    return grant


def use(
    dstrail: Dstrail, login: Login, ds_id: str, operation: functools.partial[AccessOperation]
) -> None:
    """One call of the data path, as its entry points make it."""
    access.serve_access(
        dstrail.store,
        dstrail.vault,
        AccessRequest(
            credentials=CallerCredentials(api_key=login.api_key, bearer=None),
            claim=AccessClaim(run_id=None, client_source="Python"),
            data_source_id=ds_id,
            operation=operation,
        ),
        signing_key=dstrail.keys.signing_key,
        clock=dstrail.clock,
        serve=_served,
    )


def test_real_events_encode_as_valid_ocsf_of_their_class(
    dstrail: Dstrail, clock: SettableClock
) -> None:
    admin = make_user(dstrail, "sample-admin", Role.SYS_ADMIN)  # UserCreated, ApiKeyIssued
    alice, bob, carol = (make_user(dstrail, name) for name in ("alice", "bob", "carol"))
    start = clock.advance(1000)
    ds = create_dataset(dstrail, alice, "alices-files", permissions=Permissions(False))
    clock.advance(1000)
    with dstrail.store.write() as tx:
        ds_service.set_permissions(
            tx, data_source_id=ds.id, permissions=Permissions(False, (bob.id,)),
            actor=alice.user, now_ms=clock(),
        )  # fmt: skip
    clock.advance(1000)
    project = make_project(dstrail, alice, "churn")
    clock.advance(1000)
    with dstrail.store.write() as tx:
        ds_service.attach_to_project(
            tx, data_source_id=ds.id, project_id=project.id, actor=alice.user, now_ms=clock()
        )
    clock.advance(1000)
    use(dstrail, bob, ds.id, READ_KEY)
    clock.advance(1000)
    use(dstrail, bob, ds.id, WRITE_KEY)
    clock.advance(1000)
    with pytest.raises(Forbidden):
        use(dstrail, carol, ds.id, READ_KEY)
    clock.advance(1000)
    with pytest.raises(Forbidden), writing(dstrail.store, dstrail.clock) as tx:
        ds_service.delete_data_source(tx, data_source_id=ds.id, actor=bob.user, now_ms=clock())
    checkpoint = checkpoint_now(dstrail.store, now_ms=clock())
    clock.advance(1000)
    with dstrail.store.write() as tx:
        stream = stream_service.add_destination(
            tx, dstrail.vault, actor=admin.user, now_ms=clock(),
            spec=DestinationSpec(
                name="siem", kind="splunk-hec", format="ocsf",
                config={"url": "https://splunk.example:8088"}, secret="hec-token",
            ),
        ).destination  # fmt: skip
    with dstrail.store.read() as tx:
        rows = tx.integrity.events_after(0, limit=100)

    records = decoded(rows, checkpoint)
    for record in records:
        check_ocsf(record)
    ms = start
    operator = ("0" * 24, "operator")
    expected = [
        # kind, class, activity, status, time, actor
        ("UserCreated", 3001, 1, 1, ms - 1000, operator),
        ("ApiKeyIssued", 3001, 99, 1, ms - 1000, operator),
        *[
            event
            for _ in range(3)
            for event in (
                ("UserCreated", 3001, 1, 1, ms - 1000, operator),
                ("ApiKeyIssued", 3001, 99, 1, ms - 1000, operator),
            )
        ],
        ("CreateDataSource", 3004, 1, 1, ms, (alice.id, "alice")),
        ("DataSourceChangeOfPermissions", 3005, 1, 1, ms + 1000, (alice.id, "alice")),
        ("ProjectCreated", 3004, 1, 1, ms + 2000, (alice.id, "alice")),
        ("DataSourceAssociatedToProject", 3004, 3, 1, ms + 3000, (alice.id, "alice")),
        ("AccessDataSource", 6005, 1, 1, ms + 4000, (bob.id, "bob")),
        ("AccessDataSource", 6005, 5, 1, ms + 5000, (bob.id, "bob")),
        ("AccessDataSourceRefused", 6005, 1, 2, ms + 6000, (carol.id, "carol")),
        ("DataSourceChangeRefused", 3004, 4, 2, ms + 7000, (bob.id, "bob")),
        ("StreamDestinationAdded", 3004, 1, 1, ms + 8000, (admin.id, "sample-admin")),
    ]
    assert len(records) == len(expected) == len(rows)
    for seq, (record, row, want) in enumerate(zip(records, rows, expected, strict=True), 1):
        kind, class_uid, activity, status, time_ms, (user_id, username) = want
        assert record["metadata"]["event_code"] == kind
        assert (record["class_uid"], record["activity_id"]) == (class_uid, activity), kind
        assert record["type_uid"] == class_uid * 100 + activity
        assert record["status_id"] == status
        assert record["severity_id"] == (3 if status == 2 else 1)
        assert record["time"] == time_ms
        assert record["metadata"]["original_time"] == format_ms(record["time"])
        assert record["actor"]["user"] == {"uid": user_id, "name": username}
        leaf = row[11]
        assert leaf is not None
        assert record["metadata"]["uid"] == leaf.hex()
        assert record["metadata"]["sequence"] == seq
        assert record["metadata"]["product"] == {
            "name": "dstrail", "vendor_name": "dstrail", "version": __version__,
        }  # fmt: skip
        assert record["unmapped"]["metadata"] == orjson.loads(row[4])
        covered = seq <= checkpoint.tree_size
        assert ("checkpoint" in record["unmapped"]) is covered
        if covered:
            assert record["unmapped"]["checkpoint"] == {
                "treeSize": checkpoint.tree_size, "rootHash": checkpoint.root_hash.hex(),
            }  # fmt: skip

    by_kind = {r["metadata"]["event_code"]: r for r in records}
    assert by_kind["UserCreated"]["user"] == {"uid": carol.id, "name": "carol"}
    for record, source in zip(records, rows, strict=True):
        if source[3] == "ApiKeyIssued":
            issued = orjson.loads(source[4])
            assert record["activity_name"] == "Issue API Key"
            assert record["user"] == {
                "uid": issued["userId"], "name": issued["username"],
                "credential_uid": issued["keyId"],
            }  # fmt: skip
    assert [r["user"]["name"] for r in records if r["class_uid"] == 3001] == [
        name for name in ("sample-admin", "alice", "bob", "carol") for _ in range(2)
    ]
    entity = by_kind["CreateDataSource"]["entity"]
    assert entity == {
        "uid": ds.id, "name": "alices-files", "type": "Data Source", "type_id": 99,
        "data": {"dataSourceType": "DatasetConfig"},
    }  # fmt: skip
    permissions = by_kind["DataSourceChangeOfPermissions"]
    assert permissions["activity_name"] == "Assign Privileges"
    assert permissions["user"] == {"uid": bob.id}
    assert permissions["privileges"] == ["use"]
    assert permissions["resources"] == [
        {"uid": ds.id, "name": "alices-files", "type": "DatasetConfig"}
    ]
    assert by_kind["ProjectCreated"]["entity"] == {
        "uid": project.id, "name": "churn", "type": "Project", "type_id": 99,
    }  # fmt: skip
    read, write = (r for r in records if r["metadata"]["event_code"] == "AccessDataSource")
    assert read["databucket"] == {
        "uid": ds.id, "name": "alices-files", "type": "DatasetConfig", "type_id": 99,
        "file": {"name": "a.csv", "path": "raw/2024/a.csv", "type_id": 1},
    }  # fmt: skip
    assert (read["type"], read["type_id"]) == ("Databucket", 2)
    assert read["src_endpoint"] == {"name": "Python"}
    assert read["actor"]["app_name"] == "Python"
    assert write["activity_name"] == "Write"
    assert write["databucket"]["file"]["path"] == "out/b.parquet"
    refused = by_kind["AccessDataSourceRefused"]
    assert (refused["status"], refused["status_detail"]) == ("Failure", "notPermitted")
    assert refused["severity"] == "Medium"
    change_refused = by_kind["DataSourceChangeRefused"]
    assert (change_refused["activity_name"], change_refused["status_detail"]) == (
        "Delete",
        "notOwner",
    )
    assert change_refused["entity"]["uid"] == ds.id
    assert by_kind["StreamDestinationAdded"]["entity"] == {
        "uid": stream.id, "name": "siem", "type": "Stream Destination", "type_id": 99,
    }  # fmt: skip
    assert "hec-token" not in repr(records)
    # The format is reachable by its name, as the workers find it
    via_name = encode_as(StreamFormat.OCSF, rows, checkpoint)
    assert via_name == encode(rows, checkpoint)
    assert [r.event_id for r in via_name] == [r["metadata"]["uid"] for r in records]
    assert [r.timestamp_ms for r in via_name] == [row[6] for row in rows]


# -- every kind, and the choices within a kind (rows as the store hands them over) ------------

DS = ("6b0792c3673c327b643884f8", "sales-db", "PostgreSQLConfig")
ALICE = "6b0792c3673c327b643884f1"


def row(
    kind: str, metadata: dict[str, str], *, ds: tuple[str, str, str] = DS, seq: int = 7
) -> SealedRow:
    """A trail row of ``kind`` (``SEALED_COLUMNS``)."""
    text = orjson.dumps({"performedByUsername": "alice", **metadata}).decode()
    return (*ds, kind, text, ALICE, 1_692_826_821_669, seq, "alice", None, None, bytes(32))


NO_DS = ("", "", "")
EVERY_KIND: dict[EventKind, tuple[SealedRow, int, int]] = {
    EventKind.CREATE_DATA_SOURCE: (row("CreateDataSource", {"isEveryone": "false"}), 3004, 1),
    EventKind.DELETE_DATA_SOURCE: (row("DeleteDataSource", {}), 3004, 4),
    EventKind.CHANGE_OF_PERMISSIONS: (
        row("DataSourceChangeOfPermissions", {"removedUserIds": "a" * 24}), 3005, 2,
    ),
    EventKind.CHANGE_OF_OWNERSHIP: (
        row("DataSourceChangeOfOwnership", {"newOwnerId": "b" * 24}), 3004, 3,
    ),
    EventKind.ACCESS_DATA_SOURCE: (
        row("AccessDataSource", {"clientSource": "R", "operation": "query",
                                 "queryDigest": "ab" * 32}), 6005, 4,
    ),
    EventKind.ASSOCIATED_TO_PROJECT: (
        row("DataSourceAssociatedToProject", {"projectId": "c" * 24}), 3004, 3,
    ),
    EventKind.DISSOCIATED_FROM_PROJECT: (
        row("DataSourceDissociatedFromProject", {"projectId": "c" * 24}), 3004, 3,
    ),
    EventKind.UPDATE_DATA_SOURCE: (row("UpdateDataSource", {"changedFields": "config"}), 3004, 3),
    EventKind.UPDATE_CREDENTIALS: (
        row("DataSourceCredentialsUpdated", {"credentialType": "Shared"}), 3004, 3,
    ),
    EventKind.ACCESS_REFUSED: (
        row("AccessDataSourceRefused", {"clientSource": "Python", "operation": "getDataSource",
                                        "reason": "runEnded"}), 6005, 1,
    ),
    EventKind.CHANGE_REFUSED: (
        row("DataSourceChangeRefused", {"action": "setPermissions", "reason": "notOwner"}),
        3004, 3,
    ),
    EventKind.USER_CREATED: (
        row("UserCreated", {"userId": "d" * 24, "username": "dave", "role": "User"}, ds=NO_DS),
        3001, 1,
    ),
    EventKind.USER_ROLE_CHANGED: (
        row("UserRoleChanged", {"userId": "d" * 24, "username": "dave", "previousRole": "User",
                                "role": "Auditor"}, ds=NO_DS), 3005, 1,
    ),
    EventKind.API_KEY_ISSUED: (
        row("ApiKeyIssued", {"userId": "d" * 24, "username": "dave", "keyId": "k1",
                             "label": "ci"}, ds=NO_DS), 3001, 99,
    ),
    EventKind.API_KEY_REVOKED: (
        row("ApiKeyRevoked", {"userId": "d" * 24, "username": "dave", "keyId": "k1"},
            ds=NO_DS), 3001, 99,
    ),
    EventKind.PROJECT_CREATED: (
        row("ProjectCreated", {"projectId": "c" * 24, "projectName": "p"}, ds=NO_DS), 3004, 1,
    ),
    EventKind.COLLABORATOR_ADDED: (
        row("ProjectCollaboratorAdded", {"projectId": "c" * 24, "projectName": "p",
                                         "userId": "d" * 24}, ds=NO_DS), 3004, 3,
    ),
    EventKind.COLLABORATOR_REMOVED: (
        row("ProjectCollaboratorRemoved", {"projectId": "c" * 24, "projectName": "p",
                                           "userId": "d" * 24}, ds=NO_DS), 3004, 3,
    ),
    EventKind.RUN_STARTED: (
        row("RunStarted", {"runType": "Workspace", "projectId": "c" * 24, "runId": "e" * 24,
                           "dataPlaneId": "f" * 24}, ds=NO_DS), 3004, 1,
    ),
    EventKind.RUN_STOPPED: (row("RunStopped", {"runId": "e" * 24}, ds=NO_DS), 3004, 11),
    EventKind.STREAM_ADDED: (
        row("StreamDestinationAdded", {"streamId": "s1", "streamName": "siem"}, ds=NO_DS),
        3004, 1,
    ),
    EventKind.STREAM_REMOVED: (
        row("StreamDestinationRemoved", {"streamId": "s1", "streamName": "siem"}, ds=NO_DS),
        3004, 4,
    ),
    EventKind.STREAM_PAUSED: (
        row("StreamDestinationPaused", {"streamId": "s1", "streamName": "siem"}, ds=NO_DS),
        3004, 12,
    ),
    EventKind.STREAM_RESUMED: (
        row("StreamDestinationResumed", {"streamId": "s1", "streamName": "siem"}, ds=NO_DS),
        3004, 13,
    ),
    EventKind.STREAM_REPLAYED: (
        row("StreamDestinationReplayed", {"streamId": "s1", "streamName": "siem"}, ds=NO_DS),
        3004, 3,
    ),
    EventKind.STREAM_SECRET_ROTATED: (
        row("StreamDestinationSecretRotated", {"streamId": "s1", "streamName": "siem"},
            ds=NO_DS), 3004, 3,
    ),
    EventKind.WITNESS_ADDED: (
        row("WitnessAdded", {"witnessName": "w.example/w1", "vkey": "w.example/w1+01020304+BA",
                             "url": "https://w.example/w1"}, ds=NO_DS), 3004, 1,
    ),
    EventKind.WITNESS_REMOVED: (
        row("WitnessRemoved", {"witnessName": "w.example/w1", "vkey": "w.example/w1+01020304+BA",
                               "url": "https://w.example/w1"}, ds=NO_DS), 3004, 4,
    ),
    EventKind.RETENTION_SET: (
        row("AuditRetentionPolicySet", {"days": "365", "locked": "true"}, ds=NO_DS), 3004, 3,
    ),
    EventKind.RETENTION_REFUSED: (
        row("AuditRetentionChangeRefused", {"days": "30"}, ds=NO_DS), 3004, 3,
    ),
    EventKind.TRAIL_PURGED: (
        row("AuditTrailPurged", {"firstSeq": "1", "lastSeq": "9", "archive": "file:///a"},
            ds=NO_DS), 3004, 4,
    ),
    EventKind.TRAIL_READ: (
        row("AuditTrailRead", {"filter": "{}", "rows": "3"}, ds=NO_DS), 3004, 2,
    ),
    EventKind.FINDING_RAISED: (
        row("ForensicFindingRaised", {
            "findingId": "f" * 24, "rule": "accessWithoutGrant", "severity": "high",
            "summary": "bob accessed sales-db although the trail shows no grant",
            "userId": "b" * 24, "username": "bob", "dataSourceId": DS[0],
            "dataSourceName": DS[1], "seqs": "5", "firstSeq": "5", "lastSeq": "5",
            "time": "2023-08-23T21:40:20.000Z", "details": "{}",
        }, ds=NO_DS), 2004, 1,
    ),
    EventKind.FINDING_ACKNOWLEDGED: (
        row("ForensicFindingAcknowledged", {
            "findingId": "f" * 24, "rule": "accessWithoutGrant", "severity": "high",
            "note": "bob's grant was restored by hand; fixed",
        }, ds=NO_DS), 2004, 2,
    ),
}  # fmt: skip


def test_every_event_kind_has_a_mapping() -> None:
    assert set(MAPPINGS) == {kind.value for kind in EventKind}
    assert set(EVERY_KIND) == set(EventKind)


@pytest.mark.parametrize("kind", list(EventKind), ids=str)
def test_each_kind_becomes_a_valid_event_of_its_class(kind: EventKind) -> None:
    source, class_uid, activity = EVERY_KIND[kind]
    assert source[3] == kind.value
    (record,) = decoded([source])
    check_ocsf(record)
    assert (record["class_uid"], record["activity_id"]) == (class_uid, activity)
    assert record["time"] == 1_692_826_821_669
    assert record["metadata"]["uid"] == "00" * 32
    assert record["metadata"]["sequence"] == 7
    expected_unmapped: dict[str, Any] = {"metadata": orjson.loads(source[4])}
    if class_uid == 2004:  # no actor in the class
        expected_unmapped["actor"] = {"user": {"uid": ALICE, "name": "alice"}}
    else:
        assert record["actor"]["user"] == {"uid": ALICE, "name": "alice"}
    if source[2]:
        expected_unmapped["dataSourceType"] = source[2]
    assert record["unmapped"] == expected_unmapped


def test_the_version_written_is_the_one_py_ocsf_models_implements() -> None:
    assert OCSF_VERSION == py_ocsf_models.OCSF_VERSION == "1.5.0"


BUCKET = ("6b0792c3673c327b643884f9", "raw-files", "S3Config")


@pytest.mark.parametrize(
    ("metadata", "ds", "activity", "name"),
    [
        ({"operation": "getDataSource"}, DS, 1, "Read"),
        ({"operation": "objectKey", "objectKey": "k", "isReadWrite": "false"}, BUCKET, 1, "Read"),
        ({"operation": "objectKey", "objectKey": "k", "isReadWrite": "true"}, BUCKET, 5, "Write"),
        ({"operation": "listObjects", "prefix": "raw/"}, BUCKET, 8, "List"),
        ({"operation": "query", "queryDigest": "ab" * 32}, DS, 4, "Query"),
        ({"operation": "export"}, DS, 99, "export"),
    ],
)
def test_an_access_activity_follows_its_operation(
    metadata: dict[str, str], ds: tuple[str, str, str], activity: int, name: str
) -> None:
    (record,) = decoded([row("AccessDataSource", {"clientSource": "Python", **metadata}, ds=ds)])
    check_ocsf(record)
    assert (record["activity_id"], record["activity_name"]) == (activity, name)
    assert record["type_uid"] == 600500 + activity


def test_the_data_source_is_a_database_or_a_databucket_by_its_type() -> None:
    db, bucket, gcs, mongo, unknown = decoded(
        [
            row("AccessDataSource", {"operation": "query"}),
            row("AccessDataSource", {"operation": "listObjects"}, ds=BUCKET),
            row("AccessDataSource", {"operation": "listObjects"}, ds=("i", "g", "GCSConfig")),
            row("AccessDataSource", {"operation": "query"}, ds=("i", "m", "MongoDBConfig")),
            row("AccessDataSource", {"operation": "query"}, ds=("i", "x", "FutureConfig")),
        ]
    )
    for record in (db, bucket, gcs, mongo, unknown):
        check_ocsf(record)
    assert db["database"] == {
        "uid": DS[0], "name": "sales-db", "type": "Relational", "type_id": 1,
    }  # fmt: skip
    assert (db["type"], db["type_id"]) == ("Database", 1)
    assert db["unmapped"]["dataSourceType"] == "PostgreSQLConfig"
    assert bucket["databucket"] == {
        "uid": BUCKET[0], "name": "raw-files", "type": "S3", "type_id": 1,
    }  # fmt: skip
    assert (gcs["databucket"]["type_id"], gcs["databucket"]["type"]) == (3, "GCP Bucket")
    assert (mongo["database"]["type_id"], mongo["database"]["type"]) == (6, "NoSQL")
    assert (unknown["database"]["type_id"], unknown["database"]["type"]) == (0, "Unknown")
    assert unknown["unmapped"]["dataSourceType"] == "FutureConfig"
    assert db["src_endpoint"] == {"name": "unknown"}  # no clientSource recorded
    assert "app_name" not in db["actor"]


def test_an_access_from_a_run_names_its_data_plane() -> None:
    (record,) = decoded(
        [
            row(
                "AccessDataSource",
                {"runType": "Job", "projectId": "c" * 24, "runId": "e" * 24,
                 "dataPlaneId": "f" * 24, "clientSource": "R", "operation": "getDataSource"},
            )
        ]
    )  # fmt: skip
    check_ocsf(record)
    assert record["src_endpoint"] == {"name": "R", "uid": "f" * 24}


@pytest.mark.parametrize(
    ("metadata", "activity", "name", "user"),
    [
        ({"addedUserIds": "a" * 24, "removedUserIds": ""}, 1, "Assign Privileges",
         {"uid": "a" * 24}),
        ({"addedUserIds": "", "removedUserIds": "b" * 24 + "," + "c" * 24}, 2,
         "Revoke Privileges", {"uid": "b" * 24}),
        ({"addedUserIds": "a" * 24, "removedUserIds": "b" * 24}, 99,
         "Assign and Revoke Privileges", {"uid": "a" * 24}),
        ({"isEveryone": "true", "addedUserIds": "", "removedUserIds": ""}, 1,
         "Assign Privileges", {"name": "everyone", "type": "Everyone", "type_id": 99}),
        ({"isEveryone": "false", "addedUserIds": "", "removedUserIds": ""}, 2,
         "Revoke Privileges", {"name": "everyone", "type": "Everyone", "type_id": 99}),
    ],
)  # fmt: skip
def test_a_permission_change_assigns_or_revokes(
    metadata: dict[str, str], activity: int, name: str, user: dict[str, Any]
) -> None:
    (record,) = decoded([row("DataSourceChangeOfPermissions", metadata)])
    check_ocsf(record)
    assert (record["activity_id"], record["activity_name"]) == (activity, name)
    assert record["user"] == user
    assert record["unmapped"]["metadata"] == {"performedByUsername": "alice", **metadata}


def test_a_finding_is_a_detection_finding_with_its_severity_rule_and_events() -> None:
    raised, acknowledged = decoded(
        [EVERY_KIND[EventKind.FINDING_RAISED][0], EVERY_KIND[EventKind.FINDING_ACKNOWLEDGED][0]]
    )
    for record in (raised, acknowledged):
        check_ocsf(record)
        assert (record["severity_id"], record["severity"]) == (4, "High")
        assert "actor" not in record
        assert record["unmapped"]["actor"] == {"user": {"uid": ALICE, "name": "alice"}}
    assert (raised["activity_name"], raised["status"], raised["is_alert"]) == (
        "Create",
        "New",
        True,
    )
    assert raised["finding_info"] == {
        "uid": "f" * 24, "title": "bob accessed sales-db although the trail shows no grant",
        "types": ["accessWithoutGrant"],
        "analytic": {"name": "accessWithoutGrant", "uid": "accessWithoutGrant", "type_id": 1,
                     "type": "Rule"},
        "last_seen_time": 1_692_826_820_000, "related_events": [{"uid": "5"}],
        "related_events_count": 1,
    }  # fmt: skip
    assert raised["resources"] == [{"uid": DS[0], "name": DS[1], "type": "Data Source"}]
    assert raised["evidences"] == [{"name": "user", "user": {"uid": "b" * 24, "name": "bob"}}]
    assert (acknowledged["activity_name"], acknowledged["status_id"]) == ("Update", 99)
    assert acknowledged["status"] == "Acknowledged"
    assert acknowledged["comment"] == "bob's grant was restored by hand; fixed"
    assert acknowledged["finding_info"]["uid"] == "f" * 24
    assert "is_alert" not in acknowledged


def test_a_kind_this_version_does_not_know_is_a_base_event() -> None:
    (record,) = decoded([row("SomethingNew", {"x": "1"})])
    check_ocsf(record)
    assert (record["class_uid"], record["category_uid"], record["activity_id"]) == (0, 0, 99)
    assert record["activity_name"] == "SomethingNew"
    assert "actor" not in record
    assert record["unmapped"]["actor"] == {"user": {"uid": ALICE, "name": "alice"}}


def test_metadata_that_is_not_a_json_object_is_kept_as_text() -> None:
    source = (*DS, "DeleteDataSource", "not json", ALICE, 5, 3, "alice", None, None, None)
    (record,) = decoded([source])
    check_ocsf(record)
    assert record["unmapped"] == {"metadata": "not json", "dataSourceType": DS[2]}
    assert record["metadata"]["uid"] == "seq-3"  # no leaf hash: the event id falls back


def test_a_row_not_covered_by_the_checkpoint_carries_none() -> None:
    checkpoint = CheckpointRecord(
        tree_size=7, root_hash=bytes(range(32)), timestamp_ms=1, key_id="k", signature=b"s"
    )
    covered, later = decoded(
        [row("DeleteDataSource", {}, seq=7), row("DeleteDataSource", {}, seq=8)], checkpoint
    )
    assert covered["unmapped"]["checkpoint"] == {"treeSize": 7, "rootHash": bytes(range(32)).hex()}
    assert "checkpoint" not in later["unmapped"]
