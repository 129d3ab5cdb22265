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
from dstrail.context import Dstrail
from dstrail.domain.audit_filter import AuditFilter
from dstrail.domain.datasources import (
    AUTH_TYPES,
    DATA_SOURCE_TYPES,
    DataSource,
    Permissions,
    can_manage,
    can_use,
)
from dstrail.domain.trail import EventKind
from dstrail.domain.users import User
from dstrail.errors import Conflict, InvalidInput
from dstrail.services import datasources as service
from dstrail.services import projects as project_service
from dstrail.services import users as user_service
from dstrail.services.access_review import review_permissions, review_transfer
from dstrail.services.names import names_for
from dstrail.services.trail_reads import Surface, TrailReader, filter_document
from dstrail.store import Repositories
from dstrail.web.audit_views import event_view
from dstrail.web.deps import CheckedFormDep, SignedIn, SignedInDep, field, fields
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
    """Who may use it, in words; the named users are said even when everyone may (they keep
    their access if "everyone" is turned off)."""
    named = sorted(
        users[u].username if u in users else u for u in ds.permissions.user_ids if u != ds.owner_id
    )
    if ds.permissions.is_everyone:
        return "Everyone" + (f" (also named: {', '.join(named)})" if named else "")
    if not named:
        return "Owner only"
    return "Owner and " + ", ".join(named)


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


def _detail_context(
    tx: Repositories, ds: DataSource, user: User, *, now_ms: int
) -> tuple[dict[str, Any], AuditFilter | None]:
    """What the data source page shows, and the filter of its trail when shown (a read of
    the trail to record)."""
    people = service.people_of(tx, [ds])
    project_names = project_service.project_names(tx, list(ds.project_ids))
    all_users = user_service.list_users(tx)
    projects = project_service.projects_of(tx, user)
    trail = []
    own_trail: AuditFilter | None = None
    if user.can_read_audit:
        own_trail = AuditFilter(
            start_ms=0, end_ms=now_ms, data_source_ids=(ds.id,), event_kinds=tuple(EventKind)
        )
        rows = read_page(tx, own_trail, after=None, size=TRAIL_ROWS).rows
        names = names_for(tx, rows)
        trail = [event_view(row, names) for row in rows]
    manage = ds.is_active and can_manage(ds, user)
    member_of = {p.id for p in projects}
    context: dict[str, Any] = {
        "ds": ds,
        "people": people,
        "owner": people.get(ds.owner_id),
        "visibility": _visibility(ds, people),
        # Remove: members of the project and whoever manages the data source (the service's
        # rule); an Auditor, who reads but does not change, sees none.
        "projects": [
            (p, project_names.get(p, p), ds.is_active and (manage or p in member_of))
            for p in ds.project_ids
        ],
        "attachable": [p for p in projects if p.id not in ds.project_ids]
        if ds.is_active and (user.is_admin or can_use(ds, user))
        else [],
        "all_users": all_users,
        "candidates": [u for u in all_users if u.id != ds.owner_id],
        "manage": manage,
        "trail": trail,
        "trail_limit": TRAIL_ROWS,
        "errors": {},
        "chosen_owner": "",
    }
    return context, own_trail


