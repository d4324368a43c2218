"""Sharing through HTTP against PostgreSQL: Jan's share and public-share shapes, the sanitised frozen snapshot (no
user ids, e-mail addresses, keys, tool arguments or tool results), item shares, re-share and revoke, the
sharing switch, isolation (another user's conversation or share is a 404 like a missing one), the public read
(400 / 410 / 200 + cache header, view counting) and its per-client rate limit shared by every pod."""
from __future__ import annotations

import json
import re
import time
import uuid

import pytest
from sqlalchemy import insert, select, update

from shared import ids
from shared.errors import ERROR_TYPES
from shared.domain.conversations.tables import conversation_items, conversation_shares, conversations
from shared.domain.conversations.conversations import revoke_for_conversations

SHARE_ID = re.compile(r"shr_[0-9A-Za-z]{16}")
SLUG = re.compile(r"[0-9A-Za-z]{22}")
DISABLED = "conversation sharing is not enabled"
API_KEY = "sk_live_" + "0123456789abcdef" * 3


def assert_error(response, status: int, message: str, *, code: str | None = None, param: str | None = None):
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.json == {
        "error": {"message": message, "type": ERROR_TYPES[status], "param": param, "code": code},
        "message": message,
        "request_id": response.headers["X-Request-Id"],
    }


def conversation(account, items=None, **body) -> dict:
    if items is None:
        items = [{"role": "user", "content": "What is a haiku?"},
                 {"role": "assistant", "content": "A short poem."}]
    response = account.post("/v1/conversations", json={"items": items, **body})
    assert response.status_code == 200, response.json
    return response.json


def share(account, conversation_id: str, prefix: str = "", query: dict | None = None, **body) -> dict:
    response = account.post(f"{prefix}/v1/conversations/{conversation_id}/share", json={"scope": "conversation", **body},
                            query_string=query or {})
    assert response.status_code == 201, response.json
    return response.json


def items_of(account, conversation_id: str) -> list[dict]:
    return account.get(f"/v1/conversations/{conversation_id}/items?order=asc").json["data"]


def public(client, slug: str, method: str = "GET", address: str | None = None, **kwargs):
    """A public read from its own client address, so tests never share a rate-limit counter."""
    address = address or f"10.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250}"
    return client.open(f"/v1/public/shares/{slug}", method=method, environ_base={"REMOTE_ADDR": address}, **kwargs)


def without_counters(state: dict) -> dict:
    """A public read is counted even when rejected: the one table it may touch."""
    return {name: rows for name, rows in state.items() if name != "rate_limit_counters"}


@pytest.fixture
def build_app(llm_env):
    """Extra llm apps (other settings, or a second "pod") on the same database."""
    from functions.llm.app import create_app
    from functions.llm.settings import LlmSettings
    from shared.settings import from_env

    built = []

    def build(**settings):
        app = create_app(from_env(LlmSettings, environ=llm_env, **settings))
        built.append(app)
        return app

    yield build
    for app in built:
        app.extensions["jan"].db.engine.dispose()


# Create ---------------------------------------------------------------------------------------------------

def test_create_returns_201_and_jans_share_shape(guest):
    conv = conversation(guest, title="Poetry")
    body = share(guest, conv["id"])
    assert SHARE_ID.fullmatch(body["id"]) and SLUG.fullmatch(body["slug"])
    assert isinstance(body.pop("created_at"), int) and isinstance(body.pop("updated_at"), int)
    assert body == {
        "id": body["id"], "object": "share", "slug": body["slug"],
        "share_url": f"http://localhost/v1/public/shares/{body['slug']}", "title": "Poetry",
        "visibility": "unlisted", "view_count": 0, "snapshot_version": 1,
        "share_options": {"include_images": False, "include_context_messages": False},
        "scope": "conversation", "conversation_id": conv["id"],
    }


