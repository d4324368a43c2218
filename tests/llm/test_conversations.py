"""Conversations through HTTP: create (title, metadata and item limits, OpenAI's and Jan's content forms,
projects), get (another user's conversation answers exactly like a missing one), list (Jan's fields and
`total`, cursors, referrer and project filters, a constant number of queries), update (POST as Jan, PATCH
too), delete and delete-all (soft, shares revoked), and item listing, at the root and under /llm."""
from __future__ import annotations

import datetime as dt
import re

import pytest

from shared.domain.conversations.tables import conversations as conversations_table
from tests.llm.conversation_support import (
    BAD_BRANCH,
    assert_error,
    count_queries,
    create,
    db,
    dialogue,
    insert_project,
    insert_share,
    internal_conversation,
    share_revoked_at,
    texts,
    user_items,
)

CONV_ID = re.compile(r"conv_[0-9a-z]{16}")
MSG_ID = re.compile(r"msg_[0-9a-z]{16}")
RFC3339 = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)")


# Create -----------------------------------------------------------------------------------------------------

def test_create_without_body_returns_an_empty_conversation(guest):
    response = guest.post("/v1/conversations")
    assert response.status_code == 200
    body = response.json
    assert CONV_ID.fullmatch(body["id"])
    assert isinstance(body.pop("created_at"), int) and isinstance(body.pop("updated_at"), int)
    assert body == {"id": body["id"], "object": "conversation", "title": None,
                    "metadata": {"title_locked": "false"}, "referrer": None, "project_id": None}


def test_create_keeps_title_metadata_and_referrer(guest):
    body = create(guest, title="  Trip planning  ", metadata={"topic": "travel", "lang": "en"}, referrer="web")
    assert body["title"] == "Trip planning"
    assert body["metadata"] == {"topic": "travel", "lang": "en", "title_locked": "false"}
    assert body["referrer"] == "web"


def test_create_always_starts_with_title_unlocked(guest):
    assert create(guest, metadata={"title_locked": "true"})["metadata"] == {"title_locked": "false"}


@pytest.mark.parametrize("title", ["New Conversation", "  New Conversation ", "", "   "])
def test_placeholder_or_blank_title_means_no_title(guest, title):
    assert create(guest, title=title)["title"] is None


def test_long_title_is_truncated_to_256_characters(guest):
    body = create(guest, title="word " * 100)
    assert body["title"] == ("word " * 100)[:256].rstrip()
    assert len(body["title"]) <= 256


def test_metadata_of_16_keys_and_maximal_sizes_is_accepted(guest):
    metadata = {f"k{n}": "v" for n in range(15)}
    metadata["k" * 64] = "é" * 256  # 64-byte key, 512-byte value
    body = create(guest, metadata=metadata)
    assert body["metadata"] == {**metadata, "title_locked": "false"}


@pytest.mark.parametrize("metadata, message", [
    ({f"k{n}": "v" for n in range(17)}, "metadata may hold at most 16 keys"),
    ({"k" * 65: "v"}, "metadata keys must be at most 64 bytes"),
    ({"é" * 33: "v"}, "metadata keys must be at most 64 bytes"),
    ({"k": "v" * 513}, "metadata values must be strings of at most 512 bytes"),
    ({"k": "é" * 257}, "metadata values must be strings of at most 512 bytes"),
    ({"k": 1}, "metadata values must be strings of at most 512 bytes"),
    ({"k": None}, "metadata values must be strings of at most 512 bytes"),
    ({"k": {"nested": "x"}}, "metadata values must be strings of at most 512 bytes"),
    (["k", "v"], "metadata must be an object of string values"),
    ("k=v", "metadata must be an object of string values"),
])
def test_metadata_over_limits_is_400_and_stores_nothing(guest, snapshot, metadata, message):
    before = snapshot()
    assert_error(guest.post("/v1/conversations", json={"metadata": metadata}), 400, message, param="metadata")
    assert snapshot() == before


