"""Projects through HTTP against PostgreSQL: Jan's shapes and status codes (201 create, 409 duplicate name, soft
delete), validation (nothing stored on a 400), the duplicate-name race, isolation (another user's project is a
404 like a missing one), opaque-cursor pagination, a project's conversations, and its instruction leading every
chat request of its conversations."""
from __future__ import annotations

import base64
import re
import threading

import pytest
from sqlalchemy import select, update

from shared.errors import ERROR_TYPES
from shared.domain.conversations.tables import conversations, projects
from functions.llm.projects.service import PROJECT_PRIORITY
from tests.conftest import TEST_MODEL_ID

PROJ_ID = re.compile(r"proj_[0-9a-z]{16}")


def assert_error(response, status: int, message: str, *, code: str | None = None, param: str | None = None):
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.json == {
        "error": {"message": message, "type": ERROR_TYPES[status], "param": param, "code": code},
        "message": message,
        "request_id": response.headers["X-Request-Id"],
    }


def create(account, name: str = "Project", prefix: str = "", **body) -> dict:
    response = account.post(f"{prefix}/v1/projects", json={"name": name, **body})
    assert response.status_code == 201, response.json
    return response.json


def project_row(app, public_id: str):
    with app.extensions["jan"].db.read() as conn:
        return conn.execute(select(projects).where(projects.c.public_id == public_id)).first()


def attach(app, conversation_id: str, project_id: str | None, instruction_snapshot: str | None = None) -> None:
    """Set-up (not under test): link a conversation to a project directly in the database."""
    with app.extensions["jan"].db.transaction() as conn:
        internal = None
        if project_id is not None:
            internal = conn.execute(select(projects.c.id).where(projects.c.public_id == project_id)).scalar_one()
        conn.execute(update(conversations).where(conversations.c.public_id == conversation_id)
                     .values(project_id=internal, instruction_snapshot=instruction_snapshot))


# Create, read -------------------------------------------------------------------------------------------------

def test_create_returns_201_and_jans_project_shape(guest):
    body = create(guest, "  Research  ", instruction="Answer in French.")
    assert PROJ_ID.fullmatch(body["id"])
    assert isinstance(body.pop("created_at"), int) and isinstance(body.pop("updated_at"), int)
    assert body == {"id": body["id"], "object": "project", "name": "Research", "instruction": "Answer in French.",
                    "is_favorite": False, "is_archived": False}
    assert guest.get(f"/v1/projects/{body['id']}").json["name"] == "Research"


def test_optional_fields_are_left_out_when_unset(guest):
    body = create(guest, "Bare")
    assert "instruction" not in body and "archived_at" not in body
    assert create(guest, "Blank instruction", instruction="   ").get("instruction") is None


def test_names_count_characters_not_bytes(guest):
    assert create(guest, "é" * 120)["name"] == "é" * 120
    assert create(guest, "x" * 118 + "  ")["name"] == "x" * 118


def test_longest_instruction_is_accepted(guest):
    instruction = "line\n\tindent " * 2520 + "end"  # 32 763 characters, tabs and newlines allowed
    assert create(guest, "Long", instruction=instruction)["instruction"] == instruction


def test_routes_are_also_served_under_llm(guest):
    body = create(guest, "Prefixed", prefix="/llm")
    assert guest.get(f"/llm/v1/projects/{body['id']}").json == body


@pytest.mark.parametrize("body, message", [
    ({}, "name is required"),
    ({"name": None}, "name is required"),
    ({"name": ""}, "name must not be empty"),
    ({"name": "   \t "}, "name must not be empty"),
    ({"name": 5}, "name must be a string"),
    ({"name": ["x"]}, "name must be a string"),
    ({"name": "x" * 121}, "name must be at most 120 characters"),
    ({"name": "bad\x07name"}, "name must not contain control characters"),
    ({"name": "two\nlines"}, "name must not contain control characters"),
    ({"name": "ok", "instruction": 7}, "instruction must be a string"),
    ({"name": "ok", "instruction": "x" * 32_769}, "instruction must be at most 32768 characters"),
    ({"name": "ok", "instruction": "esc\x1b"}, "instruction must not contain control characters other than tab "
                                               "and newline"),
])
def test_invalid_create_is_400_and_stores_nothing(guest, snapshot, body, message):
    before = snapshot()
    param = "instruction" if "instruction" in message else "name"
    assert_error(guest.post("/v1/projects", json=body), 400, message, param=param)
    assert snapshot() == before