def _detail_response(
    request: Request,
    dstrail: Dstrail,
    signed_in: SignedIn,
    data_source_id: str,
    *,
    done: str | None = None,
    errors: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    user = signed_in.user
    now = dstrail.clock()
    with dstrail.store.read() as tx:
        ds = service.get_visible(tx, data_source_id=data_source_id, actor=user)
        context, own_trail = _detail_context(tx, ds, user, now_ms=now)
    if own_trail is not None:  # its trail shown: a read of the trail, recorded
        reader = TrailReader(
            store=dstrail.store, clock=dstrail.clock, actor=user, surface=Surface.CONSOLE,
            origin={"path": request.url.path},
        )  # fmt: skip
        reader.record(filter_document(own_trail, limit=TRAIL_ROWS), rows=len(context["trail"]))
    context.update(done=done, errors=errors or {})
    return page(
        request,
        dstrail,
        "datasource.html",
        context,
        user=user,
        session=signed_in.session,
        status_code=status_code,
    )


@router.get("/datasources/{data_source_id}")
def detail_page(
    data_source_id: str, request: Request, dstrail: DstrailDep, signed_in: SignedInDep
) -> Response:
    """One data source: its permissions, projects, and (for trail readers) its own trail."""
    done = DONE_MESSAGES.get(request.query_params.get("done", ""))
    return _detail_response(request, dstrail, signed_in, data_source_id, done=done)


def _back(data_source_id: str, done: str) -> RedirectResponse:
    return RedirectResponse(f"/datasources/{quote(data_source_id)}?done={done}", status_code=303)


def _confirmed(form: FormData) -> bool:
    return field(form, "confirm") == "yes"


def _manageable(dstrail: Dstrail, data_source_id: str, user: User) -> bool:
    """Whether ``user`` may change it (else the service refuses, and records the refusal)."""
    with dstrail.store.read() as tx:
        ds = service.get_visible(tx, data_source_id=data_source_id, actor=user)
    return ds.is_active and can_manage(ds, user)


def _confirm_page(
    request: Request, signed_in: SignedIn, dstrail: Dstrail, context: dict[str, Any], status: int
) -> Response:
    return page(
        request,
        dstrail,
        "datasource_confirm.html",
        {"stale": False, **context},
        user=signed_in.user,
        session=signed_in.session,
        status_code=status,
    )


@router.post("/datasources/{data_source_id}/permissions")
def change_permissions(
    data_source_id: str,
    request: Request,
    dstrail: DstrailDep,
    signed_in: SignedInDep,
    form: CheckedFormDep,
) -> Response:
    """Replace who may use it (``set_permissions``), once a review of who gains and who loses
    access was shown and confirmed (and still holds: nobody changed them meanwhile)."""
    user = signed_in.user
    asked = _permissions(form)
    if _manageable(dstrail, data_source_id, user):
        with dstrail.store.read() as tx:
            review = review_permissions(
                tx, data_source_id=data_source_id, permissions=asked, actor=user
            )
        stale = _confirmed(form) and field(form, "expected") != review.fingerprint
        if not _confirmed(form) or stale or not review.changed:
            return _confirm_page(
                request,
                signed_in,
                dstrail,
                {"ds": review.data_source, "action": "permissions", "review": review,
                 "stale": stale},
                409 if stale else 200,
            )  # fmt: skip
        asked = review.permissions
    with dstrail.change() as tx:
        change = service.set_permissions(
            tx,
            data_source_id=data_source_id,
            permissions=asked,
            actor=user,
            now_ms=dstrail.clock(),
        )
    return _back(data_source_id, "permissions" if change.changed else "unchanged")


@router.post("/datasources/{data_source_id}/transfer")
def transfer(
    data_source_id: str,
    request: Request,
    dstrail: DstrailDep,
    signed_in: SignedInDep,
    form: CheckedFormDep,
) -> Response:
    """Give it to another user (``transfer_ownership``), once confirmed."""
    user = signed_in.user
    new_owner_id = field(form, "new_owner_id")
    if _manageable(dstrail, data_source_id, user):
        try:
            if not new_owner_id:
                raise InvalidInput("new owner: choose the user who will own it")
            with dstrail.store.read() as tx:
                review = review_transfer(
                    tx, data_source_id=data_source_id, new_owner_id=new_owner_id, actor=user
                )
        except (InvalidInput, Conflict) as error:
            return _detail_response(
                request, dstrail, signed_in, data_source_id,
                errors={"new_owner_id": error.message}, status_code=error.status_code,
            )  # fmt: skip
        stale = _confirmed(form) and field(form, "expected") != review.fingerprint
        if not _confirmed(form) or stale:
            return _confirm_page(
                request,
                signed_in,
                dstrail,
                {"ds": review.data_source, "action": "transfer", "transfer": review,
                 "stale": stale},
                409 if stale else 200,
            )  # fmt: skip
    with dstrail.change() as tx:
        service.transfer_ownership(
            tx,
            data_source_id=data_source_id,
            new_owner_id=new_owner_id,
            actor=user,
            now_ms=dstrail.clock(),
        )
    return _back(data_source_id, "transferred")


@router.post("/datasources/{data_source_id}/projects")
def attach(
    data_source_id: str,
    request: Request,
    dstrail: DstrailDep,
    signed_in: SignedInDep,
    form: CheckedFormDep,
) -> Response:
    """Add it to a project (``attach_to_project``)."""
    project_id = field(form, "project_id")
    if not project_id:
        return _detail_response(
            request, dstrail, signed_in, data_source_id,
            errors={"project_id": "project: choose the project to add it to"}, status_code=400,
        )  # fmt: skip
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
    request: Request,
    dstrail: DstrailDep,
    signed_in: SignedInDep,
    form: CheckedFormDep,
) -> Response:
    """Remove it from a project (``detach_from_project``), once confirmed. Whoever may not
    remove it gets the service's refusal (recorded) at once."""
    user = signed_in.user
    if not _confirmed(form):
        with dstrail.store.read() as tx:
            ds = service.get_visible(tx, data_source_id=data_source_id, actor=user)
            member_of = {p.id for p in project_service.projects_of(tx, user)}
            names = project_service.project_names(tx, [project_id])
        allowed = ds.is_active and (can_manage(ds, user) or project_id in member_of)
        if allowed and project_id in ds.project_ids:
            return _confirm_page(
                request,
                signed_in,
                dstrail,
                {"ds": ds, "action": "detach", "project_id": project_id,
                 "project_name": names.get(project_id, project_id)},
                200,
            )  # fmt: skip
    with dstrail.change() as tx:
        service.detach_from_project(
            tx,
            data_source_id=data_source_id,
            project_id=project_id,
            actor=user,
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
        owner = user_service.find_user(tx, ds.owner_id)
    allowed = ds.is_active and can_manage(ds, signed_in.user)
    return page(
        request,
        dstrail,
        "datasource_delete.html",
        {"ds": ds, "error": None, "allowed": allowed, "owner": owner},
        user=signed_in.user,
        session=signed_in.session,
        status_code=200 if allowed else 403,
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
            {"ds": ds, "error": error.message, "allowed": True, "owner": None},
            user=signed_in.user,
            session=signed_in.session,
            status_code=400,
        )
    return RedirectResponse(f"/datasources?done=deleted&name={quote(ds.name)}", status_code=303)