def test_twenty_items_are_accepted_and_twenty_one_rejected(guest, snapshot):
    created = create(guest, items=user_items(20))
    listed = guest.get(f"/v1/conversations/{created['id']}/items", query_string={"limit": 100}).json
    assert len(listed["data"]) == 20

    before = snapshot()
    assert_error(guest.post("/v1/conversations", json={"items": user_items(21)}), 400,
                 "at most 20 items may be added at once", param="items")
    assert snapshot() == before


@pytest.mark.parametrize("body, message, param", [
    ({"items": {"role": "user"}}, "items must be a list", "items"),
    ({"items": ["hello"]}, "each item must be an object", "items"),
    ({"items": [{"role": "robot", "content": "x"}]}, "item role must be user, assistant, system or developer",
     "items"),
    ({"items": [{"content": "x"}]}, "item role must be user, assistant, system or developer", "items"),
    ({"items": [{"role": "user", "content": 5}]}, "content must be a string or a list of content parts",
     "content"),
    ({"items": [{"role": "user", "content": [{"text": "x"}]}]}, "each content part must be an object with a type",
     "content"),
    ({"items": [{"role": "user", "content": [{"type": "input_text"}]}]},
     "content part of type input_text needs text", "content"),
    ({"items": [{"role": "user", "content": [{"type": "image_url", "image_url": 5}]}]},
     "image content parts need a URL", "content"),
    ({"items": [{"role": "user", "content": "x", "status": "done"}]}, "item status is not valid", "items"),
    ({"items": [{"role": "user", "content": "x", "status": ["completed"]}]}, "item status is not valid", "items"),
    ({"items": [{"type": "reasoning_blob", "role": "user"}]}, "item type 'reasoning_blob' is not supported", "items"),
    ({"items": [{"type": "function_call", "name": "f"}]},
     "function_call items need a call_id of at most 128 characters", "items"),
    ({"items": [{"type": "function_call_output", "call_id": "c" * 129, "output": "x"}]},
     "function_call_output items need a call_id of at most 128 characters", "items"),
    ({"items": [{"type": "function_call", "call_id": "c1"}]}, "function_call items need a name", "items"),
    ({"items": [{"type": "function_call", "call_id": "c1", "name": "n" * 256}]},
     "item name must be a string of at most 255 characters", "items"),
    ({"items": [{"type": "function_call", "call_id": "c1", "name": "f", "arguments": {"q": 1}}]},
     "function_call arguments must be a JSON-encoded string", "items"),
    ({"items": [{"type": "function_call_output", "call_id": "c1", "output": "x", "status": "s" * 40}]},
     "item status is not valid", "items"),
    ({"title": 5}, "title must be a string", "title"),
    ({"referrer": "r" * 65}, "referrer must be at most 64 characters", "referrer"),
])
def test_invalid_create_body_is_400_and_stores_nothing(guest, snapshot, body, message, param):
    before = snapshot()
    assert_error(guest.post("/v1/conversations", json=body), 400, message, param=param)
    assert snapshot() == before


