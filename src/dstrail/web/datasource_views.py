"""Data source pages: list, one data source with its trail, and every management action,
each through the same service as the API (so each records its event exactly once)."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from starlette.datastructures import FormData

from dstrail.api.deps import DstrailDep
from dstrail.audit.query import read_page
from dstrail.domain.audit_filter import AuditFilter
from dstrail.domain.datasources import (
    AUTH_TYPES,
    DATA_SOURCE_TYPES,
    DataSource,
    Permissions,
    can_manage,
)
from dstrail.domain.trail import EventKind
from dstrail.domain.users import User
from dstrail.errors import Conflict, InvalidInput
from dstrail.services import datasources as service
from dstrail.services import projects as project_service
from dstrail.services import users as user_service
from dstrail.services.trail_reads import Surface, TrailReader, filter_document
from dstrail.store import Repositories
from dstrail.web.audit_views import event_view
from dstrail.web.deps import CheckedFormDep, SignedInDep, field, fields
from dstrail.web.pages import page

router = APIRouter(include_in_schema=False)
TRAIL_ROWS = 25

DONE_MESSAGES = {
    "created": "Data source created. Its CreateDataSource event is in the trail.",
    "permissions": "Permissions saved. A DataSourceChangeOfPermissions event was recorded.",
    "unchanged": "Nothing changed, so no event was recorded.",
    "transferred": "Ownership transferred. A DataSourceChangeOfOwnership event was recorded.",
    "attached": "Added to the project. A DataSourceAssociatedToProject event was recorded.",
    "detached": "Removed from the project. A DataSourceDissociatedFromProject event was recorded.",
    "deleted": "Data source deleted. Its history stays in the trail; the name is free again.",
}


def _visibility(ds: DataSource, users: dict[str, User]) -> str:
    if ds.permissions.is_everyone:
        return "Everyone"
    if not ds.permissions.user_ids:
        return "Owner only"
    names = [users[u].username if u in users else u for u in ds.permissions.user_ids]
    return "Owner and " + ", ".join(names)


@router.get("/datasources")
def list_page(request: Request, dstrail: DstrailDep, signed_in: SignedInDep) -> Response:
    """The data sources the user may see, with owner, type, visibility and projects."""
    user = signed_in.user
    show_deleted = request.query_params.get("deleted") == "1" and user.is_admin
    with dstrail.store.read() as tx:
        data_sources = service.list_visible(tx, actor=user, include_deleted=show_deleted)
        people = service.people_of(tx, data_sources)
        projects = project_service.project_names(
            tx, sorted({p for ds in data_sources for p in ds.project_ids})
        )
    rows = [
        {
            "ds": ds,
            "owner": people.get(ds.owner_id),
            "visibility": _visibility(ds, people),
            "projects": [projects.get(p, p) for p in ds.project_ids],
        }
        for ds in data_sources
    ]
    done = request.query_params.get("done", "")
    return page(
        request,
        dstrail,
        "datasources.html",
        {
            "rows": rows,
            "show_deleted": show_deleted,
            "done": DONE_MESSAGES.get(done),
            "done_name": request.query_params.get("name", ""),
        },
        user=user,
        session=signed_in.session,
    )


def _form_context(tx: Repositories, values: dict[str, Any], error: str | None) -> dict[str, Any]:
    return {
        "types": sorted(DATA_SOURCE_TYPES),
        "auth_types": sorted(AUTH_TYPES),
        "all_users": user_service.list_users(tx),
        "values": values,
        "error": error,
    }


@router.get("/datasources/new")
def new_page(request: Request, dstrail: DstrailDep, signed_in: SignedInDep) -> Response:
    """The create form."""
    with dstrail.store.read() as tx:
        context = _form_context(tx, {"credential_type": "Shared", "auth_type": "Basic"}, None)
    return page(
        request,
        dstrail,
        "datasource_new.html",
        context,
        user=signed_in.user,
        session=signed_in.session,
    )


def _pairs(text: str, label: str) -> dict[str, str]:
    """``key=value`` lines to a map; ``InvalidInput`` naming the line that is not one."""
    result: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        key, sep, value = line.partition("=")
        if not sep or not key.strip():
            raise InvalidInput(f"{label}: line {number} is not key=value")
        result[key.strip()] = value.strip()
    return result


def _create_spec(form: FormData) -> service.DataSourceCreate:
    credentials = _pairs(field(form, "credentials"), "credentials")
    return service.DataSourceCreate(
        name=field(form, "name", required=True),
        display_name=field(form, "display_name") or None,
        description=field(form, "description"),
        data_source_type=field(form, "data_source_type", label="type", required=True),
        auth_type=field(form, "auth_type", label="authentication", required=True),
        credential_type=service.parse_credential_type(field(form, "credential_type") or "Shared"),
        config=_pairs(field(form, "config"), "config"),
        credentials=credentials or None,
        permissions=_permissions(form),
    )


def _permissions(form: FormData) -> Permissions:
    return Permissions(
        is_everyone=field(form, "is_everyone") in ("on", "true", "1"),
        user_ids=tuple(fields(form, "user_ids")),
    )


@router.post("/datasources/new")
def create(
    request: Request, dstrail: DstrailDep, signed_in: SignedInDep, form: CheckedFormDep
) -> Response:
    """Create through ``create_data_source`` (records ``CreateDataSource``)."""
    try:
        spec = _create_spec(form)
        with dstrail.change() as tx:
            ds = service.create_data_source(
                tx, dstrail.vault, spec=spec, actor=signed_in.user, now_ms=dstrail.clock()
            )
    except (InvalidInput, Conflict) as error:
        values: dict[str, Any] = {
            key: field(form, key)
            for key in (
                "name",
                "display_name",
                "description",
                "data_source_type",
                "auth_type",
                "credential_type",
                "config",
                "is_everyone",
            )
        }
        values["user_ids"] = fields(form, "user_ids")
        with dstrail.store.read() as tx:
            context = _form_context(tx, values, error.message)
        return page(
            request,
            dstrail,
            "datasource_new.html",
            context,
            user=signed_in.user,
            session=signed_in.session,
            status_code=error.status_code,
        )
    return RedirectResponse(f"/datasources/{ds.id}?done=created", status_code=303)


@router.get("/datasources/{data_source_id}")
def detail_page(
    data_source_id: str, request: Request, dstrail: DstrailDep, signed_in: SignedInDep
) -> Response:
    """One data source: its permissions, projects, and (for trail readers) its own trail."""
    user = signed_in.user
    now = dstrail.clock()
    with dstrail.store.read() as tx:
        ds = service.get_visible(tx, data_source_id=data_source_id, actor=user)
        people = service.people_of(tx, [ds])
        project_names = project_service.project_names(tx, list(ds.project_ids))
        all_users = user_service.list_users(tx)
        projects = project_service.projects_of(tx, user)
        trail = []
        own_trail: AuditFilter | None = None
        if user.can_read_audit:
            own_trail = AuditFilter(
                start_ms=0, end_ms=now, data_source_ids=(ds.id,), event_kinds=tuple(EventKind)
            )
            trail = [
                event_view(row)
                for row in read_page(tx, own_trail, after=None, size=TRAIL_ROWS).rows
            ]
    if own_trail is not None:  # its trail shown: a read of the trail, recorded
        reader = TrailReader(
            store=dstrail.store, clock=dstrail.clock, actor=user, surface=Surface.CONSOLE,
            origin={"path": request.url.path},
        )  # fmt: skip
        reader.record(filter_document(own_trail, limit=TRAIL_ROWS), rows=len(trail))
    done = request.query_params.get("done", "")
    return page(
        request,
        dstrail,
        "datasource.html",
        {
            "ds": ds,
            "people": people,
            "owner": people.get(ds.owner_id),
            "visibility": _visibility(ds, people),
            "projects": [(p, project_names.get(p, p)) for p in ds.project_ids],
            "attachable": [p for p in projects if p.id not in ds.project_ids],
            "all_users": all_users,
            "manage": ds.is_active and can_manage(ds, user),
            "trail": trail,
            "trail_limit": TRAIL_ROWS,
            "done": DONE_MESSAGES.get(done),
        },
        user=user,
        session=signed_in.session,
    )


def _back(data_source_id: str, done: str) -> RedirectResponse:
    return RedirectResponse(f"/datasources/{quote(data_source_id)}?done={done}", status_code=303)


@router.post("/datasources/{data_source_id}/permissions")
def change_permissions(
    data_source_id: str, dstrail: DstrailDep, signed_in: SignedInDep, form: CheckedFormDep
) -> Response:
    """Replace who may use it (``set_permissions``)."""
    with dstrail.change() as tx:
        change = service.set_permissions(
            tx,
            data_source_id=data_source_id,
            permissions=_permissions(form),
            actor=signed_in.user,
            now_ms=dstrail.clock(),
        )
    return _back(data_source_id, "permissions" if change.changed else "unchanged")


@router.post("/datasources/{data_source_id}/transfer")
def transfer(
    data_source_id: str, dstrail: DstrailDep, signed_in: SignedInDep, form: CheckedFormDep
) -> Response:
    """Give it to another user (``transfer_ownership``)."""
    new_owner_id = field(form, "new_owner_id", label="new owner", required=True)
    with dstrail.change() as tx:
        service.transfer_ownership(
            tx,
            data_source_id=data_source_id,
            new_owner_id=new_owner_id,
            actor=signed_in.user,
            now_ms=dstrail.clock(),
        )
    return _back(data_source_id, "transferred")


@router.post("/datasources/{data_source_id}/projects")
def attach(
    data_source_id: str, dstrail: DstrailDep, signed_in: SignedInDep, form: CheckedFormDep
) -> Response:
    """Add it to a project (``attach_to_project``)."""
    project_id = field(form, "project_id", label="project", required=True)
    with dstrail.change() as tx:
        service.attach_to_project(
            tx,
            data_source_id=data_source_id,
            project_id=project_id,
            actor=signed_in.user,
            now_ms=dstrail.clock(),
        )
    return _back(data_source_id, "attached")


@router.post("/datasources/{data_source_id}/projects/{project_id}/detach")
def detach(
    data_source_id: str,
    project_id: str,
    dstrail: DstrailDep,
    signed_in: SignedInDep,
    form: CheckedFormDep,
) -> Response:
    """Remove it from a project (``detach_from_project``)."""
    del form
    with dstrail.change() as tx:
        service.detach_from_project(
            tx,
            data_source_id=data_source_id,
            project_id=project_id,
            actor=signed_in.user,
            now_ms=dstrail.clock(),
        )
    return _back(data_source_id, "detached")


@router.get("/datasources/{data_source_id}/delete")
def confirm_delete(
    data_source_id: str, request: Request, dstrail: DstrailDep, signed_in: SignedInDep
) -> Response:
    """Ask before deleting: the name must be typed."""
    with dstrail.store.read() as tx:
        ds = service.get_visible(tx, data_source_id=data_source_id, actor=signed_in.user)
    return page(
        request,
        dstrail,
        "datasource_delete.html",
        {"ds": ds, "error": None},
        user=signed_in.user,
        session=signed_in.session,
    )


@router.post("/datasources/{data_source_id}/delete")
def delete(
    data_source_id: str,
    request: Request,
    dstrail: DstrailDep,
    signed_in: SignedInDep,
    form: CheckedFormDep,
) -> Response:
    """Soft-delete (``delete_data_source``) once the typed name matches."""
    confirm = field(form, "confirm_name")
    try:
        with dstrail.change() as tx:
            ds = service.get_visible(tx, data_source_id=data_source_id, actor=signed_in.user)
            if confirm != ds.name:
                raise InvalidInput(f"type the name {ds.name!r} exactly to confirm the deletion")
            service.delete_data_source(
                tx, data_source_id=data_source_id, actor=signed_in.user, now_ms=dstrail.clock()
            )
    except InvalidInput as error:
        return page(
            request,
            dstrail,
            "datasource_delete.html",
            {"ds": ds, "error": error.message},
            user=signed_in.user,
            session=signed_in.session,
            status_code=400,
        )
    return RedirectResponse(f"/datasources?done=deleted&name={quote(ds.name)}", status_code=303)