def test_share_url_uses_the_request_host_or_the_configured_base(guest, build_app):
    conv = conversation(guest)
    body = guest.post(f"/v1/conversations/{conv['id']}/share", json={"scope": "conversation"},
                      base_url="https://chat.example.org").json
    assert body["share_url"] == f"https://chat.example.org/v1/public/shares/{body['slug']}"
    other = build_app(public_base_url="https://share.example.com/")
    response = other.test_client().post(f"/v1/conversations/{conv['id']}/share", json={"scope": "conversation"},
                                        headers=guest.headers)
    assert response.json["share_url"] == f"https://share.example.com/v1/public/shares/{response.json['slug']}"


def test_management_routes_are_also_served_under_llm_but_the_public_read_is_root_only(guest, client):
    conv = conversation(guest)
    body = share(guest, conv["id"], prefix="/llm")
    assert guest.get("/llm/v1/shares").json["data"][0]["id"] == body["id"]
    assert public(client, body["slug"]).status_code == 200
    assert_error(client.get(f"/llm/v1/public/shares/{body['slug']}"), 404, "not found")


@pytest.mark.parametrize("requested, conversation_title, first_user, expected", [
    ("Chosen", "Conversation title", "question", "Chosen"),
    (None, "Conversation title", "question", "Conversation title"),
    (None, None, "short question", "short question"),
    (None, None, "q" * 60, "q" * 50 + "..."),
    (None, None, None, "Untitled Conversation"),
])
def test_title_as_jan_chooses_it(guest, client, requested, conversation_title, first_user, expected):
    items = ([{"role": "user", "content": first_user}] if first_user else [{"role": "assistant", "content": "hi"}]) \
        + [{"role": "assistant", "content": "answer"}]
    conv = conversation(guest, items=items, **({"title": conversation_title} if conversation_title else {}))
    body = share(guest, conv["id"], **({"title": requested} if requested else {}))
    assert body["title"] == expected
    assert public(client, body["slug"]).json["snapshot"]["title"] == expected


def test_fewer_than_two_items_is_400_and_stores_nothing(guest, snapshot):
    empty = conversation(guest, items=[])
    single = conversation(guest, items=[{"role": "user", "content": "alone"}])
    before = snapshot()
    for conv in (empty, single):
        assert_error(guest.post(f"/v1/conversations/{conv['id']}/share", json={"scope": "conversation"}), 400,
                     "conversation must have at least 2 items to share")
    assert snapshot() == before


@pytest.mark.parametrize("body, message, param", [
    ({}, "scope is required", "scope"),
    ({"scope": None}, "scope is required", "scope"),
    ({"scope": "everything"}, "scope must be 'conversation' or 'item'", "scope"),
    ({"scope": 1}, "scope must be 'conversation' or 'item'", "scope"),
    ({"scope": "item"}, "item_id is required when scope is 'item'", "item_id"),
    ({"scope": "item", "item_id": ""}, "item_id is required when scope is 'item'", "item_id"),
    ({"scope": "item", "item_id": 5}, "item_id must be a string", "item_id"),
    ({"scope": "conversation", "title": "t" * 257}, "title must be at most 256 characters", "title"),
    ({"scope": "conversation", "title": 3}, "title must be a string", "title"),
    ({"scope": "conversation", "include_images": "yes"}, "include_images must be a boolean", "include_images"),
    ({"scope": "conversation", "include_context_messages": 1}, "include_context_messages must be a boolean",
     "include_context_messages"),
    ({"scope": "conversation", "branch": "b" * 65}, "branch is not a valid branch name", "branch"),
    ({"scope": "conversation", "branch": 7}, "branch must be a string", "branch"),
])
def test_invalid_share_body_is_400_and_stores_nothing(guest, snapshot, body, message, param):
    conv = conversation(guest)
    before = snapshot()
    assert_error(guest.post(f"/v1/conversations/{conv['id']}/share", json=body), 400, message, param=param)
    assert snapshot() == before