@pytest.mark.parametrize("raw, message", [
    ("", "request body must be a JSON object"),
    ("{", "invalid JSON in request body"),
    ("[]", "request body must be a JSON object"),
])
def test_malformed_create_body_is_400(guest, snapshot, raw, message):
    before = snapshot()
    assert_error(guest.post("/v1/projects", data=raw, content_type="application/json"), 400, message)
    assert snapshot() == before


def test_jan_first_json_value_rule(guest):
    response = guest.post("/v1/projects", data='{"name": "Trailing"} }', content_type="application/json")
    assert response.status_code == 201 and response.json["name"] == "Trailing"


# Unique names ---------------------------------------------------------------------------------------------

def test_duplicate_live_name_is_409_and_stores_nothing(guest, new_guest, snapshot):
    create(guest, "Taken")
    before = snapshot()
    assert_error(guest.post("/v1/projects", json={"name": "  Taken "}), 409, "a project with this name already exists",
                 code="project_name_taken", param="name")
    assert snapshot() == before
    assert create(guest, "taken")["name"] == "taken"  # case-sensitive, as Jan's index
    assert create(new_guest(), "Taken")["name"] == "Taken"  # per user


def test_a_deleted_projects_name_can_be_reused(guest):
    first = create(guest, "Reused")
    guest.delete(f"/v1/projects/{first['id']}")
    second = create(guest, "Reused")
    assert second["id"] != first["id"]


