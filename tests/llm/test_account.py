"""The whole account: GET /v1/users/me/export (everything the caller owns, nothing of anyone else's, streamed)
and DELETE /v1/users/me (every row of the caller gone, every other row untouched, every credential dead)."""
from __future__ import annotations

import datetime as dt
import json
import os
import threading
import uuid

import pytest
from sqlalchemy import insert, select, text, update

from shared import ids
from shared.errors import ERROR_TYPES
from shared.domain.conversations.tables import (conversation_branches, conversation_items, conversation_shares,
                                                conversations, projects)
from shared.domain.usage.tables import usage_records
from shared.platform_schema import jobs
from shared.schema import (api_keys, auth_sessions, file_search_chunks, file_search_documents, full_metadata,
                           realtime_sessions, refresh_tokens, user_settings, users)

metadata = full_metadata()
from tests.conftest import TEST_MODEL_ID
from tests.doubles.oidc_issuer import OidcIssuer

pytestmark = pytest.mark.usefixtures("provider")

EXPORT = "/v1/users/me/export"
UTC = dt.timezone.utc


def assert_error(response, status: int, message: str, *, param=None, code=None) -> None:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.json == {"error": {"message": message, "type": ERROR_TYPES[status], "param": param, "code": code},
                             "message": message, "request_id": response.headers["X-Request-Id"]}


def db(app):
    return app.extensions["jan"].db


def internal_id(app, public_id: str) -> int:
    with db(app).read() as conn:
        return conn.execute(select(users.c.id).where(users.c.public_id == public_id)).scalar_one()


def add_items(conn, conversation_id: int, branch: str, texts: list[str], start: int = 1) -> list[str]:
    made = []
    for offset, text in enumerate(texts):
        public_id = ids.public_id("msg")
        conn.execute(insert(conversation_items).values(
            public_id=public_id, conversation_id=conversation_id, branch=branch, sequence_number=start + offset,
            type="message", role="user" if offset % 2 == 0 else "assistant",
            content=[{"type": "input_text" if offset % 2 == 0 else "output_text", "text": text}], status="completed"))
        made.append(public_id)
    return made


def populate(app, account) -> dict:
    """Something in every table an account owns, each carrying the account's own marker text."""
    marker = f"marker-{account.user_id}"
    account.patch("/v1/users/me/settings", json={"profile_settings": {"nick_name": marker},
                                                 "preferences": {"note": marker}})
    key = account.post("/auth/api-keys", json={"name": f"key {marker}"}).json
    # A conversation made through the API, chatted in (items + a usage record), then edited on a side branch.
    conversation = account.post("/v1/conversations", json={
        "title": f"title {marker}", "metadata": {"m": marker},
        "items": [{"type": "message", "role": "user", "content": f"first {marker}"}]}).json["id"]
    chat = account.post("/v1/chat/completions", json={
        "model": TEST_MODEL_ID, "conversation": conversation,
        "messages": [{"role": "user", "content": f"hello {marker}"}]})
    assert chat.status_code == 200, chat.json
    user_id = internal_id(app, account.user_id)
    with db(app).transaction() as conn:
        conversation_id = conn.execute(select(conversations.c.id)
                                       .where(conversations.c.public_id == conversation)).scalar_one()
        conn.execute(insert(conversation_branches).values(conversation_id=conversation_id, name="EDIT_1_1",
                                                          parent_branch="MAIN", description=marker))
        add_items(conn, conversation_id, "EDIT_1_1", [f"edited {marker}", f"answer {marker}"])
        # A project with a conversation of its own.
        project_public_id = ids.public_id("proj")
        project_id = conn.execute(insert(projects).values(
            public_id=project_public_id, user_id=user_id, name=f"project {marker}", instruction=marker)
            .returning(projects.c.id)).scalar_one()
        in_project = ids.public_id("conv")
        in_project_id = conn.execute(insert(conversations).values(
            public_id=in_project, user_id=user_id, title="in project", project_id=project_id)
            .returning(conversations.c.id)).scalar_one()
        add_items(conn, in_project_id, "MAIN", [f"q {marker}", f"a {marker}"])
        conn.execute(insert(usage_records).values(user_id=user_id, model="m/x", endpoint="chat.completions",
                                                  stream=False, status="completed", latency_ms=1.0,
                                                  conversation_id=in_project_id, project_id=project_id,
                                                  prompt_tokens=1, completion_tokens=1, total_tokens=2))
        # A soft-deleted conversation (still stored, so still exported and deleted with the account).
        deleted = ids.public_id("conv")
        deleted_id = conn.execute(insert(conversations).values(
            public_id=deleted, user_id=user_id, title="gone", deleted_at=dt.datetime.now(UTC))
            .returning(conversations.c.id)).scalar_one()
        add_items(conn, deleted_id, "MAIN", [f"old {marker}"])
        # Shares: a live one and a revoked one.
        for revoked in (None, dt.datetime.now(UTC)):
            conn.execute(insert(conversation_shares).values(
                public_id=ids.share_id(), slug=ids.share_slug(), conversation_id=conversation_id,
                owner_user_id=user_id, title=marker, revoked_at=revoked,
                snapshot={"title": marker, "items": [{"id": "msg_x", "content": [{"type": "text", "text": marker}]}]}))
        # Background work queued for the account (a function no sweep dispatches to).
        conn.execute(insert(jobs).values(public_id=ids.public_id("job"), function="test-only", kind="user-work",
                                         payload={"m": marker}, user_id=user_id, max_attempts=1))
        # An indexed document (file search) with one chunk.
        document_pk = conn.execute(insert(file_search_documents).values(
            user_id=user_id, document_id=f"doc {marker}", text_bytes=10, chunk_count=1, token_count=2)
            .returning(file_search_documents.c.id)).scalar_one()
        conn.execute(text("INSERT INTO file_search_chunks (document_pk, user_id, chunk_index, text, embedding) "
                          "VALUES (:pk, :user_id, 0, :text, array_fill(0.5, ARRAY[:dimension])::vector)"),
                     {"pk": document_pk, "user_id": user_id, "text": marker,
                      "dimension": int(os.environ.get("EMBEDDING_DIMENSION", "384"))})
        # A realtime (LiveKit) session: not exported (it holds no content), deleted with the account.
        now = dt.datetime.now(UTC)
        conn.execute(insert(realtime_sessions).values(
            public_id=ids.public_id("sess", 24), user_id=user_id, room_id=ids.public_id("room", 24), created_at=now,
            token_expires_at=now + dt.timedelta(days=1)))
    return {"marker": marker, "key": key, "conversation": conversation, "project": project_public_id,
            "in_project": in_project, "deleted": deleted}