def test_openai_and_jan_content_forms_are_accepted_and_stored_in_openai_form(guest):
    items = [
        {"type": "message", "role": "system", "content": "be brief"},
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "openai part"}]},
        {"role": "user", "content": [{"type": "text", "text": "chat part"}]},
        {"role": "user", "content": [{"type": "input_text", "input_text": "jan part"}]},
        {"role": "user", "content": [{"type": "text", "text": {"text": "jan nested"}},
                                     {"type": "image", "image": {"url": "https://example.com/a.png"}},
                                     {"type": "image_url", "image_url": {"url": "https://example.com/b.png"},
                                      "detail": "low"}]},
        {"role": "assistant", "content": [{"type": "output_text", "text": "openai answer", "annotations": []}]},
        {"role": "assistant", "content": [{"type": "output_text", "output_text": {"text": "jan answer",
                                                                                  "annotations": []}}]},
        {"role": "assistant", "content": "plain answer"},
        {"type": "function_call", "call_id": "call_1", "name": "lookup", "arguments": '{"q": "x"}'},
        {"type": "function_call_output", "call_id": "call_1", "output": {"answer": 42}},
    ]
    created = create(guest, items=items)
    listed = guest.get(f"/v1/conversations/{created['id']}/items", query_string={"order": "asc"}).json["data"]
    assert [item.get("content") for item in listed[:8]] == [
        [{"type": "input_text", "text": "be brief"}],
        [{"type": "input_text", "text": "openai part"}],
        [{"type": "input_text", "text": "chat part"}],
        [{"type": "input_text", "text": "jan part"}],
        [{"type": "input_text", "text": "jan nested"},
         {"type": "input_image", "image_url": "https://example.com/a.png", "detail": "auto"},
         {"type": "input_image", "image_url": "https://example.com/b.png", "detail": "low"}],
        [{"type": "output_text", "text": "openai answer", "annotations": []}],
        [{"type": "output_text", "text": "jan answer", "annotations": []}],
        [{"type": "output_text", "text": "plain answer", "annotations": []}],
    ]
    assert [item["role"] for item in listed[:8]] == ["system", "user", "user", "user", "user", "assistant",
                                                     "assistant", "assistant"]
    call, output = listed[8], listed[9]
    assert (call["type"], call["call_id"], call["name"], call["arguments"], call["status"]) == (
        "function_call", "call_1", "lookup", '{"q": "x"}', "completed")
    assert (output["type"], output["call_id"], output["output"]) == ("function_call_output", "call_1",
                                                                      '{"answer": 42}')
    assert "role" not in call and "content" not in call


# Get ---------------------------------------------------------------------------------------------------------

def test_get_own_conversation(guest):
    created = create(guest, title="mine", metadata={"a": "b"})
    response = guest.get(f"/v1/conversations/{created['id']}")
    assert response.status_code == 200
    assert response.json == created


def test_another_users_conversation_answers_exactly_like_a_missing_one(guest, new_guest, snapshot):
    created = create(guest, title="private", items=user_items(2))
    other = new_guest()
    before = snapshot()
    for path in (f"/v1/conversations/{created['id']}", f"/v1/conversations/{created['id']}/items"):
        foreign = other.get(path)
        missing = other.get(path.replace(created["id"], "conv_0000000000000000"))
        assert_error(foreign, 404, "conversation not found")
        assert_error(missing, 404, "conversation not found")
        assert {k: v for k, v in foreign.json.items() if k != "request_id"} == {
            k: v for k, v in missing.json.items() if k != "request_id"}
        assert foreign.headers.get("Content-Length") == missing.headers.get("Content-Length")
    assert snapshot() == before


@pytest.mark.parametrize("conversation_id", ["conv_0000000000000000", "nope", "msg_0000000000000000", "c" * 300])
def test_unknown_conversation_is_404(guest, conversation_id):
    assert_error(guest.get(f"/v1/conversations/{conversation_id}"), 404, "conversation not found")
    assert_error(guest.get(f"/v1/conversations/{conversation_id}/items"), 404, "conversation not found")


# Items -------------------------------------------------------------------------------------------------------

def test_items_have_the_conversation_item_shape(guest):
    before = dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=5)
    created = create(guest, items=[{"role": "user", "content": "hi"}])
    response = guest.get(f"/v1/conversations/{created['id']}/items")
    assert response.status_code == 200
    (item,) = response.json["data"]
    assert MSG_ID.fullmatch(item["id"])
    assert RFC3339.fullmatch(item["created_at"]) and RFC3339.fullmatch(item["completed_at"])
    created_at = dt.datetime.fromisoformat(item["created_at"].replace("Z", "+00:00"))
    assert before <= created_at <= dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=5)
    assert {k: v for k, v in item.items() if k not in ("id", "created_at", "completed_at")} == {
        "object": "conversation.item", "type": "message", "branch": "MAIN", "sequence_number": 1, "role": "user",
        "content": [{"type": "input_text", "text": "hi"}], "status": "completed"}
    assert response.json == {"object": "list", "data": [item], "first_id": item["id"], "last_id": item["id"],
                             "has_more": False}


