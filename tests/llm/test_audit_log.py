"""The audit log through HTTP: every admin write leaves exactly one entry with the target's state before and
after, secrets never reach it, a failed write leaves none, and admins (only) list and filter it."""
from __future__ import annotations

import json
import time
import uuid

import pytest
from sqlalchemy import select

from shared.audit import Actor, AuditLog
from shared.platform_schema import audit_logs
from tests.conftest import TEST_MODEL_ID
from tests.doubles import ScriptedUpstream

pytestmark = pytest.mark.usefixtures("provider")

SECRET = "sk-upstream-" + "s3cr3t" * 6


@pytest.fixture
def db(app):
    return app.extensions["jan"].db


@pytest.fixture
def keyed_upstream():
    with ScriptedUpstream(models=["audited-model"], api_key=SECRET) as server:
        yield server


def entries(db, **where) -> list:
    query = select(audit_logs).order_by(audit_logs.c.id)
    for name, value in where.items():
        query = query.where(getattr(audit_logs.c, name) == value)
    with db.read() as conn:
        return conn.execute(query).all()


def only_entry(db, **where):
    found = entries(db, **where)
    assert len(found) == 1, [(row.action, row.target_id) for row in found]
    return found[0]


def assert_no_secret(row, *secrets: str) -> None:
    stored = json.dumps({"before": row.before, "after": row.after})
    for secret in secrets:
        assert secret not in stored


def register(admin, upstream) -> dict:
    response = admin.post("/v1/admin/providers", json={"name": f"audited-{uuid.uuid4().hex[:8]}", "vendor": "audit",
                                                       "base_url": upstream.base_url, "api_key": SECRET})
    assert response.status_code == 200, response.json
    return response.json


def test_provider_lifecycle_leaves_one_entry_per_write_with_no_secret(admin, db, keyed_upstream, llm):
    created = register(admin, keyed_upstream)
    pid = created["id"]
    entry = only_entry(db, target_id=pid)
    assert (entry.action, entry.target_type, entry.before) == ("provider.create", "provider", None)
    assert entry.after["name"] == created["name"] and entry.after["api_key_hint"] == created["api_key_hint"]
    assert (entry.actor_user_id, entry.actor_auth_method, entry.actor_service) == (admin.user_id, "jwt", None)
    assert entry.request_id and len(entry.request_id) >= 8
    assert_no_secret(entry, SECRET, SECRET[-12:])

    assert admin.post(f"/v1/admin/providers/{pid}/sync").status_code == 200
    sync = only_entry(db, target_id=pid, action="provider.sync")
    assert sync.before["id"] == sync.after["id"] == pid and sync.after["last_sync_error"] is None
    assert_no_secret(sync, SECRET)

    new_secret = "sk-rotated-" + "r0t4t3d" * 5
    patched = admin.patch(f"/v1/admin/providers/{pid}", json={"name": created["name"] + "-renamed",
                                                              "api_key": new_secret})
    assert patched.status_code == 200
    update = only_entry(db, target_id=pid, action="provider.update")
    assert update.before["name"] == created["name"] and update.after["name"] == created["name"] + "-renamed"
    assert update.before["api_key_hint"] != update.after["api_key_hint"]
    assert_no_secret(update, SECRET, new_secret, new_secret[-12:])
    assert update.request_id == patched.headers["X-Request-Id"]

    assert admin.delete(f"/v1/admin/providers/{pid}").status_code == 204
    deleted = only_entry(db, target_id=pid, action="provider.delete")
    assert deleted.before["name"] == created["name"] + "-renamed" and deleted.after is None
    assert len(entries(db, target_id=pid)) == 4
    llm.catalog.invalidate_routes()


def test_a_failed_write_leaves_no_entry(admin, db, user):
    before = len(entries(db))
    assert admin.patch("/v1/admin/providers/prov_missing0000000", json={"name": "x"}).status_code == 404
    assert admin.patch("/v1/admin/providers/prov_missing0000000", json={"name": ""}).status_code == 400
    assert admin.post("/v1/admin/providers", json={"name": "no-url"}).status_code == 400
    assert user.patch(f"/v1/admin/models/catalogs/{TEST_MODEL_ID}", json={"notes": "x"}).status_code == 403
    assert len(entries(db)) == before


def test_catalog_and_provider_model_edits_record_before_and_after(admin, db, keyed_upstream, llm):
    created = register(admin, keyed_upstream)
    catalog_id = created["models"][0]["id"]
    note = f"note {uuid.uuid4().hex}"
    old = admin.get(f"/v1/admin/models/catalogs/{catalog_id}").json
    assert admin.patch(f"/v1/admin/models/catalogs/{catalog_id}", json={"notes": note}).status_code == 200
    entry = entries(db, action="model_catalog.update", target_id=catalog_id)[-1]
    assert entry.before["notes"] == old.get("notes") and entry.after["notes"] == note

    model = admin.get("/v1/admin/models/provider-models", query_string={"provider_id": created["id"]}).json["data"][0]
    order = model["model_order_number"] + 1
    assert admin.patch(f"/v1/admin/models/provider-models/{model['id']}",
                       json={"model_order_number": order}).status_code == 200
    changed = only_entry(db, action="provider_model.update", target_id=model["id"])
    assert changed.before["model_order_number"] == order - 1 and changed.after["model_order_number"] == order
    llm.providers.delete(created["id"])
    llm.catalog.invalidate_routes()