def owned(app, public_id: str) -> dict[str, set]:
    """The primary keys of every row the account owns, per table."""
    with db(app).read() as conn:
        user_id = conn.execute(select(users.c.id).where(users.c.public_id == public_id)).scalar_one()
        conversation_ids = select(conversations.c.id).where(conversations.c.user_id == user_id)
        session_ids = select(auth_sessions.c.id).where(auth_sessions.c.user_id == user_id)

        def keys(query):
            return set(conn.execute(query).scalars().all())

        return {
            "users": {user_id},
            "auth_sessions": keys(session_ids),
            "refresh_tokens": keys(select(refresh_tokens.c.id).where(refresh_tokens.c.session_id.in_(session_ids))),
            "api_keys": keys(select(api_keys.c.id).where(api_keys.c.user_id == user_id)),
            "conversations": keys(conversation_ids),
            "conversation_items": keys(select(conversation_items.c.id)
                                       .where(conversation_items.c.conversation_id.in_(conversation_ids))),
            "conversation_branches": keys(select(conversation_branches.c.id)
                                          .where(conversation_branches.c.conversation_id.in_(conversation_ids))),
            "conversation_shares": keys(select(conversation_shares.c.id).where(
                (conversation_shares.c.owner_user_id == user_id)
                | conversation_shares.c.conversation_id.in_(conversation_ids))),
            "projects": keys(select(projects.c.id).where(projects.c.user_id == user_id)),
            "user_settings": keys(select(user_settings.c.id).where(user_settings.c.user_id == user_id)),
            "usage_records": keys(select(usage_records.c.id).where(usage_records.c.user_id == user_id)),
            "jobs": keys(select(jobs.c.id).where(jobs.c.user_id == user_id)),
            "file_search_documents": keys(select(file_search_documents.c.id)
                                          .where(file_search_documents.c.user_id == user_id)),
            "file_search_chunks": keys(select(file_search_chunks.c.id).where(file_search_chunks.c.user_id == user_id)),
            "realtime_sessions": keys(select(realtime_sessions.c.id).where(realtime_sessions.c.user_id == user_id)),
        }


