"""dstrail's own paths for what Domino's platform owns: users, API keys, projects, runs."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response, status

from dstrail.api.deps import CallerDep, DstrailDep
from dstrail.api.errors import PUBLIC
from dstrail.api.schemas import (
    ApiKeyCreated,
    ApiKeyRead,
    ProjectCreateBody,
    ProjectRead,
    RoleBody,
    RunRead,
    RunStartBody,
    UserCreateBody,
    UserCreated,
    UserRead,
)
from dstrail.domain.projects import Project, Run
from dstrail.domain.users import ApiKeyRecord, User
from dstrail.errors import Forbidden
from dstrail.services import projects as project_service
from dstrail.services import runs as run_service
from dstrail.services import users as user_service
from dstrail.services.auth import Caller

router = APIRouter(
    prefix="/api/dstrail/v1",
    tags=["platform"],
    responses=PUBLIC.responses(400, 401, 403, 404, 409),
)


@router.post("/users", status_code=status.HTTP_201_CREATED, response_model=UserCreated)
def create_user(body: UserCreateBody, dstrail: DstrailDep, caller: CallerDep) -> dict[str, Any]:
    """A new user and their first API key (SysAdmins only)."""
    user_service.require_admin(caller.user, "creating users")
    role = user_service.parse_role(body.role)
    with dstrail.store.write() as tx:
        user, api_key = user_service.create_user(
            tx, actor=caller.user, username=body.username, email=body.email, role=role,
            now_ms=dstrail.clock(),
        )  # fmt: skip
    return {**_user_read(user), "apiKey": api_key.secret, "apiKeyId": api_key.id}


def _user_read(user: User) -> dict[str, Any]:
    return {"id": user.id, "username": user.username, "role": user.role.value}


@router.put("/users/{user_id}/role", response_model=UserRead)
def set_role(
    user_id: str, body: RoleBody, dstrail: DstrailDep, caller: CallerDep
) -> dict[str, Any]:
    """Give a user another role (SysAdmins only); the last SysAdmin keeps theirs."""
    user_service.require_admin(caller.user, "changing roles")
    role = user_service.parse_role(body.role)
    with dstrail.store.write() as tx:
        user = user_service.set_role(
            tx, actor=caller.user, user_id=user_id, role=role, now_ms=dstrail.clock()
        )
    return _user_read(user)


@router.post(
    "/users/{user_id}/api-keys", status_code=status.HTTP_201_CREATED, response_model=ApiKeyCreated
)
def create_api_key(user_id: str, dstrail: DstrailDep, caller: CallerDep) -> dict[str, str]:
    """Another API key for yourself (or for anyone, as a SysAdmin)."""
    _by_api_key(caller)
    with dstrail.store.write() as tx:
        api_key = user_service.issue_api_key_for(
            tx, actor=caller.user, user_id=user_id, label="api", now_ms=dstrail.clock()
        )
    return {"id": api_key.id, "apiKey": api_key.secret}


def _by_api_key(caller: Caller) -> None:
    """Keys are managed with an API key: code inside a run holds only the run's token."""
    if caller.token_run is not None:
        raise Forbidden("API keys are managed with an API key, not with a run's token")


def _key_read(key: ApiKeyRecord) -> dict[str, Any]:
    return {
        "id": key.id,
        "label": key.label,
        "created": key.created_ms,
        "revoked": key.revoked_ms,
        "live": key.is_live,
    }


@router.get("/users/{user_id}/api-keys", response_model=list[ApiKeyRead])
def list_api_keys(user_id: str, dstrail: DstrailDep, caller: CallerDep) -> list[dict[str, Any]]:
    """Your API keys (or anyone's, as a SysAdmin): ids, labels and dates, never the keys."""
    _by_api_key(caller)
    with dstrail.store.read() as tx:
        keys = user_service.api_keys_of(tx, actor=caller.user, user_id=user_id)
    return [_key_read(key) for key in keys]