@pytest.mark.parametrize("raw, message", [
    ("", "request body must be a JSON object"),
    ("{", "invalid JSON in request body"),
    ('["scope"]', "request body must be a JSON object"),
])
def test_malformed_share_body_is_400(guest, snapshot, raw, message):
    conv = conversation(guest)
    before = snapshot()
    assert_error(guest.post(f"/v1/conversations/{conv['id']}/share", data=raw, content_type="application/json"),
                 400, message)
    assert snapshot() == before


def test_snapshot_over_10_mib_is_400_and_stores_nothing(guest, app, snapshot):
    conv = conversation(guest)
    big = "x" * (4 * 1024 * 1024)
    with app.extensions["jan"].db.transaction() as conn:  # set-up: bigger than any request body may be
        internal = conn.execute(select(conversations.c.id).where(conversations.c.public_id == conv["id"])).scalar()
        conn.execute(insert(conversation_items), [
            {"public_id": ids.public_id("msg"), "conversation_id": internal, "branch": "MAIN",
             "sequence_number": 10 + n, "type": "message", "role": "assistant", "status": "completed",
             "content": [{"type": "output_text", "text": big, "annotations": []}]} for n in range(3)])
    before = snapshot()
    response = guest.post(f"/v1/conversations/{conv['id']}/share", json={"scope": "conversation"})
    assert response.status_code == 400
    assert re.fullmatch(r"snapshot size \(\d+ bytes\) exceeds maximum allowed size \(10485760 bytes\)",
                        response.json["message"])
    assert snapshot() == before


# The snapshot ---------------------------------------------------------------------------------------------