# Tables that hold nothing of a user. A new table must be placed in one list or another.
# admin_mcp_tools is platform configuration (its updated_by names the admin who last changed a row).
UNOWNED_TABLES = {"oauth_states", "providers", "model_catalogs", "provider_models", "rate_limit_counters",
                  "admin_mcp_tools"}
# Kept when an account is deleted: the admin audit trail names actors and targets by id (never secrets) and must
# outlive the accounts it names.
RETAINED_TABLES = {"audit_logs"}


def test_every_table_is_classified():
    owned_tables = {"users", "auth_sessions", "refresh_tokens", "api_keys", "conversations", "conversation_items",
                    "conversation_branches", "conversation_shares", "projects", "user_settings", "usage_records",
                    "jobs", "file_search_documents", "file_search_chunks", "realtime_sessions"}
    assert set(metadata.tables) == owned_tables | UNOWNED_TABLES | RETAINED_TABLES


# Export ----------------------------------------------------------------------------------------------------------

def export_of(account, **kwargs) -> dict:
    response = account.get(EXPORT, **kwargs)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.headers["Content-Type"] == "application/json"
    assert response.headers["Content-Disposition"] == "attachment; filename=jan-export.json"
    assert response.headers["Cache-Control"] == "no-store"
    return json.loads(response.get_data(as_text=True))


def test_export_of_an_empty_guest(guest):
    body = export_of(guest)
    assert list(body) == ["object", "version", "exported_at", "account", "settings", "api_keys", "projects",
                          "conversations", "shares", "usage_records"]
    assert body["object"] == "export" and body["version"] == 1
    assert body["account"] == {
        "id": guest.user_id, "object": "user", "username": guest.body["username"], "email": None, "name": None,
        "role": "guest", "issuer": "jan-serverless", "subject": guest.user_id, "has_password": False,
        "created_at": body["account"]["created_at"], "updated_at": body["account"]["updated_at"]}
    # Settings are the defaults, and the export wrote no settings row.
    assert body["settings"]["created_at"] is None and body["settings"]["memory_config"]["max_user_items"] == 3
    assert body["api_keys"] == body["projects"] == body["conversations"] == body["shares"] == []
    assert body["usage_records"] == []
    assert guest.get("/llm" + EXPORT).status_code == 200


def test_export_holds_everything_the_caller_owns_and_nothing_else(app, user, new_user):
    mine, theirs = populate(app, user), populate(app, new_user())
    other_id = theirs["marker"].removeprefix("marker-")
    response = user.get(EXPORT)
    raw = response.get_data(as_text=True)
    body = json.loads(raw)

    # Nothing of the other account, anywhere in the document.
    for foreign in (theirs["marker"], other_id, theirs["conversation"], theirs["project"], theirs["in_project"],
                    theirs["deleted"], theirs["key"]["id"]):
        assert foreign not in raw
    # No secrets: no key secrets or hashes, no password hash, no tokens.
    with db(app).read() as conn:
        hashes = conn.execute(select(api_keys.c.key_hash)).scalars().all()
        password_hash = conn.execute(select(users.c.password_hash).where(users.c.public_id == user.user_id)).scalar()
    for secret in (mine["key"]["key"], *hashes, password_hash, user.token, user.refresh_token):
        assert secret not in raw
    assert "password_hash" not in raw and "key_hash" not in raw

    assert body["account"]["id"] == user.user_id and body["account"]["email"] == user.email
    assert body["account"]["has_password"] is True and body["account"]["role"] == "user"
    assert body["settings"] == user.get("/v1/users/me/settings").json
    assert body["api_keys"] == user.get("/auth/api-keys").json["items"]

    expected = owned(app, user.user_id)
    with db(app).read() as conn:
        conversation_rows = conn.execute(select(conversations.c.id, conversations.c.public_id)
                                         .where(conversations.c.id.in_(expected["conversations"]))).all()
        items_by_conversation = {}
        for row in conn.execute(select(conversations.c.public_id, conversation_items.c.public_id.label("item"))
                                .join(conversation_items, conversation_items.c.conversation_id == conversations.c.id)
                                .where(conversations.c.id.in_(expected["conversations"]))):
            items_by_conversation.setdefault(row.public_id, set()).add(row.item)
    assert {c["id"] for c in body["conversations"]} == {row.public_id for row in conversation_rows}
    assert {mine["conversation"], mine["in_project"], mine["deleted"]} <= {c["id"] for c in body["conversations"]}
    for conversation in body["conversations"]:
        assert {item["id"] for item in conversation["items"]} == items_by_conversation.get(conversation["id"], set())
        assert conversation["object"] == "conversation"
    by_id = {c["id"]: c for c in body["conversations"]}
    chatted = by_id[mine["conversation"]]
    assert {item["branch"] for item in chatted["items"]} == {"MAIN", "EDIT_1_1"}
    assert [b["name"] for b in chatted["branches"]] == ["EDIT_1_1"]
    main_texts = [part.get("text") for item in chatted["items"] if item["branch"] == "MAIN"
                  for part in item.get("content", [])]
    assert f"hello {mine['marker']}" in main_texts and f"echo: hello {mine['marker']}" in main_texts
    assert chatted["title"] == f"title {mine['marker']}" and chatted["metadata"]["m"] == mine["marker"]
    assert by_id[mine["in_project"]]["project_id"] == mine["project"]
    assert by_id[mine["deleted"]]["deleted_at"] is not None and by_id[mine["conversation"]]["deleted_at"] is None
    # Items of a branch are in order.
    edit = [item["sequence_number"] for item in chatted["items"] if item["branch"] == "EDIT_1_1"]
    assert edit == sorted(edit) and chatted["items"][0]["created_at"].endswith("Z")

    assert [p["id"] for p in body["projects"]] == [mine["project"]]
    assert body["projects"][0]["instruction"] == mine["marker"]
    assert len(body["shares"]) == 2 and {s["conversation_id"] for s in body["shares"]} == {mine["conversation"]}
    assert sorted(s["revoked_at"] is None for s in body["shares"]) == [False, True]
    assert all(s["snapshot"]["title"] == mine["marker"] for s in body["shares"])

    assert len(body["usage_records"]) == len(expected["usage_records"]) == 2
    chat_record = next(r for r in body["usage_records"] if r["model"] == TEST_MODEL_ID)
    assert chat_record["conversation_id"] == mine["conversation"] and chat_record["prompt_tokens"] > 0
    seeded = next(r for r in body["usage_records"] if r["model"] == "m/x")
    assert seeded["conversation_id"] == mine["in_project"] and seeded["project_id"] == mine["project"]