@router.delete("/users/{user_id}/api-keys/{key_id}", status_code=status.HTTP_204_NO_CONTENT)
def revoke_api_key(user_id: str, key_id: str, dstrail: DstrailDep, caller: CallerDep) -> Response:
    """Revoke one of your API keys (or anyone's, as a SysAdmin): it stops authenticating."""
    _by_api_key(caller)
    with dstrail.store.write() as tx:
        user_service.revoke_api_key(
            tx, actor=caller.user, user_id=user_id, key_id=key_id, now_ms=dstrail.clock()
        )
    return Response(status_code=status.HTTP_204_NO_CONTENT)


def _project_read(project: Project) -> dict[str, Any]:
    return {
        "id": project.id,
        "name": project.name,
        "ownerId": project.owner_id,
        "collaboratorIds": list(project.collaborator_ids),
    }


@router.post("/projects", status_code=status.HTTP_201_CREATED, response_model=ProjectRead)
def create_project(
    body: ProjectCreateBody, dstrail: DstrailDep, caller: CallerDep
) -> dict[str, Any]:
    """A project owned by the caller (or by ``ownerId``, as a SysAdmin)."""
    with dstrail.store.write() as tx:
        project = project_service.create_project_by_ids(
            tx,
            actor=caller.user,
            name=body.name,
            owner_id=body.ownerId,
            collaborator_ids=body.collaboratorIds,
            now_ms=dstrail.clock(),
        )
    return _project_read(project)


@router.put("/projects/{project_id}/collaborators/{user_id}", response_model=ProjectRead)
def add_collaborator(
    project_id: str, user_id: str, dstrail: DstrailDep, caller: CallerDep
) -> dict[str, Any]:
    """Make a user a collaborator of a project (its owner or a SysAdmin)."""
    with dstrail.store.write() as tx:
        project = project_service.add_collaborator_by_ids(
            tx, actor=caller.user, project_id=project_id, user_id=user_id, now_ms=dstrail.clock()
        )
    return _project_read(project)


@router.delete("/projects/{project_id}/collaborators/{user_id}", response_model=ProjectRead)
def remove_collaborator(
    project_id: str, user_id: str, dstrail: DstrailDep, caller: CallerDep
) -> dict[str, Any]:
    """Remove a collaborator from a project (its owner or a SysAdmin)."""
    with dstrail.store.write() as tx:
        project = project_service.remove_collaborator_by_ids(
            tx, actor=caller.user, project_id=project_id, user_id=user_id, now_ms=dstrail.clock()
        )
    return _project_read(project)


def _run_read(run: Run, token: str | None = None) -> dict[str, Any]:
    return {
        "id": run.id,
        "runType": run.run_type.value,
        "projectId": run.project_id,
        "userId": run.user_id,
        "dataPlaneId": run.data_plane_id,
        "running": run.is_running,
        "token": token,
    }


@router.post("/runs", status_code=status.HTTP_201_CREATED, response_model=RunRead)
def start_run(body: RunStartBody, dstrail: DstrailDep, caller: CallerDep) -> dict[str, Any]:
    """Register a running execution; its token authenticates code inside it."""
    run_type = run_service.parse_run_type(body.runType)
    with dstrail.store.write() as tx:
        started = run_service.start_run_by_ids(
            tx,
            actor=caller.user,
            project_id=body.projectId,
            user_id=body.userId,
            run_type=run_type,
            data_plane_id=body.dataPlaneId,
            now_ms=dstrail.clock(),
            signing_key=dstrail.keys.signing_key,
        )
    return _run_read(started.run, started.token)


@router.post("/runs/{run_id}/stop", response_model=RunRead)
def stop_run(run_id: str, dstrail: DstrailDep, caller: CallerDep) -> dict[str, Any]:
    """End a run: its id and token stop being accepted."""
    with dstrail.store.write() as tx:
        stopped = run_service.stop_run(tx, run_id=run_id, actor=caller.user, now_ms=dstrail.clock())
    return _run_read(stopped)