def test_items_default_to_newest_first_and_order_asc_reverses(guest):
    created = create(guest, items=user_items(5))
    path = f"/v1/conversations/{created['id']}/items"
    newest_first = guest.get(path).json["data"]
    assert texts(newest_first) == [f"message {n}" for n in (5, 4, 3, 2, 1)]
    assert [item["sequence_number"] for item in newest_first] == [5, 4, 3, 2, 1]
    oldest_first = guest.get(path, query_string={"order": "asc"}).json["data"]
    assert texts(oldest_first) == [f"message {n}" for n in (1, 2, 3, 4, 5)]
    assert guest.get(path, query_string={"order": "desc"}).json["data"] == newest_first


@pytest.mark.parametrize("order, expected_pages", [
    ("desc", [[5, 4], [3, 2], [1]]),
    ("asc", [[1, 2], [3, 4], [5]]),
])
def test_after_cursor_pages_through_items(guest, order, expected_pages):
    created = create(guest, items=user_items(5))
    path = f"/v1/conversations/{created['id']}/items"
    pages, after = [], None
    while True:
        query = {"limit": 2, "order": order, **({"after": after} if after else {})}
        body = guest.get(path, query_string=query).json
        numbers = [item["sequence_number"] for item in body["data"]]
        pages.append(numbers)
        assert body["first_id"] == body["data"][0]["id"] and body["last_id"] == body["data"][-1]["id"]
        if not body["has_more"]:
            break
        after = body["last_id"]
    assert pages == expected_pages


def test_limit_bounds_are_one_and_one_hundred(guest):
    created = create(guest, items=user_items(3))
    path = f"/v1/conversations/{created['id']}/items"
    one = guest.get(path, query_string={"limit": 1}).json
    assert len(one["data"]) == 1 and one["has_more"] is True
    hundred = guest.get(path, query_string={"limit": 100}).json
    assert len(hundred["data"]) == 3 and hundred["has_more"] is False


def test_empty_conversation_lists_no_items(guest):
    created = create(guest)
    assert guest.get(f"/v1/conversations/{created['id']}/items").json == {
        "object": "list", "data": [], "first_id": None, "last_id": None, "has_more": False}


@pytest.mark.parametrize("query, message, param", [
    ({"limit": "0"}, "limit must be between 1 and 100", "limit"),
    ({"limit": "101"}, "limit must be between 1 and 100", "limit"),
    ({"limit": "-1"}, "limit must be between 1 and 100", "limit"),
    ({"limit": "x"}, "limit must be an integer", "limit"),
    ({"limit": "1.5"}, "limit must be an integer", "limit"),
    ({"order": "newest"}, "order must be 'asc' or 'desc'", "order"),
    ({"after": "msg_0000000000000000"}, "after does not name an item of this conversation", "after"),
    ({"after": "x" * 129}, "after is not a valid cursor", "after"),
    ({"branch": "b" * 65}, BAD_BRANCH.format("branch"), "branch"),
])
def test_invalid_item_paging_is_400(guest, snapshot, query, message, param):
    created = create(guest, items=user_items(2))
    before = snapshot()
    assert_error(guest.get(f"/v1/conversations/{created['id']}/items", query_string=query), 400, message,
                 param=param)
    assert snapshot() == before


def test_cursor_from_another_conversation_is_400(guest):
    first = create(guest, items=user_items(2))
    second = create(guest, items=user_items(2))
    cursor = guest.get(f"/v1/conversations/{first['id']}/items").json["first_id"]
    assert_error(guest.get(f"/v1/conversations/{second['id']}/items", query_string={"after": cursor}), 400,
                 "after does not name an item of this conversation", param="after")


def test_unknown_branch_lists_no_items(guest):
    created = create(guest, items=user_items(2))
    body = guest.get(f"/v1/conversations/{created['id']}/items", query_string={"branch": "other"}).json
    assert body["data"] == [] and body["has_more"] is False


# Under /llm -------------------------------------------------------------------------------------------------