def test_export_with_an_api_key(user):
    key = user.post("/auth/api-keys", json={"name": "exporter"}).json["key"]
    response = user.client.get(EXPORT, headers={"X-API-Key": key})
    assert response.status_code == 200
    body = json.loads(response.get_data(as_text=True))
    assert body["account"]["id"] == user.user_id
    assert key not in response.get_data(as_text=True)


def test_a_large_export_streams_in_chunks_and_keeps_every_item_with_its_conversation(app, guest):
    """More conversations than one keyset page, each with items on two branches; the body arrives in pieces."""
    user_id = internal_id(app, guest.user_id)
    expected: dict[str, list[str]] = {}
    filler = "x" * 1000
    with db(app).transaction() as conn:
        for number in range(450):
            public_id = ids.public_id("conv")
            conversation_id = conn.execute(insert(conversations).values(
                public_id=public_id, user_id=user_id, title=f"c{number}").returning(conversations.c.id)).scalar_one()
            made = add_items(conn, conversation_id, "MAIN", [f"{public_id} {filler}"] * 3)
            if number % 7 == 0:
                made += add_items(conn, conversation_id, "SIDE", [f"{public_id} side"])
            expected[public_id] = made
    response = guest.client.get(EXPORT, headers=guest.headers, buffered=False)
    assert response.status_code == 200
    chunks = list(response.response)
    response.close()
    assert len(chunks) > 10
    assert max(len(chunk) for chunk in chunks) < 256 * 1024
    body = json.loads("".join(c.decode() if isinstance(c, bytes) else c for c in chunks))
    assert [c["id"] for c in body["conversations"]] == list(expected)  # oldest first
    for conversation in body["conversations"]:
        # MAIN before SIDE, each in sequence order
        assert [item["id"] for item in conversation["items"]] == expected[conversation["id"]]
        assert all(conversation["id"] in item["content"][0]["text"] for item in conversation["items"])


def test_export_needs_credentials(client, snapshot):
    before = snapshot()
    assert_error(client.get(EXPORT), 401, "authentication required")
    assert_error(client.get(EXPORT, headers={"Authorization": "Bearer nope"}), 401, "invalid token")
    assert snapshot() == before


# Delete ------------------------------------------------------------------------------------------------------------

