"""The console over the ASGI app, on SQLite and PostgreSQL: names in place of ids (table,
event page, exports), the exports' added columns, the event page's raw JSON and proofs,
confirmation before permissions, ownership and projects change, controls that follow the
role, and error pages that keep the navigation."""

from __future__ import annotations

import csv
import io
import json
import re

import pytest
from fastapi.testclient import TestClient

from dstrail.audit.checkpoints import checkpoint_now
from dstrail.context import Dstrail
from dstrail.domain.datasources import Permissions
from dstrail.domain.trail import EventKind
from dstrail.domain.users import Role
from dstrail.services import datasources as ds_service
from tests.support import Login, audit_count, make_user
from tests.web.support import access, create_ds, project_and_run, sign_in

STORED_CSV = (
    "timestamp",
    "eventKind",
    "dataSourceName",
    "dataSourceId",
    "dataSourceType",
    "performedBy",
    "performedByUsername",
    "metadata",
)
NAME_COLUMNS = (
    "projectId",
    "projectName",
    "runId",
    "runLabel",
    "addedUsernames",
    "removedUsernames",
)
_HIDDEN = re.compile(r'<input type="hidden" name="([^"]+)" value="([^"]*)">')


def _set_permissions(dstrail: Dstrail, owner: Login, ds_id: str, *user_ids: str) -> None:
    with dstrail.store.write() as tx:
        ds_service.set_permissions(
            tx,
            data_source_id=ds_id,
            permissions=Permissions(is_everyone=False, user_ids=user_ids),
            actor=owner.user,
            now_ms=dstrail.clock(),
        )


def _hidden_fields(html: str) -> dict[str, list[str]]:
    """The hidden fields of a confirmation page's form (the CSRF token among them)."""
    form = html.split('class="actions-form"', 1)[1].split("</form>", 1)[0]
    fields: dict[str, list[str]] = {}
    for name, value in _HIDDEN.findall(form):
        fields.setdefault(name, []).append(value)
    return fields


def _kinds_since(dstrail: Dstrail, before: int) -> list[str]:
    with dstrail.store.read() as tx:
        return [
            row.event_kind
            for seq in range(before + 1, tx.audit.size() + 1)
            if (row := tx.audit.by_sequence(seq))
        ]


# -- names, not ids -----------------------------------------------------------------------------


def test_permission_changes_and_accesses_read_with_names(
    client: TestClient, dstrail: Dstrail, admin: Login, alice: Login, bob: Login
) -> None:
    carol = make_user(dstrail, "carol")
    ds = create_ds(dstrail, alice, "names-ds", users=(carol.id,))
    _set_permissions(dstrail, alice, ds.id, bob.id)  # bob added, carol removed
    project, run = project_and_run(dstrail, alice, "churn-model")
    seq = access(dstrail, ds, alice, run, operation="listObjects")
    sign_in(client, admin)

    listing = client.get("/audit?range=24h&name=names-ds").text
    assert "added=bob" in listing and "removed=carol" in listing
    assert f'title="added id: {bob.id}"' in listing
    # the project and the run by name, in their columns or in the details, the id on hover
    assert re.search(rf'title="project id: {project.id}">(project=)?churn-model<', listing)
    assert re.search(rf'title="run id: {run.id}">(run=)?Workspace …{run.id[-8:]}<', listing)

    with dstrail.store.read() as tx:
        change = next(
            e
            for n in range(1, tx.audit.size() + 1)
            if (e := tx.audit.by_sequence(n)) and e.event_kind == EventKind.CHANGE_OF_PERMISSIONS
        )
    stored = json.loads(change.metadata)
    assert stored["addedUserIds"] == bob.id and stored["removedUserIds"] == carol.id  # as stored
    detail = client.get(f"/audit/events/{change.seq}").text
    assert re.search(rf'<span class="named">bob</span> <code>{bob.id}</code>', detail)
    assert re.search(rf'<span class="named">carol</span> <code>{carol.id}</code>', detail)
    used = client.get(f"/audit/events/{seq}").text
    assert f"churn-model <code>{project.id}</code>" in used
    assert f"Workspace …{run.id[-8:]} <code>{run.id}</code>" in used

    rows = list(csv.DictReader(io.StringIO(client.get("/audit/export.csv?range=24h").text)))
    by_kind = {r["eventKind"]: r for r in rows}
    named = by_kind["DataSourceChangeOfPermissions"]
    assert (named["addedUsernames"], named["removedUsernames"]) == ("bob", "carol")
    accessed = by_kind["AccessDataSource"]
    assert (accessed["projectId"], accessed["projectName"]) == (project.id, "churn-model")
    assert (accessed["runId"], accessed["runLabel"]) == (run.id, f"Workspace …{run.id[-8:]}")
    assert int(accessed["seq"]) == seq
    lines = client.get("/audit/export.jsonl?range=24h&kind=AccessDataSource").text.splitlines()
    [document] = [json.loads(line) for line in lines]
    assert document["seq"] == seq and document["projectName"] == "churn-model"
    assert document["runLabel"] == f"Workspace …{run.id[-8:]}"
    assert document["metadata"]["runId"] == run.id