def test_public_snapshot_is_sanitised(user, client):
    other_email = "friend@example.org"
    conv = conversation(user, title=f"Notes for {user.email}", metadata={"contact": user.email, "team": other_email},
                        items=[
                            {"role": "system", "content": "internal system prompt"},
                            {"role": "user", "content": f"I am {user.email}, my key is {API_KEY}; cc {other_email}"},
                            {"type": "function_call", "call_id": "call_1", "name": "lookup",
                             "arguments": json.dumps({"api_key": API_KEY, "query": "weather"})},
                            {"type": "function_call_output", "call_id": "call_1",
                             "output": "token=secret-tool-output"},
                            {"role": "assistant", "content": "Use `Authorization: Bearer abcdefghijklmnop` and "
                                                             "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.sig"},
                        ])
    created = share(user, conv["id"])
    response = public(client, created["slug"])
    assert response.status_code == 200
    text = response.get_data(as_text=True)
    for secret in (user.email, other_email, API_KEY, "sk_live", user.user_id, conv["id"], "internal system prompt",
                   "secret-tool-output", "api_key", "weather", "abcdefghijklmnop", "eyJhbGciOiJIUzI1NiJ9",
                   "contact", "team"):
        assert secret not in text, secret
    snapshot = response.json["snapshot"]
    assert snapshot["title"] == "Notes for [redacted]"
    assert [(item["type"], item["role"]) for item in snapshot["items"]] == [
        ("message", "user"), ("function_call", "assistant"), ("message", "assistant")]
    assert snapshot["items"][0]["content"] == [
        {"type": "input_text", "input_text": "I am [redacted], my key is [redacted]; cc [redacted]"}]
    assert snapshot["items"][1]["content"] == [
        {"type": "tool_calls", "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "lookup"}}]}]
    assert snapshot["items"][2]["content"] == [
        {"type": "output_text", "output_text": "Use `Authorization: Bearer [redacted]` and [redacted]"}]


def test_public_read_shape_and_cache_header(guest, client):
    items = [{"role": "user", "content": "hello"}, {"role": "assistant", "content": "hi there"}]
    conv = conversation(guest, items=items, title="Greeting", metadata={"model": "scripted/test-model"})
    created = share(guest, conv["id"])
    response = public(client, created["slug"])
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "public, max-age=300"
    body = response.json
    stored = items_of(guest, conv["id"])
    assert isinstance(body.pop("created_at"), int)
    snapshot = body.pop("snapshot")
    assert body == {"object": "public_share", "slug": created["slug"], "title": "Greeting"}
    assert snapshot == {
        "title": "Greeting", "model_name": "scripted/test-model", "created_at": snapshot["created_at"],
        "items": [
            {"id": stored[0]["id"], "type": "message", "role": "user",
             "content": [{"type": "input_text", "input_text": "hello"}], "created_at": snapshot["items"][0]["created_at"]},
            {"id": stored[1]["id"], "type": "message", "role": "assistant",
             "content": [{"type": "output_text", "output_text": "hi there"}],
             "created_at": snapshot["items"][1]["created_at"]},
        ]}
    assert all(isinstance(item["created_at"], int) for item in snapshot["items"])


@pytest.mark.parametrize("part, published", [
    ({"type": "output_text", "text": "cited", "annotations": [
        {"type": "url_citation", "url": "https://example.com/a", "start_index": 0, "end_index": 5, "title": "A"},
        {"type": "internal_note", "secret": "x"}]},
     {"type": "output_text", "output_text": "cited", "annotations": [
         {"type": "url_citation", "title": "A", "url": "https://example.com/a", "start_index": 0, "end_index": 5}]}),
    ({"type": "reasoning_text", "text": "thinking about f@x.io"},
     {"type": "reasoning_text", "reasoning_text": "thinking about [redacted]"}),
    ({"type": "tool_calls", "tool_calls": [{"id": "c1", "type": "function",
                                            "function": {"name": "search", "arguments": '{"q": "private"}'}}]},
     {"type": "tool_calls", "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "search"}}]}),
    ({"type": "mcp_call", "mcp_call": "tool output"}, None),
    ({"type": "tool_result", "tool_result": "tool output"}, None),
    ({"type": "input_audio", "input_audio": {"data": "AAAA"}}, None),
    ({"type": "refusal", "text": "no"}, None),
    ({"type": "input_image", "image_url": "https://img.example/x.png"}, None),  # without include_images
    ("not a part", None),
])
def test_snapshot_content_allow_list(part, published):
    from functions.llm.shares.snapshot import make_redactor, snapshot_content

    assert snapshot_content(part, include_images=False, redact=make_redactor(None)) == published


def test_the_snapshot_is_frozen(guest, client):
    conv = conversation(guest)
    created = share(guest, conv["id"])
    guest.post(f"/v1/conversations/{conv['id']}/items", json={"items": [{"role": "user", "content": "later"}]})
    assert len(public(client, created["slug"]).json["snapshot"]["items"]) == 2


def test_images_only_with_include_images(guest, client):
    items = [{"role": "user", "content": [{"type": "input_text", "text": "look"},
                                          {"type": "input_image", "image_url": "https://img.example/cat.png",
                                           "detail": "low"}]},
             {"role": "assistant", "content": "a cat"}]
    conv = conversation(guest, items=items)
    without = public(client, share(guest, conv["id"])["slug"]).json["snapshot"]["items"][0]["content"]
    assert without == [{"type": "input_text", "input_text": "look"}]
    created = share(guest, conv["id"], include_images=True)
    assert created["share_options"]["include_images"] is True
    with_images = public(client, created["slug"]).json["snapshot"]["items"][0]["content"]
    assert with_images[1] == {"type": "image", "image": {"url": "https://img.example/cat.png", "detail": "low"}}


def test_the_branch_query_parameter_wins_over_the_body(guest, app, client):
    conv = conversation(guest)
    with app.extensions["jan"].db.transaction() as conn:  # set-up: a second branch with its own items
        internal = conn.execute(select(conversations.c.id).where(conversations.c.public_id == conv["id"])).scalar()
        conn.execute(insert(conversation_items), [
            {"public_id": ids.public_id("msg"), "conversation_id": internal, "branch": "ALT", "sequence_number": n,
             "type": "message", "role": role, "status": "completed",
             "content": [{"type": "input_text" if role == "user" else "output_text", "text": f"alt {n}"}]}
            for n, role in ((1, "user"), (2, "assistant"), (3, "user"))])

    def texts(created):
        return [c[c["type"]] for item in public(client, created["slug"]).json["snapshot"]["items"]
                for c in item["content"]]

    assert texts(share(guest, conv["id"], branch="alt")) == ["alt 1", "alt 2", "alt 3"]
    assert texts(share(guest, conv["id"], branch="ALT", query={"branch": "main"})) == ["What is a haiku?",
                                                                                     "A short poem."]
    assert_error(guest.post(f"/v1/conversations/{conv['id']}/share", json={"scope": "conversation"},
                            query_string={"branch": "NOPE"}), 400, "conversation must have at least 2 items to share")


# Item shares ----------------------------------------------------------------------------------------------

@pytest.fixture
def dialogue(guest):
    conv = conversation(guest, items=[
        {"role": "user", "content": "q1"}, {"role": "assistant", "content": "a1"},
        {"role": "user", "content": "q2"}, {"role": "assistant", "content": "a2"},
        {"role": "assistant", "content": "a3", "status": "incomplete"}])
    return conv, items_of(guest, conv["id"])


def snapshot_texts(client, slug):
    return [item["content"][0].get("input_text") or item["content"][0].get("output_text")
            for item in public(client, slug).json["snapshot"]["items"]]


def test_item_share_publishes_one_assistant_message(guest, client, dialogue):
    conv, stored = dialogue
    created = share(guest, conv["id"], scope="item", item_id=stored[3]["id"])
    assert created["item_id"] == stored[3]["id"] and created["scope"] == "item"
    assert snapshot_texts(client, created["slug"]) == ["a2"]


def test_item_share_with_context_adds_the_user_message_before_it(guest, client, dialogue):
    conv, stored = dialogue
    created = share(guest, conv["id"], scope="item", item_id=stored[3]["id"], include_context_messages=True)
    assert created["share_options"]["include_context_messages"] is True
    assert snapshot_texts(client, created["slug"]) == ["q2", "a2"]


def test_item_id_is_ignored_for_a_conversation_share(guest, dialogue):
    conv, stored = dialogue
    assert "item_id" not in share(guest, conv["id"], item_id=stored[0]["id"])


@pytest.mark.parametrize("index, status, message", [
    (0, 400, "only assistant messages can be shared individually"),
    (4, 400, "only completed messages can be shared"),
    (None, 404, "item not found in conversation"),
])
def test_item_share_refusals_store_nothing(guest, snapshot, dialogue, index, status, message):
    conv, stored = dialogue
    item_id = stored[index]["id"] if index is not None else "msg_zzzzzzzzzzzzzzzz"
    before = snapshot()
    assert_error(guest.post(f"/v1/conversations/{conv['id']}/share", json={"scope": "item", "item_id": item_id}),
                 status, message, param="item_id")
    assert snapshot() == before


# Re-share, list, revoke -----------------------------------------------------------------------------------

def test_resharing_revokes_the_earlier_share(guest, client):
    conv = conversation(guest)
    first = share(guest, conv["id"])
    second = share(guest, conv["id"])
    assert first["slug"] != second["slug"]
    assert public(client, first["slug"]).status_code == 410
    assert public(client, second["slug"]).status_code == 200
    listed = guest.get(f"/v1/conversations/{conv['id']}/shares").json
    assert listed["object"] == "list"
    assert [s["id"] for s in listed["data"]] == [second["id"], first["id"]]
    assert "revoked_at" not in listed["data"][0] and isinstance(listed["data"][1]["revoked_at"], int)
    live = guest.get(f"/v1/conversations/{conv['id']}/shares?include_revoked=false").json["data"]
    assert [s["id"] for s in live] == [second["id"]]


def test_parallel_shares_of_one_conversation_leave_one_live_share(guest, app):
    import threading

    conv = conversation(guest)
    barrier = threading.Barrier(4)
    statuses = []

    def post():
        client = app.test_client()
        barrier.wait()
        statuses.append(client.post(f"/v1/conversations/{conv['id']}/share", json={"scope": "conversation"},
                                    headers=guest.headers).status_code)

    threads = [threading.Thread(target=post) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert statuses == [201] * 4
    assert len(guest.get(f"/v1/conversations/{conv['id']}/shares?include_revoked=false").json["data"]) == 1


def test_views_are_counted_on_get_but_not_on_head(guest, client):
    created = share(guest, conversation(guest)["id"])
    head = public(client, created["slug"], method="HEAD")
    assert head.status_code == 200 and head.get_data() == b""
    for _ in range(2):
        public(client, created["slug"])
    listed = guest.get("/v1/shares").json["data"][0]
    assert listed["id"] == created["id"]
    assert listed["view_count"] == 2 and isinstance(listed["last_viewed_at"], int)


def test_user_share_list_pages_and_filters(new_guest):
    account = new_guest()
    created = [share(account, conversation(account)["id"])["id"] for _ in range(3)]
    body = account.get("/v1/shares").json
    assert [s["id"] for s in body["data"]] == list(reversed(created))
    assert (body["first_id"], body["last_id"], body["has_more"]) == (created[2], created[0], False)
    page = account.get("/v1/shares?limit=2").json
    assert page["has_more"] is True
    rest = account.get("/v1/shares", query_string={"after": page["last_id"]}).json
    assert [s["id"] for s in rest["data"]] == [created[0]]
    account.delete(f"/v1/shares/{created[1]}")
    assert [s["id"] for s in account.get("/v1/shares?include_revoked=false").json["data"]] == [created[2], created[0]]
    assert len(account.get("/v1/shares?include_revoked=true").json["data"]) == 3


@pytest.mark.parametrize("query, message, param", [
    ({"include_revoked": "maybe"}, "include_revoked must be true or false", "include_revoked"),
    ({"limit": "0"}, "limit must be between 1 and 100", "limit"),
    ({"order": "sideways"}, "order must be 'asc' or 'desc'", "order"),
    ({"after": "shr_nope"}, "after does not name one of these shares", "after"),
])
def test_bad_list_queries_are_400(guest, query, message, param):
    conv = conversation(guest)
    for path in ("/v1/shares", f"/v1/conversations/{conv['id']}/shares"):
        assert_error(guest.get(path, query_string=query), 400, message, param=param)


def test_revoke_by_either_path_then_400_when_already_revoked(guest, client, snapshot):
    conv = conversation(guest)
    first = share(guest, conv["id"])
    response = guest.delete(f"/v1/conversations/{conv['id']}/shares/{first['id']}")
    assert response.status_code == 200
    assert response.json == {"id": first["id"], "object": "share.deleted", "deleted": True}
    assert public(client, first["slug"]).status_code == 410
    second = share(guest, conv["id"])
    assert guest.delete(f"/v1/shares/{second['id']}").json == {"id": second["id"], "object": "share.deleted",
                                                               "deleted": True}
    before = snapshot()
    assert_error(guest.delete(f"/v1/shares/{second['id']}"), 400, "share is already revoked")
    assert_error(guest.delete(f"/v1/conversations/{conv['id']}/shares/{first['id']}"), 400,
                 "share is already revoked")
    assert snapshot() == before


def test_revoking_through_another_conversation_is_404(guest, snapshot):
    created = share(guest, conversation(guest)["id"])
    elsewhere = conversation(guest)
    before = snapshot()
    assert_error(guest.delete(f"/v1/conversations/{elsewhere['id']}/shares/{created['id']}"), 404, "share not found")
    assert snapshot() == before


def test_revoke_for_conversations_revokes_live_shares_in_the_callers_transaction(guest, app, client):
    created = [share(guest, conversation(guest)["id"]) for _ in range(2)]
    db = app.extensions["jan"].db
    with db.read() as conn:
        internal = conn.execute(select(conversation_shares.c.conversation_id).where(
            conversation_shares.c.public_id.in_([s["id"] for s in created]))).scalars().all()
    with db.transaction() as conn:
        assert revoke_for_conversations(conn, internal) == 2
        assert revoke_for_conversations(conn, internal) == 0
        assert revoke_for_conversations(conn, []) == 0
    assert all(public(client, s["slug"]).status_code == 410 for s in created)
    try:  # rolled back with the caller's transaction
        with db.transaction() as conn:
            conn.execute(update(conversation_shares).where(conversation_shares.c.public_id == created[0]["id"])
                         .values(revoked_at=None))
            raise RuntimeError("abort")
    except RuntimeError:
        pass
    assert public(client, created[0]["slug"]).status_code == 410


def test_a_deleted_conversations_shares_are_gone_everywhere(guest, app, client, snapshot):
    conv = conversation(guest)
    created = share(guest, conv["id"])
    with app.extensions["jan"].db.transaction() as conn:  # soft-deleted without revoking: still never served
        conn.execute(update(conversations).where(conversations.c.public_id == conv["id"])
                     .values(deleted_at=conversations.c.created_at))
    before = snapshot()
    assert_error(public(client, created["slug"]), 410, "This share has been revoked", code="share_revoked")
    assert_error(guest.get(f"/v1/conversations/{conv['id']}/shares"), 404, "conversation not found")
    assert_error(guest.delete(f"/v1/shares/{created['id']}"), 404, "share not found")
    assert created["id"] not in [s["id"] for s in guest.get("/v1/shares").json["data"]]
    assert without_counters(snapshot()) == without_counters(before)


# Isolation --------------------------------------------------------------------------------------------------

def test_another_users_conversation_and_shares_answer_404(guest, new_guest, snapshot):
    conv = conversation(guest)
    created = share(guest, conv["id"])
    other = new_guest()
    other_key = other.post("/auth/api-keys", json={"name": "k"}).json["key"]
    mine = share(other, conversation(other)["id"])
    other.client.get("/v1/shares", headers={"X-API-Key": other_key})  # the key's first use records last_used_at
    before = snapshot()
    for headers in (other.headers, {"X-API-Key": other_key}):
        send = other.client.open

        def call(method, path, **kwargs):
            return send(path, method=method, headers=headers, **kwargs)

        for conversation_id in (conv["id"], "conv_zzzzzzzzzzzzzzzz"):
            assert_error(call("POST", f"/v1/conversations/{conversation_id}/share", json={"scope": "conversation"}),
                         404, "conversation not found")
            assert_error(call("GET", f"/v1/conversations/{conversation_id}/shares"), 404, "conversation not found")
        for share_id in (created["id"], "shr_zzzzzzzzzzzzzzzz"):
            assert_error(call("DELETE", f"/v1/shares/{share_id}"), 404, "share not found")
            assert_error(call("DELETE", f"/v1/conversations/{conv['id']}/shares/{share_id}"), 404, "share not found")
        assert [s["id"] for s in call("GET", "/v1/shares").json["data"]] == [mine["id"]]
    assert snapshot() == before
    assert guest.get("/v1/shares").json["data"][0]["id"] == created["id"]


# The sharing switch --------------------------------------------------------------------------------------------

def test_when_sharing_is_off_management_is_403_and_public_reads_still_work(guest, build_app, snapshot):
    conv = conversation(guest)
    created = share(guest, conv["id"])
    off = build_app(conversation_sharing_enabled=False).test_client()
    before = snapshot()
    for method, path in (("POST", f"/v1/conversations/{conv['id']}/share"),
                         ("GET", f"/v1/conversations/{conv['id']}/shares"),
                         ("DELETE", f"/v1/conversations/{conv['id']}/shares/{created['id']}"),
                         ("GET", "/v1/shares"), ("DELETE", f"/v1/shares/{created['id']}"),
                         ("POST", f"/llm/v1/conversations/{conv['id']}/share")):
        assert_error(off.open(path, method=method, headers=guest.headers, json={"scope": "conversation"}), 403,
                     DISABLED)
        assert_error(off.open(path, method=method), 401, "authentication required")
    assert snapshot() == before
    assert public(off, created["slug"]).status_code == 200


# Public read ---------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("slug", ["short", "a" * 21, "a" * 23, "has-dashes-but-22chars", "é" * 22])
def test_a_malformed_slug_is_400(client, snapshot, slug):
    before = snapshot()
    assert_error(public(client, slug), 400, "invalid share link", param="slug")
    head = public(client, slug, method="HEAD")
    assert head.status_code == 400 and head.get_data() == b""
    assert without_counters(snapshot()) == without_counters(before)


def test_an_unknown_or_revoked_slug_is_410(guest, client, snapshot):
    created = share(guest, conversation(guest)["id"])
    guest.delete(f"/v1/shares/{created['id']}")
    before = snapshot()
    for slug in ("A" * 22, created["slug"]):
        assert_error(public(client, slug), 410, "This share has been revoked", code="share_revoked")
        assert public(client, slug, method="HEAD").status_code == 410
    assert without_counters(snapshot()) == without_counters(before)


def test_the_public_read_needs_no_credentials_and_ignores_bad_ones(guest, client):
    created = share(guest, conversation(guest)["id"])
    assert public(client, created["slug"], headers={"Authorization": "Bearer garbage"}).status_code == 200


def _away_from_window_edge(seconds: int, margin: float = 3.0) -> None:
    """Fixed windows: keep a short test inside one window."""
    into = time.time() % seconds
    if into > seconds - margin:
        time.sleep(seconds - into + 0.2)


def test_rate_limit_is_shared_by_two_pods_per_client_address(guest, build_app, snapshot):
    created = share(guest, conversation(guest)["id"])
    settings = {"public_share_rate_limit_per_minute": 0, "public_share_rate_limit_per_hour": 3,
                "client_address_header": "X-Real-IP"}
    pod_a, pod_b = build_app(**settings).test_client(), build_app(**settings).test_client()
    client_ip = f"192.0.2.{uuid.uuid4().int % 250}"
    _away_from_window_edge(3600)

    def read(pod, slug=created["slug"], ip=client_ip, **headers):
        return pod.get(f"/v1/public/shares/{slug}", headers={"X-Real-IP": ip, **headers})

    assert read(pod_a).status_code == 200
    assert read(pod_b).status_code == 200
    assert read(pod_a, slug="bad").status_code == 400  # rejected reads count too
    before = snapshot()
    for pod in (pod_b, pod_a):
        refused = read(pod, **{"X-Forwarded-For": "198.51.100.1"})  # a forged chain changes nothing
        assert_error(refused, 429, "too many requests, retry later", code="rate_limited")
        assert 1 <= int(refused.headers["Retry-After"]) <= 3600
    assert without_counters(snapshot()) == without_counters(before)
    assert read(pod_a, ip=f"198.51.100.{uuid.uuid4().int % 250}").status_code == 200  # another client


def test_per_minute_limit_and_peer_address_by_default(guest, build_app):
    created = share(guest, conversation(guest)["id"])
    pod = build_app(public_share_rate_limit_per_minute=2, public_share_rate_limit_per_hour=0).test_client()
    peer = f"203.0.113.{uuid.uuid4().int % 250}"
    _away_from_window_edge(60)
    statuses = [public(pod, created["slug"], address=peer, headers={"X-Real-IP": "192.0.2.1"}).status_code
                for _ in range(3)]
    assert statuses == [200, 200, 429]
    assert public(pod, created["slug"], address=peer, method="HEAD").status_code == 429