def test_conversation_routes_are_also_served_under_llm(guest):
    created = create(guest, prefix="/llm", title="prefixed", items=user_items(3))
    assert guest.get(f"/llm/v1/conversations/{created['id']}").json == created
    assert guest.get(f"/v1/conversations/{created['id']}").json == created
    listed = guest.get(f"/llm/v1/conversations/{created['id']}/items", query_string={"order": "asc", "limit": 2})
    assert listed.status_code == 200
    assert [item["sequence_number"] for item in listed.json["data"]] == [1, 2]
    assert listed.json["has_more"] is True
    assert_error(guest.get("/llm/v1/conversations/conv_0000000000000000"), 404, "conversation not found")


# List -------------------------------------------------------------------------------------------------------

def listed(account, **query):
    response = account.get("/v1/conversations", query_string=query)
    assert response.status_code == 200, response.json
    return response.json


def test_list_has_jans_fields_and_total_newest_first(new_guest):
    owner = new_guest()
    made = [create(owner, title=f"c{n}") for n in range(3)]
    body = listed(owner)
    assert set(body) == {"object", "data", "first_id", "last_id", "has_more", "total"}
    assert body["object"] == "list" and body["total"] == 3 and body["has_more"] is False
    assert [c["id"] for c in body["data"]] == [c["id"] for c in reversed(made)]
    assert body["data"][0] == made[-1]
    assert (body["first_id"], body["last_id"]) == (made[-1]["id"], made[0]["id"])
    assert [c["id"] for c in listed(owner, order="asc")["data"]] == [c["id"] for c in made]


def test_list_pages_with_after_and_total_counts_everything(new_guest):
    owner = new_guest()
    made = [create(owner)["id"] for _ in range(5)]
    for order, expected in (("desc", made[::-1]), ("asc", made)):
        seen, after = [], None
        while True:
            body = listed(owner, limit=2, order=order, **({"after": after} if after else {}))
            assert body["total"] == 5
            seen += [c["id"] for c in body["data"]]
            if not body["has_more"]:
                break
            after = body["last_id"]
        assert seen == expected


def test_an_empty_list(guest):
    assert listed(guest) == {"object": "list", "data": [], "first_id": None, "last_id": None, "has_more": False,
                             "total": 0}


def test_list_never_shows_other_users_or_deleted_conversations(new_guest):
    owner, other = new_guest(), new_guest()
    kept = create(owner)["id"]
    gone = create(owner)["id"]
    create(other)
    assert owner.delete(f"/v1/conversations/{gone}").status_code == 200
    body = listed(owner)
    assert [c["id"] for c in body["data"]] == [kept] and body["total"] == 1


def test_list_filters_by_referrer(guest):
    web = create(guest, referrer="web")["id"]
    create(guest, referrer="app")
    create(guest)
    body = listed(guest, referrer="web")
    assert [c["id"] for c in body["data"]] == [web] and body["total"] == 1


def test_list_filters_by_the_callers_project(app, new_guest, snapshot):
    owner, other = new_guest(), new_guest()
    project = insert_project(app, owner)
    inside = create(owner, project_id=project)
    assert inside["project_id"] == project
    create(owner)
    body = listed(owner, project_id=project)
    assert [c["id"] for c in body["data"]] == [inside["id"]] and body["total"] == 1
    assert body["data"][0]["project_id"] == project
    deleted = insert_project(app, owner, deleted=True)
    before = snapshot()
    for caller, project_id in ((other, project), (owner, "proj_0000000000000000"), (owner, deleted)):
        assert_error(caller.get("/v1/conversations", query_string={"project_id": project_id}), 404,
                     "project not found", param="project_id")
    assert snapshot() == before


@pytest.mark.parametrize("query, message, param", [
    ({"limit": "0"}, "limit must be between 1 and 100", "limit"),
    ({"limit": "101"}, "limit must be between 1 and 100", "limit"),
    ({"limit": "many"}, "limit must be an integer", "limit"),
    ({"order": "up"}, "order must be 'asc' or 'desc'", "order"),
    ({"after": "conv_0000000000000000"}, "after does not name one of your conversations", "after"),
    ({"after": "c" * 129}, "after is not a valid cursor", "after"),
])
def test_invalid_list_paging_is_400(guest, snapshot, query, message, param):
    create(guest)
    before = snapshot()
    assert_error(guest.get("/v1/conversations", query_string=query), 400, message, param=param)
    assert snapshot() == before