# -- exports: seq, names and one column per metadata key ----------------------------------------


def test_exports_add_seq_names_and_metadata_columns_after_the_stored_fields(
    client: TestClient, dstrail: Dstrail, admin: Login, alice: Login
) -> None:
    ds = create_ds(dstrail, alice, "cols-ds")
    first = access(dstrail, ds, alice, operation="getObject", objectKey="=SUM(A1)")
    second = access(dstrail, ds, alice, operation="listObjects", prefix="p/")
    sign_in(client, admin)

    plain = client.get("/audit/export.csv?range=24h&kind=AccessDataSource").text
    header = next(csv.reader(io.StringIO(plain)))
    assert tuple(header) == (*STORED_CSV, "seq", *NAME_COLUMNS)
    rows = list(csv.DictReader(io.StringIO(plain)))
    assert [int(r["seq"]) for r in rows] == [second, first]

    wide = client.get("/audit/export.csv?range=24h&kind=AccessDataSource&metadataColumns=true")
    header = next(csv.reader(io.StringIO(wide.text)))
    keys = header[len(STORED_CSV) + 1 + len(NAME_COLUMNS) :]
    assert keys == sorted(keys) and "performedByUsername" not in keys
    assert {"metadata.operation", "metadata.objectKey", "metadata.prefix"} <= set(keys)
    rows = list(csv.DictReader(io.StringIO(wide.text)))
    assert rows[0]["metadata.prefix"] == "p/" and rows[0]["metadata.objectKey"] == ""
    assert rows[1]["metadata.objectKey"] == "'=SUM(A1)"  # still neutralised
    lines = client.get(
        "/audit/export.jsonl?range=24h&kind=AccessDataSource&metadataColumns=true"
    ).text.splitlines()
    documents = [json.loads(line) for line in lines]
    assert documents[0]["metadata.prefix"] == "p/" and "metadata.objectKey" not in documents[0]
    assert list(documents[0])[:7] == [
        "dataSourceId",
        "dataSourceName",
        "dataSourceType",
        "eventKind",
        "metadata",
        "performedBy",
        "timestamp",
    ]
    bad = client.get("/audit/export.csv?range=24h&metadataColumns=yes")
    assert bad.status_code == 400 and "metadata key" in bad.text

    # The REST export: the same columns added after the stored ones, nothing renamed.
    api = client.get(
        "/api/datasource/v1/audit/export",
        params={"eventKinds": "AccessDataSource", "format": "csv", "metadataColumns": "true"},
        headers=admin.headers,
    )
    assert api.status_code == 200
    header = next(csv.reader(io.StringIO(api.text)))
    assert tuple(header[: len(STORED_CSV)]) == STORED_CSV
    assert "metadata.prefix" in header
    assert (
        client.get(
            "/api/datasource/v1/audit/export",
            params={"metadataColumns": "maybe"},
            headers=admin.headers,
        ).status_code
        == 400
    )


# -- the event page: raw JSON and its proofs ----------------------------------------------------


