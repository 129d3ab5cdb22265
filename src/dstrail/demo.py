"""Demo data for ``dstrail demo`` (``make run``): users, projects, data sources, and weeks of
history, all written through the same services as the API, with a clock set in the past.

It starts with the world of the reference's two audit samples: ``snowflake-ds`` and ``s3-ds``
accessed by ``sample-user`` from a Workspace run at the samples' own times in 2023, and
``snowflake-ds`` deleted by ``sample-admin`` (``s3-ds`` a week later), so the README's filtered
request answers what the reference shows. Both names are then used again by the data sources
of the recent history, which keeps each one's history apart by id."""

from __future__ import annotations

import random
from dataclasses import dataclass, replace

from dstrail.audit.checkpoints import checkpoint_now
from dstrail.audit.recorder import record_event
from dstrail.context import Dstrail
from dstrail.domain.datasources import CredentialType, DataSource, Permissions
from dstrail.domain.projects import Project, Run, RunType
from dstrail.domain.timestamps import DAY_MS, parse_iso
from dstrail.domain.trail import EventKind
from dstrail.domain.users import OPERATOR, Role, User
from dstrail.services import credentials as credential_service
from dstrail.services import datasources as ds_service
from dstrail.services import projects as project_service
from dstrail.services import runs as run_service
from dstrail.services import users as user_service
from dstrail.store import Store

ADMIN_USERNAME = "sample-admin"
HISTORY_DAYS = 28


@dataclass(frozen=True, slots=True)
class DemoLogin:
    """What ``make run`` prints: a fresh admin key (keys are shown only once)."""

    admin_username: str
    admin_api_key: str
    created: bool


def load_demo(dstrail: Dstrail, *, seed: int = 7) -> DemoLogin:
    """Load the demo once; on later calls only issue a fresh admin API key."""
    now = dstrail.clock()
    with dstrail.store.write() as tx:
        admin = user_service.find_user(tx, ADMIN_USERNAME)
        if admin is not None:
            fresh = user_service.issue_api_key(
                tx, actor=OPERATOR, user=admin, label="demo", now_ms=now
            )
            return DemoLogin(ADMIN_USERNAME, fresh.secret, created=False)
    # History is written with its own times: a policy that signs by elapsed time would sign a
    # checkpoint at nearly every historic event. Load it signing every 1,000 events only, then
    # sign one checkpoint of the whole history now.
    policy = dstrail.store.checkpoints
    by_count = replace(policy, every_ms=2**62) if policy is not None else None
    loader = Store(dstrail.store.url, checkpoints=by_count)
    try:
        key = _load_history(replace(dstrail, store=loader), random.Random(seed), now_ms=now)  # noqa: S311
    finally:
        loader.dispose()
    checkpoint_now(dstrail.store, now_ms=now)
    return DemoLogin(ADMIN_USERNAME, key, created=True)


SAMPLES_START_MS = parse_iso("2023-01-30T09:00:00.000Z", field="demo")
"""When the demo's world begins: before the reference samples' first event."""


def _reference_samples(dstrail: Dstrail, *, admin: User, user: User, project: Project) -> None:
    """The events of the reference's two samples, at their times (ids are dstrail's own)."""

    def at(text: str) -> int:
        return parse_iso(text, field="demo")

    with dstrail.store.write() as tx:
        sources = [
            ds_service.create_data_source(
                tx,
                dstrail.vault,
                spec=ds_service.DataSourceCreate(
                    name=name,
                    data_source_type=kind,
                    auth_type=auth,
                    credential_type=CredentialType.SHARED,
                    config=config,
                    permissions=Permissions(is_everyone=True),
                    credentials={"username": "demo", "password": "demo-password"}
                    if auth == "Basic"
                    else None,
                ),
                actor=admin,
                now_ms=at(when),
            )
            for name, kind, auth, config, when in (
                ("snowflake-ds", "SnowflakeConfig", "Basic", {"accountName": "acct"},
                 "2023-02-01T10:00:00.000Z"),
                ("s3-ds", "S3Config", "AWSIAMBasic", {"bucket": "samples", "region": "us-east-1"},
                 "2023-02-01T10:05:00.000Z"),
            )
        ]  # fmt: skip
        snowflake, s3 = sources
        run = run_service.start_run(
            tx, actor=user, project=project, user=user, run_type=RunType.WORKSPACE,
            now_ms=at("2023-02-05T08:00:00.000Z"),
        )  # fmt: skip
        for ds, when in ((snowflake, "2023-02-05T21:40:01.449Z"), (s3, "2023-08-21T21:30:05.439Z")):
            record_event(
                tx, kind=EventKind.ACCESS_DATA_SOURCE, data_source=ds, actor=user, now_ms=at(when),
                run=run, metadata={"clientSource": "Python", "operation": "getDataSource"},
            )  # fmt: skip
        run_service.stop_run(tx, run_id=run.id, now_ms=at("2023-08-22T09:00:00.000Z"), actor=user)
        for ds, when in ((snowflake, "2023-08-23T21:40:21.669Z"), (s3, "2023-09-01T12:00:00.000Z")):
            ds_service.delete_data_source(tx, data_source_id=ds.id, actor=admin, now_ms=at(when))