def test_another_users_conversation_is_not_a_cursor(guest, new_guest):
    foreign = create(new_guest())["id"]
    create(guest)
    assert_error(guest.get("/v1/conversations", query_string={"after": foreign}), 400,
                 "after does not name one of your conversations", param="after")


def test_conversation_list_queries_do_not_grow_with_the_page(app, new_guest):
    few, many = new_guest(), new_guest()
    for _ in range(2):
        create(few, items=user_items(2))
    for _ in range(40):
        create(many, items=user_items(2))
    counts = {}
    for name, account in (("few", few), ("many", many)):
        after = listed(account, limit=1)["first_id"]
        with count_queries(app) as plain:
            assert len(listed(account, limit=100)["data"]) in (2, 40)
        with count_queries(app) as paged:
            listed(account, limit=100, after=after)
        counts[name] = (len(plain), len(paged))
    assert counts["few"] == counts["many"], counts
    plain, paged = counts["many"]
    assert paged == plain + 1  # the cursor lookup
    assert plain <= 4, plain  # authentication + page + total


# Create in a project ----------------------------------------------------------------------------------------

def test_create_in_another_users_or_a_missing_project_is_404(app, guest, new_guest, snapshot):
    foreign = insert_project(app, new_guest())
    before = snapshot()
    for project_id in (foreign, "proj_0000000000000000", "nope"):
        assert_error(guest.post("/v1/conversations", json={"project_id": project_id}), 404, "project not found",
                     param="project_id")
    assert_error(guest.post("/v1/conversations", json={"project_id": 5}), 400, "project_id must be a string",
                 param="project_id")
    assert snapshot() == before


# Update -----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("method", ["post", "patch"])
def test_update_title_metadata_and_referrer(guest, method):
    created = create(guest, title="old", metadata={"a": "1"}, referrer="web")
    response = getattr(guest, method)(f"/v1/conversations/{created['id']}",
                                      json={"title": "  new  ", "metadata": {"b": "2"}, "referrer": "app"})
    assert response.status_code == 200, response.json
    body = response.json
    assert (body["title"], body["referrer"]) == ("new", "app")
    assert body["metadata"] == {"b": "2", "title_locked": "false"}  # replaced; the lock flag survives
    assert body["updated_at"] >= created["updated_at"]
    assert guest.get(f"/v1/conversations/{created['id']}").json == body


def test_update_with_an_empty_body_changes_nothing(guest):
    created = create(guest, title="same")
    response = guest.post(f"/v1/conversations/{created['id']}")
    assert response.status_code == 200 and response.json == created


def test_update_title_is_trimmed_truncated_and_placeholder_clears(guest):
    created = create(guest, title="x")
    path = f"/v1/conversations/{created['id']}"
    assert guest.post(path, json={"title": "word " * 100}).json["title"] == ("word " * 100)[:256].rstrip()
    assert guest.post(path, json={"title": "New Conversation"}).json["title"] is None


def test_a_title_set_after_the_first_exchange_locks_it(guest):
    short = create(guest, items=user_items(1))
    assert guest.post(f"/v1/conversations/{short['id']}", json={"title": "t"}).json["metadata"] == {
        "title_locked": "false"}
    longer = create(guest, items=user_items(2))
    body = guest.post(f"/v1/conversations/{longer['id']}", json={"title": "mine"}).json
    assert body["metadata"]["title_locked"] == "true"
    # a later metadata replacement keeps the lock unless it sets the flag itself
    body = guest.post(f"/v1/conversations/{longer['id']}", json={"metadata": {"k": "v"}}).json
    assert body["metadata"] == {"k": "v", "title_locked": "true"}
    body = guest.post(f"/v1/conversations/{longer['id']}", json={"metadata": {"title_locked": "false"}}).json
    assert body["metadata"] == {"title_locked": "false"}