def test_the_event_page_shows_its_raw_json_and_links_to_its_proofs(
    client: TestClient, dstrail: Dstrail, admin: Login, alice: Login
) -> None:
    ds = create_ds(dstrail, alice, "proof-ds")
    seq = access(dstrail, ds, alice, operation="getObject", objectKey="k.csv")
    sign_in(client, admin)
    before = client.get(f"/audit/events/{seq}").text
    assert "No signed checkpoint covers this event yet" in before
    assert 'id="inclusion-proof"' not in before
    raw = re.search(r'<pre class="raw-json"[^>]*>(.*?)</pre>', before, re.S)
    assert raw is not None
    document = json.loads(raw.group(1).replace("&#34;", '"').replace("&quot;", '"'))
    assert document["metadata"]["objectKey"] == "k.csv"
    assert set(document) == {
        "dataSourceId",
        "dataSourceName",
        "dataSourceType",
        "eventKind",
        "metadata",
        "performedBy",
        "timestamp",
    }

    checkpoint_now(dstrail.store, now_ms=dstrail.clock())
    after = client.get(f"/audit/events/{seq}").text
    assert f'href="/audit/events/{seq}/inclusion.json"' in after
    assert f'href="/audit/events/{seq}/proof.tlog-proof"' in after
    reads = audit_count(dstrail)
    proof = client.get(f"/audit/events/{seq}/inclusion.json")
    assert proof.status_code == 200
    body = proof.json()
    assert body["seq"] == seq and body["event"]["metadata"]["objectKey"] == "k.csv"
    assert audit_count(dstrail) == reads + 1  # a read of the event, recorded
    offline = client.get(f"/audit/events/{seq}/proof.tlog-proof")
    assert offline.status_code == 200 and offline.text.startswith("c2sp.org/tlog-proof@v1")
    assert "attachment" in offline.headers["content-disposition"]
    assert client.get("/audit/events/999999/inclusion.json").status_code == 404

    sign_in(client, alice)
    assert client.get(f"/audit/events/{seq}/inclusion.json").status_code == 403


def test_the_trail_says_what_the_six_month_files_hold_and_has_a_skip_link(
    client: TestClient, admin: Login
) -> None:
    sign_in(client, admin)
    page = client.get("/audit").text
    scope = re.search(r'<p class="muted small" id="six-months-scope">(.*?)</p>', page, re.S)
    assert scope is not None
    text = " ".join(scope.group(1).split())
    assert "six months" in text and "seven" in text
    for kind in list(EventKind)[:7]:
        assert kind.value in text
    assert 'class="skip-link" href="#main"' in page and '<main id="main"' in page


# -- safe management: review and confirm --------------------------------------------------------


def test_permissions_are_saved_only_after_a_review_of_who_gains_and_who_loses(
    client: TestClient, dstrail: Dstrail, alice: Login, bob: Login
) -> None:
    carol = make_user(dstrail, "carol")
    dave = make_user(dstrail, "dave")
    ds = create_ds(dstrail, alice, "review-ds", users=(carol.id, dave.id))
    token = sign_in(client, alice)
    form = client.get(f"/datasources/{ds.id}").text
    assert 'type="checkbox" name="user_ids"' in form and '<select name="user_ids"' not in form
    assert 'id="user-search"' in form

    before = audit_count(dstrail)
    review = client.post(
        f"/datasources/{ds.id}/permissions",
        data={"csrf_token": token, "user_ids": [bob.id, dave.id]},
    )
    assert review.status_code == 200 and audit_count(dstrail) == before
    gains = re.search(r'<ul class="people gains" id="gains"[^>]*>(.*?)</ul>', review.text, re.S)
    loses = re.search(r'<ul class="people loses" id="loses"[^>]*>(.*?)</ul>', review.text, re.S)
    assert gains is not None and loses is not None
    assert "bob" in gains.group(1) and "carol" not in gains.group(1)
    assert "carol" in loses.group(1) and "dave" not in loses.group(1)
    fields = _hidden_fields(review.text)
    assert fields["confirm"] == ["yes"] and fields["user_ids"] == [bob.id, dave.id]

    # Someone else changes them meanwhile: confirming asks for a new review, saves nothing.
    _set_permissions(dstrail, alice, ds.id, carol.id)
    stale = client.post(f"/datasources/{ds.id}/permissions", data=fields)
    assert stale.status_code == 409 and 'id="stale"' in stale.text
    assert _kinds_since(dstrail, before) == ["DataSourceChangeOfPermissions"]  # only theirs
    saved = client.post(
        f"/datasources/{ds.id}/permissions",
        data=_hidden_fields(stale.text),
        follow_redirects=False,
    )
    assert saved.status_code == 303
    with dstrail.store.read() as tx:
        now = tx.data_sources.by_id(ds.id)
    assert now is not None and set(now.permissions.user_ids) == {bob.id, dave.id}

    same = client.post(
        f"/datasources/{ds.id}/permissions",
        data={"csrf_token": token, "user_ids": [bob.id, dave.id]},
    )
    assert same.status_code == 200 and 'id="no-change"' in same.text

    everyone = client.post(
        f"/datasources/{ds.id}/permissions",
        data={"csrf_token": token, "is_everyone": "on", "user_ids": [bob.id]},
    )
    assert 'id="everyone-change"' in everyone.text and "carol" in everyone.text
    assert "dave: taken off the named users (keeps access while everyone may use it)" in (
        everyone.text
    )


