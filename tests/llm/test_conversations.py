"""Conversations of the spine through HTTP: create (title, metadata and item limits, OpenAI's and Jan's content
forms), get (another user's conversation answers exactly like a missing one) and item listing (order, limit,
cursor paging, item shape), at the root and under /llm."""
from __future__ import annotations

import datetime as dt
import re

import pytest

from shared.errors import ERROR_TYPES

CONV_ID = re.compile(r"conv_[0-9a-z]{16}")
MSG_ID = re.compile(r"msg_[0-9a-z]{16}")
RFC3339 = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)")


def assert_error(response, status: int, message: str, *, code: str | None = None, param: str | None = None):
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.json == {
        "error": {"message": message, "type": ERROR_TYPES[status], "param": param, "code": code},
        "message": message,
        "request_id": response.headers["X-Request-Id"],
    }


def create(account, prefix: str = "", **body):
    response = account.post(f"{prefix}/v1/conversations", json=body)
    assert response.status_code == 200, response.json
    return response.json


def user_items(count: int) -> list[dict]:
    return [{"type": "message", "role": "user", "content": f"message {n}"} for n in range(1, count + 1)]


def texts(items: list[dict]) -> list[str]:
    return [item["content"][0]["text"] for item in items]


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
    ({"branch": "b" * 65}, "branch is not a valid branch name", "branch"),
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