def test_parallel_creates_of_one_name_give_one_201_and_one_409(guest, app):
    for attempt in range(5):
        name = f"Race {attempt}"
        barrier = threading.Barrier(2)
        results: list = []

        def post():
            client = app.test_client()
            barrier.wait()
            response = client.post("/v1/projects", json={"name": name}, headers=guest.headers)
            results.append((response.status_code, response.json))

        threads = [threading.Thread(target=post) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert sorted(status for status, _ in results) == [201, 409], results
        conflict = next(body for status, body in results if status == 409)
        assert conflict["error"]["type"] == "conflict"
        names = [p["name"] for p in guest.get("/v1/projects?limit=100").json["data"]]
        assert names.count(name) == 1


# Update -------------------------------------------------------------------------------------------------

def test_patch_renames_changes_instruction_and_favourites(guest):
    project = create(guest, "Old", instruction="old")
    body = guest.patch(f"/v1/projects/{project['id']}",
                       json={"name": " New ", "instruction": "new", "is_favorite": True}).json
    assert (body["name"], body["instruction"], body["is_favorite"]) == ("New", "new", True)
    assert guest.get(f"/v1/projects/{project['id']}").json == body


@pytest.mark.parametrize("cleared", [None, ""])
def test_patch_clears_the_instruction(guest, cleared):
    project = create(guest, f"Clear {cleared!r}", instruction="something")
    body = guest.patch(f"/v1/projects/{project['id']}", json={"instruction": cleared}).json
    assert "instruction" not in body


def test_archive_sets_and_clears_archived_at(guest, app):
    project = create(guest, "Archive me")
    archived = guest.patch(f"/v1/projects/{project['id']}", json={"is_archived": True}).json
    assert archived["is_archived"] is True and isinstance(archived["archived_at"], int)
    stamp = project_row(app, project["id"]).archived_at
    again = guest.patch(f"/v1/projects/{project['id']}", json={"is_archived": True}).json
    assert again["archived_at"] == archived["archived_at"]
    assert project_row(app, project["id"]).archived_at == stamp  # archiving twice keeps the first time
    restored = guest.patch(f"/v1/projects/{project['id']}", json={"is_archived": False}).json
    assert restored["is_archived"] is False and "archived_at" not in restored


def test_patch_without_changes_returns_the_project_untouched(guest, snapshot):
    project = create(guest, "Untouched")
    before = snapshot()
    for body in ({}, {"unknown": 1}, {"is_favorite": None}):
        response = guest.patch(f"/v1/projects/{project['id']}", json=body)
        assert response.status_code == 200 and response.json == project
    assert guest.patch(f"/v1/projects/{project['id']}").json == project
    assert snapshot() == before


@pytest.mark.parametrize("body, message, param", [
    ({"name": ""}, "name must not be empty", "name"),
    ({"name": None}, "name is required", "name"),
    ({"name": "y" * 121}, "name must be at most 120 characters", "name"),
    ({"instruction": 5}, "instruction must be a string", "instruction"),
    ({"is_favorite": "yes"}, "is_favorite must be a boolean", "is_favorite"),
    ({"is_archived": 1}, "is_archived must be a boolean", "is_archived"),
])
def test_invalid_patch_is_400_and_changes_nothing(guest, snapshot, body, message, param):
    project = create(guest, f"Patch {param} {message}")
    before = snapshot()
    assert_error(guest.patch(f"/v1/projects/{project['id']}", json=body), 400, message, param=param)
    assert snapshot() == before


def test_renaming_onto_another_live_name_is_409(guest, snapshot):
    create(guest, "One")
    two = create(guest, "Two")
    before = snapshot()
    assert_error(guest.patch(f"/v1/projects/{two['id']}", json={"name": "One"}), 409,
                 "a project with this name already exists", code="project_name_taken", param="name")
    assert snapshot() == before
    assert guest.patch(f"/v1/projects/{two['id']}", json={"name": "Two"}).status_code == 200  # its own name


# Delete ------------------------------------------------------------------------------------------------

def test_delete_is_soft_and_then_404_everywhere(guest, app, snapshot):
    project = create(guest, "Doomed")
    response = guest.delete(f"/v1/projects/{project['id']}")
    assert response.status_code == 200
    assert response.json == {"id": project["id"], "object": "project", "deleted": True}
    assert project_row(app, project["id"]).deleted_at is not None
    before = snapshot()
    for call in (guest.get, guest.delete, guest.patch, lambda path: guest.get(path + "/conversations")):
        assert_error(call(f"/v1/projects/{project['id']}"), 404, "project not found")
    assert project["id"] not in [p["id"] for p in guest.get("/v1/projects?limit=100").json["data"]]
    assert snapshot() == before


def test_delete_keeps_the_projects_conversations_detached(guest, app):
    project = create(guest, "Has chats", instruction="x")
    conversation = guest.post("/v1/conversations", json={"title": "kept"}).json
    attach(app, conversation["id"], project["id"], instruction_snapshot="x")
    guest.delete(f"/v1/projects/{project['id']}")
    assert guest.get(f"/v1/conversations/{conversation['id']}").json["title"] == "kept"
    with app.extensions["jan"].db.read() as conn:
        row = conn.execute(select(conversations).where(conversations.c.public_id == conversation["id"])).first()
    assert row.project_id is None and row.instruction_snapshot is None


# Isolation --------------------------------------------------------------------------------------------------

def test_another_users_project_answers_like_a_missing_one(guest, new_guest, app, snapshot):
    project = create(guest, "Private", instruction="secret")
    conversation = guest.post("/v1/conversations", json={}).json
    attach(app, conversation["id"], project["id"])
    other = new_guest()
    create(other, "Theirs")
    before = snapshot()
    for project_id in (project["id"], "proj_zzzzzzzzzzzzzzzz", "not-an-id"):
        for response in (other.get(f"/v1/projects/{project_id}"),
                         other.patch(f"/v1/projects/{project_id}", json={"name": "stolen"}),
                         other.delete(f"/v1/projects/{project_id}"),
                         other.get(f"/v1/projects/{project_id}/conversations")):
            assert_error(response, 404, "project not found")
    listed = other.get("/v1/projects").json
    assert [p["name"] for p in listed["data"]] == ["Theirs"] and listed["total"] == 1
    assert_error(other.get("/v1/projects", query_string={"after": project["id"]}), 400,
                 "after does not name one of your projects", param="after")
    assert snapshot() == before
    assert guest.get(f"/v1/projects/{project['id']}").json["instruction"] == "secret"


def test_an_api_key_acts_for_its_owner(guest, new_guest):
    project = create(guest, "Keyed")
    key = guest.post("/auth/api-keys", json={"name": "k"}).json["key"]
    assert guest.client.get(f"/v1/projects/{project['id']}", headers={"X-API-Key": key}).status_code == 200
    other_key = new_guest().post("/auth/api-keys", json={"name": "k"}).json["key"]
    response = guest.client.get(f"/v1/projects/{project['id']}", headers={"X-API-Key": other_key})
    assert response.status_code == 404


# Listing and pagination ------------------------------------------------------------------------------------

def test_list_shape_newest_update_first_with_total(new_guest):
    account = new_guest()
    assert account.get("/v1/projects").json == {"object": "list", "data": [], "first_id": None, "last_id": None,
                                                "has_more": False, "total": 0}
    a, b, c = (create(account, name) for name in ("A", "B", "C"))
    account.patch(f"/v1/projects/{a['id']}", json={"is_favorite": True})  # A is now the most recently updated
    body = account.get("/v1/projects").json
    assert [p["name"] for p in body["data"]] == ["A", "C", "B"]
    assert (body["first_id"], body["last_id"], body["has_more"], body["total"]) == (a["id"], b["id"], False, 3)
    assert "next_cursor" not in body
    assert [p["name"] for p in account.get("/v1/projects?order=asc").json["data"]] == ["B", "C", "A"]


def test_next_cursor_is_opaque_and_pages_through_everything(new_guest):
    account = new_guest()
    created = [create(account, f"P{n}")["id"] for n in range(7)]
    seen, pages, cursor = [], 0, None
    while True:
        query = {"limit": 3, **({"cursor": cursor} if cursor else {})}
        body = account.get("/v1/projects", query_string=query).json
        pages += 1
        seen += [p["id"] for p in body["data"]]
        assert body["total"] == 7
        if not body["has_more"]:
            assert "next_cursor" not in body
            break
        cursor = body["next_cursor"]
        assert not cursor.isdigit() and not PROJ_ID.search(cursor) and re.fullmatch(r"[A-Za-z0-9_-]+", cursor)
    assert pages == 3
    assert seen == list(reversed(created))  # never updated: creation order, newest first


def test_after_accepts_the_cursor_or_a_project_id(new_guest):
    account = new_guest()
    ids = [create(account, f"Q{n}")["id"] for n in range(4)]
    first = account.get("/v1/projects", query_string={"limit": 2}).json
    by_cursor = account.get("/v1/projects", query_string={"limit": 2, "after": first["next_cursor"]}).json
    by_id = account.get("/v1/projects", query_string={"limit": 2, "after": first["last_id"]}).json
    assert by_cursor["data"] == by_id["data"]
    assert [p["id"] for p in by_cursor["data"]] == [ids[1], ids[0]]
    ascending = account.get("/v1/projects", query_string={"order": "asc", "after": ids[1]}).json
    assert [p["id"] for p in ascending["data"]] == ids[2:]


def _b64(raw: str) -> str:
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


@pytest.mark.parametrize("param", ["cursor", "after"])
@pytest.mark.parametrize("cursor", [
    "garbage!", "123", _b64("p1:notanumber:proj_aaaaaaaaaaaaaaaa"), _b64("p2:1:proj_aaaaaaaaaaaaaaaa"),
    _b64("p1:1:conv_aaaaaaaaaaaaaaaa"), _b64("p1:99999999999999999999:proj_aaaaaaaaaaaaaaaa"), "\u00e9t\u00e9",
    "%ff",
])
def test_bad_cursor_is_400(guest, snapshot, param, cursor):
    before = snapshot()
    assert_error(guest.get("/v1/projects", query_string={param: cursor}), 400, f"{param} is not a valid cursor",
                 param=param)
    assert snapshot() == before


def test_bad_limit_and_order_are_400(guest):
    assert_error(guest.get("/v1/projects?limit=0"), 400, "limit must be between 1 and 100", param="limit")
    assert_error(guest.get("/v1/projects?limit=x"), 400, "limit must be an integer", param="limit")
    assert_error(guest.get("/v1/projects?order=up"), 400, "order must be 'asc' or 'desc'", param="order")


# A project's conversations ---------------------------------------------------------------------------------

def test_project_conversations_list_only_its_live_conversations(guest, app):
    project = create(guest, "With chats")
    inside = [guest.post("/v1/conversations", json={"title": f"in {n}"}).json["id"] for n in range(3)]
    guest.post("/v1/conversations", json={"title": "outside"})
    for conversation_id in inside:
        attach(app, conversation_id, project["id"])
    with app.extensions["jan"].db.transaction() as conn:  # a deleted conversation is not listed
        conn.execute(update(conversations).where(conversations.c.public_id == inside[0])
                     .values(deleted_at=conversations.c.created_at))
    body = guest.get(f"/v1/projects/{project['id']}/conversations").json
    assert [c["id"] for c in body["data"]] == [inside[2], inside[1]]
    assert all(c["project_id"] == project["id"] and c["object"] == "conversation" for c in body["data"])
    assert (body["object"], body["has_more"], body["total"]) == ("list", False, 2)
    page = guest.get(f"/v1/projects/{project['id']}/conversations", query_string={"limit": 1}).json
    assert page["has_more"] is True and [c["id"] for c in page["data"]] == [inside[2]]
    rest = guest.get(f"/v1/projects/{project['id']}/conversations",
                     query_string={"after": page["last_id"]}).json
    assert [c["id"] for c in rest["data"]] == [inside[1]]
    assert_error(guest.get(f"/v1/projects/{project['id']}/conversations", query_string={"after": inside[0]}), 400,
                 "after does not name a conversation of this project", param="after")


# Instruction injection ---------------------------------------------------------------------------------------

def chat(account, conversation_id: str, content: str = "hello", **extra):
    response = account.post("/v1/chat/completions", json={
        "model": TEST_MODEL_ID, "messages": [{"role": "user", "content": content}],
        "conversation": conversation_id, **extra})
    assert response.status_code == 200, response.get_data(as_text=True)
    return response


def system_message(instruction: str) -> dict:
    return {"role": "system", "content": f"{instruction}\n\n{PROJECT_PRIORITY}"}


@pytest.mark.usefixtures("provider")
class TestInstruction:
    def test_the_projects_instruction_is_the_first_system_message(self, guest, app, upstream):
        project = create(guest, "Poet", instruction="Answer in verse.")
        conversation = guest.post("/v1/conversations", json={"items": [
            {"role": "user", "content": "earlier"}, {"role": "assistant", "content": "reply"}]}).json
        attach(app, conversation["id"], project["id"])
        assert project_row(app, project["id"]).last_used_at is None
        chat(guest, conversation["id"])
        messages = upstream.requests[-1].body["messages"]
        assert messages[0] == system_message("Answer in verse.")
        assert messages[0]["content"].endswith(
            "Project priority: These project-specific instructions have the highest priority. If any user settings, "
            "style preferences, or other guidance conflict with these project instructions, you must follow the "
            "project instructions.")
        assert [m["content"] for m in messages[1:]] == ["earlier", "reply", "hello"]
        assert project_row(app, project["id"]).last_used_at is not None

    def test_it_leads_even_a_requests_own_system_message_and_streams(self, guest, app, upstream):
        project = create(guest, "Streamer", instruction="Be terse.")
        conversation = guest.post("/v1/conversations", json={}).json
        attach(app, conversation["id"], project["id"])
        response = guest.post("/v1/chat/completions", json={
            "model": TEST_MODEL_ID, "stream": True, "conversation": conversation["id"],
            "messages": [{"role": "system", "content": "mine"}, {"role": "user", "content": "hi"}]})
        assert response.status_code == 200
        messages = upstream.requests[-1].body["messages"]
        assert messages[0] == system_message("Be terse.")
        assert messages[1] == {"role": "system", "content": "mine"}

    def test_the_conversations_instruction_snapshot_wins(self, guest, app, upstream):
        project = create(guest, "Snapshot", instruction="current")
        conversation = guest.post("/v1/conversations", json={}).json
        attach(app, conversation["id"], project["id"], instruction_snapshot="frozen")
        chat(guest, conversation["id"])
        assert upstream.requests[-1].body["messages"][0] == system_message("frozen")

    def test_an_instruction_change_applies_to_the_next_request(self, guest, app, upstream):
        project = create(guest, "Changing", instruction="first")
        conversation = guest.post("/v1/conversations", json={}).json
        attach(app, conversation["id"], project["id"])
        chat(guest, conversation["id"])
        guest.patch(f"/v1/projects/{project['id']}", json={"instruction": "second"})
        chat(guest, conversation["id"], content="again")
        assert upstream.requests[-1].body["messages"][0] == system_message("second")

    @pytest.mark.parametrize("case", ["no project", "no instruction", "deleted project"])
    def test_no_system_message_without_a_live_instruction(self, guest, app, upstream, case):
        conversation = guest.post("/v1/conversations", json={}).json
        if case != "no project":
            project = create(guest, f"Case {case}", **({} if case == "no instruction" else {"instruction": "gone"}))
            attach(app, conversation["id"], project["id"], instruction_snapshot=None)
            if case == "deleted project":
                guest.delete(f"/v1/projects/{project['id']}")
        chat(guest, conversation["id"])
        assert upstream.requests[-1].body["messages"] == [{"role": "user", "content": "hello"}]

    def test_a_chat_without_a_conversation_is_untouched(self, guest, upstream):
        create(guest, "Unrelated", instruction="never")
        response = guest.post("/v1/chat/completions", json={
            "model": TEST_MODEL_ID, "messages": [{"role": "user", "content": "plain"}]})
        assert response.status_code == 200
        assert upstream.requests[-1].body["messages"] == [{"role": "user", "content": "plain"}]

    def test_the_instruction_is_not_stored_as_an_item(self, guest, app, upstream):
        project = create(guest, "Not stored", instruction="hidden")
        conversation = guest.post("/v1/conversations", json={}).json
        attach(app, conversation["id"], project["id"])
        chat(guest, conversation["id"])
        items = guest.get(f"/v1/conversations/{conversation['id']}/items?order=asc").json["data"]
        assert [item["role"] for item in items] == ["user", "assistant"]
        chat(guest, conversation["id"], content="second")
        roles = [m["role"] for m in upstream.requests[-1].body["messages"]]
        assert roles == ["system", "user", "assistant", "user"]  # exactly one project message per request