def pk_rows(table_rows) -> dict:
    return {row[0]: row for row in table_rows}


def test_delete_removes_every_row_of_the_account_and_nothing_else(app, user, new_user, snapshot):
    populate(app, user)
    other = new_user()
    theirs = populate(app, other)
    mine = owned(app, user.user_id)
    for table, keys in mine.items():
        assert keys, f"the test account should own rows in {table}"
    before = snapshot()
    response = user.delete("/v1/users/me")
    assert response.status_code == 200
    assert response.json == {"id": user.user_id, "object": "user.deleted", "deleted": True}
    assert "refresh_token=;" in response.headers["Set-Cookie"]
    after = snapshot()
    for table in metadata.tables:
        gone = mine.get(table, set())
        expected = [row for row in before[table] if row[0] not in gone]
        assert after[table] == expected, table
    # The other account is whole and works.
    assert other.get(f"/v1/conversations/{theirs['conversation']}").status_code == 200
    assert other.client.get("/v1/users/me", headers={"X-API-Key": theirs["key"]["key"]}).status_code == 200
    assert owned(app, other.user_id)["usage_records"]


def test_after_delete_no_credential_of_the_account_works(app, user, snapshot):
    key = user.post("/auth/api-keys", json={"name": "k"}).json["key"]
    second_login = user.client.post("/auth/login", json={"email": user.email, "password": user.password}).json
    assert user.delete("/v1/users/me").status_code == 200
    before = snapshot()
    for path in ("/auth/me", "/v1/users/me", "/v1/users/me/settings", EXPORT, "/v1/usage/me"):
        assert_error(user.get(path), 401, "token revoked")
        assert_error(user.client.get(path, headers={"Authorization": f"Bearer {second_login['access_token']}"}), 401,
                     "token revoked")
        assert_error(user.client.get(path, headers={"X-API-Key": key}), 401, "invalid api key")
        assert_error(user.client.get(path, headers={"Authorization": f"Bearer {key}"}), 401, "invalid api key")
    assert_error(user.delete("/v1/users/me"), 401, "token revoked")
    for refresh in (user.refresh_token, second_login["refresh_token"]):
        assert_error(user.client.post("/auth/refresh-token", json={"refresh_token": refresh}), 401,
                     "invalid refresh token")
    assert_error(user.client.post("/auth/validate-api-key", json={"api_key": key}), 401, "invalid api key")
    assert_error(user.client.post("/auth/login", json={"email": user.email, "password": user.password}), 401,
                 "invalid email or password")
    # Only the login attempt counters moved.
    assert {**snapshot(), "rate_limit_counters": None} == {**before, "rate_limit_counters": None}
    # The address is free for a new account, which starts empty.
    newcomer = user.client.post("/auth/guest-login").json
    upgraded = user.client.post("/auth/upgrade", headers={"Authorization": f"Bearer {newcomer['access_token']}"},
                                json={"email": user.email, "password": "another long password"})
    assert upgraded.status_code == 200
    assert newcomer["user_id"] != user.user_id


def test_a_guest_can_delete_itself_with_an_api_key(app, guest):
    key = guest.post("/auth/api-keys", json={"name": "k"}).json["key"]
    guest.post("/v1/conversations", json={"title": "t"})
    response = guest.client.delete("/llm/v1/users/me", headers={"X-API-Key": key})
    assert response.status_code == 200 and response.json["id"] == guest.user_id
    assert_error(guest.get("/v1/users/me"), 401, "token revoked")
    with db(app).read() as conn:
        assert conn.execute(select(users.c.id).where(users.c.public_id == guest.user_id)).first() is None


def test_delete_needs_credentials(client, snapshot):
    before = snapshot()
    assert_error(client.delete("/v1/users/me"), 401, "authentication required")
    assert_error(client.delete("/v1/users/me", headers={"X-User-ID": "x"}), 401, "authentication required")
    assert snapshot() == before


def remaining(app, rows_by_table: dict[str, set]) -> dict[str, int]:
    """How many of these rows (by primary key) still exist, per table."""
    with db(app).read() as conn:
        return {name: len(conn.execute(select(metadata.tables[name].c.id)
                                       .where(metadata.tables[name].c.id.in_(keys))).all())
                for name, keys in rows_by_table.items()}