def test_bulk_toggles_record_the_selection_and_the_result(admin, db, provider):
    """Enabling what is already enabled: an audited write that leaves the shared provider as it was."""
    count = len(entries(db, action="provider_model.bulk_toggle"))
    body = {"enable": True, "provider_id": provider["id"]}
    response = admin.post("/v1/admin/models/provider-models/bulk-toggle", json=body)
    assert response.status_code == 200
    found = entries(db, action="provider_model.bulk_toggle")
    assert len(found) == count + 1
    assert found[-1].after == {"request": body, "result": response.json} and found[-1].target_id is None

    catalogs = {"enable": True, "catalog_ids": [TEST_MODEL_ID]}
    response = admin.post("/v1/admin/models/catalogs/bulk-toggle", json=catalogs)
    assert response.status_code == 200
    last = entries(db, action="model_catalog.bulk_toggle")[-1]
    assert last.after == {"request": catalogs, "result": response.json}


def test_make_admin_is_audited_in_its_own_transaction(llm, db):
    email = f"promoted-{uuid.uuid4().hex[:8]}@example.com"
    operator = Actor(user_id=None, auth_method="operator", service="manage")
    _id, public_id, created = llm.accounts.ensure_admin(email, audit=AuditLog(db), actor=operator)
    entry = only_entry(db, target_id=public_id)
    assert created and entry.action == "user.create_admin" and entry.before is None
    assert (entry.actor_user_id, entry.actor_auth_method, entry.actor_service) == (None, "operator", "manage")
    llm.accounts.ensure_admin(email, password="a new password", audit=AuditLog(db), actor=operator)
    promoted = entries(db, target_id=public_id)[-1]
    assert promoted.action == "user.promote_admin" and promoted.before == {"email": email, "role": "admin"}
    assert "password" not in json.dumps(promoted.after)


def test_secrets_are_redacted_at_any_depth():
    from shared.audit import REDACTED, redact

    assert redact({"api_key": "k", "api_key_hint": "…abcd", "nested": [{"client_secret": "s", "token_limits": {}}],
                   "encrypted_api_key": "c", "password": None}) == {
        "api_key": REDACTED, "api_key_hint": "…abcd", "nested": [{"client_secret": REDACTED, "token_limits": {}}],
        "encrypted_api_key": REDACTED, "password": None}


# Listing -------------------------------------------------------------------------------------------------------

def test_only_admins_list_the_audit_log(client, user, guest):
    assert client.get("/v1/admin/audit-logs").status_code == 401
    for account in (user, guest):
        response = account.get("/v1/admin/audit-logs")
        assert response.status_code == 403 and response.json["message"] == "admin access required"


def test_list_filters_and_cursor_pages(admin, new_user, app, db, keyed_upstream, llm):
    from sqlalchemy import update
    from shared.schema import users

    other = new_user()
    with db.transaction() as conn:
        conn.execute(update(users).where(users.c.public_id == other.user_id).values(role="admin"))
    started = int(time.time())
    mine = [register(admin, keyed_upstream)["id"] for _ in range(3)]
    theirs = register(other, keyed_upstream)["id"]

    listed = admin.get("/v1/admin/audit-logs", query_string={"actor": admin.user_id, "action": "provider.create",
                                                             "since": started}).json
    assert listed["object"] == "list" and [e["target"]["id"] for e in listed["data"]] == mine[::-1]
    first = listed["data"][0]
    assert first["actor"] == {"user_id": admin.user_id, "auth_method": "jwt", "service": None}
    assert first["target"]["type"] == "provider" and first["before"] is None and first["id"].startswith("audit_")
    assert json.dumps(listed).find(SECRET) == -1

    by_target = admin.get("/v1/admin/audit-logs", query_string={"target_type": "provider", "target_id": theirs}).json
    assert [e["actor"]["user_id"] for e in by_target["data"]] == [other.user_id]

    page1 = admin.get("/v1/admin/audit-logs", query_string={"actor": admin.user_id, "since": started,
                                                            "limit": 2, "order": "asc"}).json
    assert [e["target"]["id"] for e in page1["data"]] == mine[:2] and page1["has_more"] is True
    page2 = admin.get("/v1/admin/audit-logs", query_string={"actor": admin.user_id, "since": started, "limit": 2,
                                                            "order": "asc", "after": page1["last_id"]}).json
    assert [e["target"]["id"] for e in page2["data"]] == mine[2:] and page2["has_more"] is False

    future = admin.get("/v1/admin/audit-logs", query_string={"since": int(time.time()) + 3600}).json
    assert future["data"] == []
    past = admin.get("/v1/admin/audit-logs", query_string={"until": started - 3600, "actor": admin.user_id}).json
    assert past["data"] == []
    for pid in [*mine, theirs]:
        llm.providers.delete(pid)
    llm.catalog.invalidate_routes()


@pytest.mark.parametrize("query, param", [({"since": "yesterday"}, "since"), ({"until": "1e99"}, "until"),
                                          ({"after": "audit_unknown"}, "after"), ({"limit": "0"}, "limit"),
                                          ({"actor": "x" * 300}, "actor")])
def test_bad_list_parameters_are_400(admin, query, param):
    response = admin.get("/v1/admin/audit-logs", query_string=query)
    assert response.status_code == 400 and response.json["error"]["param"] == param, response.json