def test_update_project_sets_clears_and_drops_the_instruction_snapshot(app, guest):
    first, second = insert_project(app, guest), insert_project(app, guest)
    created = create(guest, project_id=first)
    path = f"/v1/conversations/{created['id']}"
    with db(app).transaction() as conn:
        conn.execute(conversations_table.update().where(conversations_table.c.public_id == created["id"])
                     .values(instruction_snapshot="old instruction"))
    assert guest.patch(path, json={"project_id": second}).json["project_id"] == second
    assert internal_conversation(app, created["id"]).instruction_snapshot is None
    assert listed(guest, project_id=second)["total"] == 1 and listed(guest, project_id=first)["total"] == 0
    assert guest.post(path, json={"project_id": ""}).json["project_id"] is None
    assert internal_conversation(app, created["id"]).project_id is None
    assert guest.get(path).json["project_id"] is None


@pytest.mark.parametrize("body, status, message, param", [
    ({"title": 5}, 400, "title must be a string", "title"),
    ({"metadata": {f"k{n}": "v" for n in range(17)}}, 400, "metadata may hold at most 16 keys", "metadata"),
    ({"metadata": {"k": "v" * 513}}, 400, "metadata values must be strings of at most 512 bytes", "metadata"),
    ({"metadata": "x"}, 400, "metadata must be an object of string values", "metadata"),
    ({"referrer": "r" * 65}, 400, "referrer must be at most 64 characters", "referrer"),
    ({"project_id": ["p"]}, 400, "project_id must be a string", "project_id"),
    ({"project_id": "proj_0000000000000000"}, 404, "project not found", "project_id"),
    ({"title": "ok", "project_id": "proj_0000000000000000"}, 404, "project not found", "project_id"),
])
def test_invalid_update_changes_nothing(guest, snapshot, body, status, message, param):
    created = create(guest, title="keep", items=user_items(2))
    before = snapshot()
    for method in ("post", "patch"):
        assert_error(getattr(guest, method)(f"/v1/conversations/{created['id']}", json=body), status, message,
                     param=param)
    assert snapshot() == before


def test_update_into_another_users_project_is_404(app, guest, new_guest, snapshot):
    foreign = insert_project(app, new_guest())
    created = create(guest)
    before = snapshot()
    assert_error(guest.post(f"/v1/conversations/{created['id']}", json={"project_id": foreign}), 404,
                 "project not found", param="project_id")
    assert snapshot() == before


# Delete -----------------------------------------------------------------------------------------------------

def test_delete_is_soft_answers_jans_body_then_404_everywhere(app, guest):
    created = create(guest, items=user_items(2))
    share = insert_share(app, guest, created["id"])
    path = f"/v1/conversations/{created['id']}"
    response = guest.delete(path)
    assert response.status_code == 200
    assert response.json == {"id": created["id"], "object": "conversation.deleted", "deleted": True}
    assert internal_conversation(app, created["id"]).deleted_at is not None  # kept, marked deleted
    assert share_revoked_at(app, share) is not None
    for response in (guest.get(path), guest.post(path, json={"title": "x"}), guest.patch(path, json={}),
                     guest.delete(path), guest.get(f"{path}/items"), guest.post(f"{path}/items", json={
                         "items": user_items(1)}), guest.get(f"{path}/branches")):
        assert_error(response, 404, "conversation not found")


def test_delete_all_deletes_only_the_callers_and_revokes_their_shares(app, new_guest):
    owner, other = new_guest(), new_guest()
    mine = [create(owner)["id"] for _ in range(3)]
    theirs = create(other)["id"]
    shares = [insert_share(app, owner, conversation) for conversation in mine[:2]]
    their_share = insert_share(app, other, theirs)
    response = owner.delete("/v1/conversations")
    assert response.status_code == 200
    assert response.json == {"object": "conversations.deleted", "deleted": True, "deleted_count": 3}
    assert listed(owner)["total"] == 0
    assert all(share_revoked_at(app, share) is not None for share in shares)
    assert share_revoked_at(app, their_share) is None
    assert other.get(f"/v1/conversations/{theirs}").status_code == 200
    again = owner.delete("/v1/conversations")
    assert again.json == {"object": "conversations.deleted", "deleted": True, "deleted_count": 0}