def test_visibility_names_the_users_even_when_everyone_may_use_it(
    client: TestClient, dstrail: Dstrail, alice: Login, bob: Login
) -> None:
    ds = create_ds(dstrail, alice, "open-ds", everyone=True, users=(bob.id,))
    sign_in(client, alice)
    page = client.get(f"/datasources/{ds.id}").text
    assert '<dd id="visibility">Everyone (also named: bob)</dd>' in page
    assert "Everyone (also named: bob)" in client.get("/datasources").text


def test_transfer_and_remove_ask_first_and_no_owner_is_preselected(
    client: TestClient, dstrail: Dstrail, alice: Login, bob: Login
) -> None:
    project, _ = project_and_run(dstrail, alice, "analytics")
    ds = create_ds(dstrail, alice, "moving-ds")
    with dstrail.store.write() as tx:
        ds_service.attach_to_project(
            tx, data_source_id=ds.id, project_id=project.id, actor=alice.user,
            now_ms=dstrail.clock(),
        )  # fmt: skip
    token = sign_in(client, alice)
    page = client.get(f"/datasources/{ds.id}").text
    owner_select = re.search(r'<select name="new_owner_id".*?</select>', page, re.S)
    assert owner_select is not None
    assert '<option value="" selected>Choose a new owner…</option>' in owner_select.group(0)
    assert owner_select.group(0).count(" selected") == 1
    assert 'aria-label="Remove from project analytics"' in page

    before = audit_count(dstrail)
    none_chosen = client.post(
        f"/datasources/{ds.id}/transfer", data={"csrf_token": token, "new_owner_id": ""}
    )
    assert none_chosen.status_code == 400
    assert 'aria-invalid="true" aria-describedby="new-owner-error"' in none_chosen.text
    assert "choose the user who will own it" in none_chosen.text
    asked = client.post(
        f"/datasources/{ds.id}/transfer", data={"csrf_token": token, "new_owner_id": bob.id}
    )
    assert asked.status_code == 200 and "Transfer moving-ds to bob?" in asked.text
    assert "<strong>loses access</strong>" in asked.text
    assert audit_count(dstrail) == before
    done = client.post(
        f"/datasources/{ds.id}/transfer", data=_hidden_fields(asked.text), follow_redirects=False
    )
    assert done.status_code == 303
    assert _kinds_since(dstrail, before) == ["DataSourceChangeOfOwnership"]

    # alice gave it away and is named on nothing: she no longer sees it; bob removes it
    before = audit_count(dstrail)
    ask = client.post(
        f"/datasources/{ds.id}/projects/{project.id}/detach", data={"csrf_token": token}
    )
    assert ask.status_code == 404  # she may no longer see it: it is bob's, shared with nobody
    token = sign_in(client, bob)
    ask = client.post(
        f"/datasources/{ds.id}/projects/{project.id}/detach", data={"csrf_token": token}
    )
    assert ask.status_code == 200 and "Remove moving-ds from project analytics?" in ask.text
    assert audit_count(dstrail) == before
    removed = client.post(
        f"/datasources/{ds.id}/projects/{project.id}/detach",
        data=_hidden_fields(ask.text),
        follow_redirects=False,
    )
    assert removed.status_code == 303
    assert _kinds_since(dstrail, before) == ["DataSourceDissociatedFromProject"]