def _load_history(dstrail: Dstrail, rng: random.Random, *, now_ms: int) -> str:
    vault = dstrail.vault
    t = now_ms - HISTORY_DAYS * DAY_MS

    def tick(max_minutes: int = 240) -> int:
        nonlocal t
        t += rng.randint(1, max_minutes) * 60_000 + rng.randint(0, 59_999)
        return t

    begin = SAMPLES_START_MS
    with dstrail.store.write() as tx:
        admin, admin_key = user_service.create_user(
            tx, actor=OPERATOR, username=ADMIN_USERNAME, email="admin@example.com",
            role=Role.SYS_ADMIN, now_ms=begin,
        )  # fmt: skip
        people = {
            name: user_service.create_user(
                tx,
                actor=admin,
                username=name,
                email=f"{name}@example.com",
                role=role,
                now_ms=begin,
            )[0]
            for name, role in (
                ("sample-user", Role.USER),
                ("data-scientist-2", Role.USER),
                ("ml-engineer", Role.USER),
                ("compliance-auditor", Role.AUDITOR),
            )
        }
        user, ds2, mle = people["sample-user"], people["data-scientist-2"], people["ml-engineer"]
        churn = project_service.create_project(
            tx, actor=user, name="churn-model", owner=user, collaborators=[ds2], now_ms=begin
        )
        fraud = project_service.create_project(
            tx, actor=mle, name="fraud-detection", owner=mle, collaborators=[user], now_ms=begin
        )
    _reference_samples(dstrail, admin=admin, user=user, project=churn)

    def create(
        actor: User,
        name: str,
        kind: str,
        auth: str,
        config: dict[str, str],
        everyone: bool,
        users: tuple[User, ...] = (),
    ) -> DataSource:
        spec = ds_service.DataSourceCreate(
            name=name,
            data_source_type=kind,
            auth_type=auth,
            credential_type=CredentialType.SHARED,
            config=config,
            permissions=Permissions(is_everyone=everyone, user_ids=tuple(u.id for u in users)),
            description=f"demo {kind}",
            credentials={"username": "demo", "password": "demo-password"}
            if auth == "Basic"
            else None,
        )
        with dstrail.store.write() as tx:
            return ds_service.create_data_source(tx, vault, spec=spec, actor=actor, now_ms=tick())

    snowflake = create(
        admin,
        "snowflake-ds",
        "SnowflakeConfig",
        "Basic",
        {"accountName": "demo-account", "database": "SALES", "warehouse": "WH"},
        everyone=True,
    )
    s3 = create(
        user,
        "s3-ds",
        "S3Config",
        "AWSIAMBasic",
        {"bucket": "demo-bucket", "region": "us-west-2"},
        everyone=False,
        users=(ds2,),
    )
    postgres = create(
        mle,
        "pg-ds",
        "PostgreSQLConfig",
        "Basic",
        {"host": "127.0.0.1", "port": "5432", "database": "postgres"},
        everyone=False,
        users=(user,),
    )
    dataset = create(user, "dataset-ds", "DatasetConfig", "NoAuth", {}, everyone=True)
    _write_dataset_files(dstrail, dataset)
    with dstrail.store.write() as tx:  # the local PostgreSQL (trust auth), so queries just work
        credential_service.set_credentials(
            tx,
            vault,
            data_source_id=postgres.id,
            actor=mle,
            holder_id=None,
            credentials={"username": "postgres", "password": ""},
            now_ms=tick(),
            via="demo",
        )
    legacy = create(
        admin,
        "legacy-warehouse",
        "RedshiftConfig",
        "Basic",
        {"host": "redshift.internal", "database": "dw"},
        everyone=True,
    )

    with dstrail.store.write() as tx:
        for ds, project, actor in (
            (s3, churn, user),
            (snowflake, churn, user),
            (postgres, fraud, mle),
            (dataset, churn, user),
            (snowflake, fraud, mle),
        ):
            ds_service.attach_to_project(
                tx, data_source_id=ds.id, project_id=project.id, actor=actor, now_ms=tick()
            )
        ds_service.set_permissions(
            tx,
            data_source_id=s3.id,
            actor=user,
            now_ms=tick(),
            permissions=Permissions(is_everyone=False, user_ids=(ds2.id, mle.id)),
        )

    runs = _start_runs(dstrail, rng, churn=churn, fraud=fraud, people=(user, ds2, mle), start_ms=t)
    accessible = {churn.id: [snowflake, s3, dataset], fraud.id: [postgres, snowflake]}
    end = now_ms - 60_000
    step = max(1, (end - t) // 400)
    while t < end - step:
        t += rng.randint(step // 2, step * 3 // 2)
        run, who = rng.choice(runs)
        ds = rng.choice(accessible[run.project_id])
        with dstrail.store.write() as tx:
            record_event(
                tx,
                kind=EventKind.ACCESS_DATA_SOURCE,
                data_source=ds,
                actor=who,
                now_ms=t,
                run=run,
                metadata=_access_metadata(rng, ds),
            )
        if t > now_ms - 20 * DAY_MS and legacy.is_active:
            with dstrail.store.write() as tx:
                legacy = ds_service.transfer_ownership(
                    tx, data_source_id=legacy.id, new_owner_id=mle.id, actor=admin, now_ms=t + 1
                )
                legacy = ds_service.delete_data_source(
                    tx, data_source_id=legacy.id, actor=mle, now_ms=t + 2
                )
        if t > now_ms - 3 * DAY_MS and snowflake.id in [s.id for s in accessible[fraud.id]]:
            with dstrail.store.write() as tx:
                ds_service.detach_from_project(
                    tx, data_source_id=snowflake.id, project_id=fraud.id, actor=mle, now_ms=t + 1
                )
            accessible[fraud.id] = [postgres]
    return admin_key.secret


DEMO_FILES = {
    "README.txt": "Demo files of dataset-ds, served by dstrail through signed URLs.\n",
    "reports/churn-2024-q1.csv": "customer,churned\nc-001,false\nc-002,true\nc-003,false\n",
    "reports/churn-2024-q2.csv": "customer,churned\nc-001,false\nc-004,false\n",
    "models/threshold.json": '{"threshold": 0.42}\n',
}


def _write_dataset_files(dstrail: Dstrail, dataset: DataSource) -> None:
    """A few real files for ``dataset-ds`` under ``<data dir>/datasets/<id>/``."""
    root = dstrail.settings.data_dir / "datasets" / dataset.id
    for key, text in DEMO_FILES.items():
        (root / key).parent.mkdir(parents=True, exist_ok=True)
        (root / key).write_text(text)


def _start_runs(
    dstrail: Dstrail,
    rng: random.Random,
    *,
    churn: Project,
    fraud: Project,
    people: tuple[User, User, User],
    start_ms: int,
) -> list[tuple[Run, User]]:
    user, ds2, mle = people
    plans = (
        (churn, user, RunType.WORKSPACE),
        (churn, ds2, RunType.BATCH),
        (churn, user, RunType.SCHEDULED),
        (churn, ds2, RunType.APP),
        (fraud, mle, RunType.WORKSPACE),
        (fraud, user, RunType.LAUNCHER),
        (fraud, mle, RunType.ENDPOINT),
    )
    runs = []
    with dstrail.store.write() as tx:
        for project, who, kind in plans:
            run = run_service.start_run(
                tx,
                actor=who,
                project=project,
                user=who,
                run_type=kind,
                now_ms=start_ms + rng.randint(0, 3_600_000),
            )
            runs.append((run, who))
    return runs


def _access_metadata(rng: random.Random, ds: DataSource) -> dict[str, str]:
    client = rng.choice(("Python", "Python", "Python", "R"))
    if ds.data_source_type in ("PostgreSQLConfig", "SnowflakeConfig") and rng.random() < 0.7:
        return {
            "clientSource": client,
            "operation": "query",
            "queryDigest": f"{rng.getrandbits(256):064x}",
        }
    operation = rng.choice(("getDataSource", "objectKey", "objectKey", "listObjects"))
    if ds.data_source_type in ("PostgreSQLConfig", "SnowflakeConfig"):
        operation = "getDataSource"
    metadata = {"clientSource": client, "operation": operation}
    if operation == "objectKey":
        metadata.update(
            objectKey=f"data/part-{rng.randint(0, 40):04d}.parquet",
            isReadWrite=rng.choice(("false", "false", "true")),
        )
    elif operation == "listObjects":
        metadata["prefix"] = rng.choice(("data/", "models/", ""))
    return metadata