def test_other_users_cannot_update_or_delete_and_see_404(app, guest, new_guest, snapshot):
    created = create(guest, title="private", items=user_items(2))
    other = new_guest()
    path = f"/v1/conversations/{created['id']}"
    before = snapshot()
    for method, body in (("post", {"title": "stolen"}), ("patch", {"title": "stolen"}), ("delete", None)):
        foreign = getattr(other, method)(path, json=body)
        missing = getattr(other, method)(path.replace(created["id"], "conv_0000000000000000"), json=body)
        assert_error(foreign, 404, "conversation not found")
        assert_error(missing, 404, "conversation not found")
    assert other.delete("/v1/conversations").json["deleted_count"] == 0
    assert snapshot() == before
    assert guest.get(path).json == created


def test_list_update_and_delete_are_served_under_llm(guest):
    created = create(guest, prefix="/llm")
    assert guest.get("/llm/v1/conversations").json["data"][0]["id"] == created["id"]
    assert guest.post(f"/llm/v1/conversations/{created['id']}", json={"title": "t"}).json["title"] == "t"
    assert guest.patch(f"/llm/v1/conversations/{created['id']}", json={"referrer": "r"}).json["referrer"] == "r"
    assert guest.delete(f"/llm/v1/conversations/{created['id']}").json["deleted"] is True
    assert guest.delete("/llm/v1/conversations").json["deleted_count"] == 0


# Isolation matrix -------------------------------------------------------------------------------------------

def conversation_routes(app):
    """(method, rule) of every conversation, item and branch route (not other modules' nested ones)."""
    found = []
    for rule in app.url_map.iter_rules():
        if rule.endpoint.startswith("conversations.") and "<conversation_id>" in rule.rule:
            found += [(method, rule.rule) for method in sorted(rule.methods - {"HEAD", "OPTIONS"})]
    return found


def test_isolation_matrix_over_every_conversation_route(app, guest, new_guest, snapshot):
    owned = create(guest, items=[*dialogue(1), {"type": "function_call", "call_id": "c1", "name": "f"}])
    item = guest.get(f"/v1/conversations/{owned['id']}/items").json["data"][-1]["id"]
    guest.post(f"/v1/conversations/{owned['id']}/branches", json={"name": "side"})
    other = new_guest()
    other_key = other.post("/auth/api-keys", json={"name": "k"}).json["key"]
    other.get("/v1/conversations", headers={"Authorization": f"Bearer {other_key}"})  # last_used_at is set now
    callers = {
        "other user's token": other.headers,
        "other user's API key": {"Authorization": f"Bearer {other_key}"},
        "other user's API key header": {"X-API-Key": other_key},
        "other user's token with forged identity headers": {
            **other.headers, "X-User-ID": guest.user_id, "X-Principal-Id": guest.user_id, "X-Auth-Method": "apikey"},
    }
    body = {"title": "x", "items": user_items(1), "content": "x", "name": "side2", "status": "completed"}
    routes = conversation_routes(app)
    assert len(routes) == 16  # 4 conversation, 7 item and 5 branch method-routes
    before = snapshot()
    for method, rule in routes:
        def path(conversation_id):
            return (rule.replace("<conversation_id>", conversation_id).replace("<item_id>", item)
                    .replace("<name>", "side").replace("<call_id>", "c1"))
        for label, headers in callers.items():
            foreign = guest.client.open(path(owned["id"]), method=method, headers=headers, json=body)
            missing = guest.client.open(path("conv_0000000000000000"), method=method, headers=headers, json=body)
            assert foreign.status_code == 404, (method, rule, label, foreign.json)
            assert_error(foreign, 404, "conversation not found")
            assert_error(missing, 404, "conversation not found")
        anonymous = guest.client.open(path(owned["id"]), method=method, json=body)
        assert_error(anonymous, 401, "authentication required")
    assert snapshot() == before
    # and nothing of the owner's shows in the other user's lists
    assert other.get("/v1/conversations").json["total"] == 0
    assert other.delete("/v1/conversations").json["deleted_count"] == 0