def test_two_parallel_deletes_of_one_account(app, user):
    populate(app, user)
    mine = owned(app, user.user_id)
    barrier = threading.Barrier(2)
    results = []

    def remove():
        client = app.test_client()
        barrier.wait()
        response = client.delete("/v1/users/me", headers=user.headers)
        results.append((response.status_code, response.json))

    threads = [threading.Thread(target=remove) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    statuses = sorted(status for status, _ in results)
    assert statuses == [200, 401], results  # the second finds the account gone, before or after its lock
    assert [body for status, body in results if status == 401][0]["message"] == "token revoked"
    assert remaining(app, mine) == dict.fromkeys(mine, 0)


# The last admin ----------------------------------------------------------------------------------------------------

@pytest.fixture
def only_admins(app):
    """Make the given accounts the only admins for the test; the others are demoted and restored afterwards."""
    demoted = []

    def keep(*accounts):
        keep_ids = [account.user_id for account in accounts]
        with db(app).transaction() as conn:
            demoted.extend(conn.execute(update(users).where(users.c.role == "admin",
                                                            users.c.public_id.not_in(keep_ids))
                                        .values(role="user").returning(users.c.id)).scalars().all())

    yield keep
    if demoted:
        with db(app).transaction() as conn:
            conn.execute(update(users).where(users.c.id.in_(demoted)).values(role="admin"))


def test_the_last_admin_cannot_delete_itself(app, admin, new_user, only_admins, snapshot):
    only_admins(admin)
    before = snapshot()
    assert_error(admin.delete("/v1/users/me"), 409,
                 "the last admin account cannot be deleted; make another account admin first", code="last_admin")
    assert snapshot() == before
    second = new_user()
    with db(app).transaction() as conn:
        conn.execute(update(users).where(users.c.public_id == second.user_id).values(role="admin"))
    assert admin.delete("/v1/users/me").status_code == 200
    assert_error(second.delete("/v1/users/me"), 409,
                 "the last admin account cannot be deleted; make another account admin first", code="last_admin")


def test_two_last_admins_deleting_at_once_leave_one(app, new_user, only_admins):
    first, second = new_user(), new_user()
    with db(app).transaction() as conn:
        conn.execute(update(users).where(users.c.public_id.in_([first.user_id, second.user_id])).values(role="admin"))
    only_admins(first, second)
    barrier = threading.Barrier(2)
    results = {}

    def remove(account):
        client = app.test_client()
        barrier.wait()
        results[account.user_id] = client.delete("/v1/users/me", headers=account.headers).status_code

    threads = [threading.Thread(target=remove, args=(account,)) for account in (first, second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results.values()) == [200, 409]
    with db(app).read() as conn:
        admins = conn.execute(select(users.c.public_id).where(users.c.role == "admin",
                                                              users.c.deleted_at.is_(None))).scalars().all()
    assert len(admins) == 1 and admins[0] in results


# External identities -----------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def issuer():
    with OidcIssuer() as double:
        yield double


@pytest.fixture(scope="module")
def external_app(llm_env, issuer):
    from functions.llm.app import create_app
    from functions.llm.settings import LlmSettings
    from shared.settings import from_env

    return create_app(from_env(LlmSettings, environ=llm_env, issuer=issuer.issuer, jwks_url=issuer.jwks_url,
                               audience=issuer.audience))


def test_a_deleted_external_identity_does_not_come_back_with_its_old_token(external_app, issuer):
    client = external_app.test_client()
    subject = f"kc-{uuid.uuid4()}"
    token = issuer.mint(subject, email=f"{subject}@example.com", email_verified=True)
    headers = {"Authorization": f"Bearer {token}"}
    me = client.get("/v1/users/me", headers=headers).json
    conversation = client.post("/v1/conversations", headers=headers, json={"title": "t"}).json["id"]
    response = client.delete("/v1/users/me", headers=headers)
    assert response.status_code == 200 and response.json["id"] == me["id"]
    assert_error(client.get("/v1/users/me", headers=headers), 401, "token revoked")
    assert_error(client.get(f"/v1/conversations/{conversation}", headers=headers), 401, "token revoked")
    with db(external_app).read() as conn:
        rows = conn.execute(select(users).where(users.c.subject == subject)).all()
        left = conn.execute(select(conversations.c.id).where(conversations.c.public_id == conversation)).first()
    # Only a tombstone is left: no personal data, not the old public id, deleted.
    (tombstone,) = rows
    assert tombstone.public_id != me["id"] and tombstone.deleted_at is not None
    assert tombstone.email is None and tombstone.username is None and tombstone.name is None
    assert left is None