# -- controls follow the role; refusals stay ----------------------------------------------------


def test_controls_follow_the_role_and_the_server_still_refuses(
    client: TestClient, dstrail: Dstrail, admin: Login, alice: Login, bob: Login
) -> None:
    auditor = make_user(dstrail, "auditor", Role.AUDITOR)
    project, _ = project_and_run(dstrail, alice, "analytics")
    ds = create_ds(dstrail, alice, "roles-ds", users=(bob.id,))
    with dstrail.store.write() as tx:
        ds_service.attach_to_project(
            tx, data_source_id=ds.id, project_id=project.id, actor=alice.user,
            now_ms=dstrail.clock(),
        )  # fmt: skip

    sign_in(client, admin)
    as_admin = client.get(f"/datasources/{ds.id}").text
    assert 'data-detach="analytics"' in as_admin and 'id="delete"' in as_admin
    assert 'id="permissions-form"' in as_admin

    token = sign_in(client, auditor)
    as_auditor = client.get(f"/datasources/{ds.id}").text
    assert "Its trail" in as_auditor
    for control in ('data-detach="', 'id="delete"', 'id="permissions-form"', 'id="transfer"'):
        assert control not in as_auditor, control
    before = audit_count(dstrail)
    refused = client.post(
        f"/datasources/{ds.id}/projects/{project.id}/detach", data={"csrf_token": token}
    )
    assert refused.status_code == 403
    assert _kinds_since(dstrail, before) == ["DataSourceChangeRefused"]
    assert "Sign out" in refused.text and "auditor" in refused.text

    token = sign_in(client, bob)
    as_user = client.get(f"/datasources/{ds.id}").text
    assert 'id="delete"' not in as_user and 'id="permissions-form"' not in as_user
    assert 'data-detach="' not in as_user  # not in the project, not the owner
    delete_page = client.get(f"/datasources/{ds.id}/delete")
    assert delete_page.status_code == 403
    assert 'name="confirm_name"' not in delete_page.text
    assert "Only its owner (alice) or a SysAdmin may delete it." in delete_page.text
    before = audit_count(dstrail)
    refused = client.post(
        f"/datasources/{ds.id}/delete", data={"csrf_token": token, "confirm_name": "roles-ds"}
    )
    assert refused.status_code == 403
    refused = client.post(
        f"/datasources/{ds.id}/permissions",
        data={"csrf_token": token, "user_ids": [bob.id]},
    )
    assert refused.status_code == 403
    assert _kinds_since(dstrail, before) == ["DataSourceChangeRefused"] * 2


@pytest.mark.parametrize(
    ("path", "status", "message"),
    [
        ("/audit", 403, "requires the SysAdmin or the Auditor role"),
        ("/no/such/page", 404, "no such path"),
        ("/datasources/0123456789abcdef01234567", 404, "no data source with id"),
    ],
)
def test_error_pages_keep_the_navigation_the_user_and_sign_out(
    client: TestClient, alice: Login, path: str, status: int, message: str
) -> None:
    sign_in(client, alice)
    response = client.get(path)
    assert response.status_code == status and message in response.text
    header = response.text.split("</header>")[0]
    assert '<a href="/datasources"' in header
    assert '<span class="username"' in header and ">alice<" in header
    assert 'action="/signout"' in header and "Sign out" in header
    client.cookies.clear()
    anonymous = client.get("/no/such/page")
    assert anonymous.status_code == 404 and 'action="/signout"' not in anonymous.text
