"""Conversation items through HTTP against PostgreSQL: add (limits, both content forms), get, Jan's delete / edit /
regenerate (fork and swap to MAIN, the old MAIN kept as a backup, no model call) followed by the client's chat
request (answered once, the user message stored once), MCP result write-back by call id, isolation, and a
constant number of queries per items page."""
from __future__ import annotations

import re

import pytest

from tests.conftest import TEST_MODEL_ID
from tests.doubles import reply
from tests.llm.conversation_support import (
    assert_error,
    count_queries,
    create,
    dialogue,
    items_of,
    stored_items,
    texts,
    user_items,
)

MSG_ID = re.compile(r"msg_[0-9a-z]{16}")
BACKUP = re.compile(r"MAIN_\d{14}(_\d+)?")

pytestmark = pytest.mark.usefixtures("provider")


def add(account, conversation_id: str, items: list[dict]):
    return account.post(f"/v1/conversations/{conversation_id}/items", json={"items": items})


def chat(account, conversation_id: str, content: str, **body):
    response = account.post("/v1/chat/completions", json={
        "model": TEST_MODEL_ID, "conversation": conversation_id,
        "messages": [{"role": "user", "content": content}], **body})
    assert response.status_code == 200, response.json
    return response.json


# Add ----------------------------------------------------------------------------------------------------------

def test_added_items_go_to_the_end_of_the_active_branch(guest):
    created = create(guest, items=user_items(2))
    response = add(guest, created["id"], [{"role": "assistant", "content": "answer"},
                                          {"type": "message", "role": "user",
                                           "content": [{"type": "input_text", "text": "more"}]}])
    assert response.status_code == 200, response.json
    body = response.json
    assert set(body) == {"object", "data", "first_id", "last_id", "has_more"}
    assert body["object"] == "list" and body["has_more"] is False
    assert [(i["sequence_number"], i["branch"], i["role"]) for i in body["data"]] == [
        (3, "MAIN", "assistant"), (4, "MAIN", "user")]
    assert (body["first_id"], body["last_id"]) == (body["data"][0]["id"], body["data"][1]["id"])
    assert texts(items_of(guest, created["id"])) == ["message 1", "message 2", "answer", "more"]


def test_jan_limits_at_the_edge_are_accepted(guest):
    created = create(guest)
    tool_calls = [{"id": f"call_{n}", "type": "function", "function": {"name": "f", "arguments": "{}"}}
                  for n in range(16)]
    items = [{"role": "user", "content": [{"type": "input_text", "text": "p"}] * 100},
             {"role": "user", "content": "x" * 100_000},
             {"role": "assistant", "content": [{"type": "tool_calls", "tool_calls": tool_calls}]}]
    assert add(guest, created["id"], items).status_code == 200
    stored = items_of(guest, created["id"])
    assert len(stored[0]["content"]) == 100 and len(stored[1]["content"][0]["text"]) == 100_000
    assert stored[2]["content"][0]["tool_calls"] == tool_calls


@pytest.mark.parametrize("body, message, param", [
    ({}, "items is required", "items"),
    ({"items": None}, "items is required", "items"),
    ({"items": "x"}, "items must be a list", "items"),
    ({"items": user_items(21)}, "at most 20 items may be added at once", "items"),
    ({"items": [{"role": "user", "content": [{"type": "input_text", "text": "p"}] * 101}]},
     "an item may hold at most 100 content parts", "content"),
    ({"items": [{"role": "user", "content": "x" * 100_001}]}, "content text must be at most 100000 characters",
     "content"),
    ({"items": [{"role": "assistant", "content": [{"type": "tool_calls", "tool_calls": [
        {"id": f"c{n}", "type": "function", "function": {"name": "f", "arguments": "{}"}} for n in range(17)]}]}]},
     "an item may carry at most 16 tool calls", "content"),
    ({"items": [{"type": "function_call_output", "call_id": "c", "output": "x" * 100_001}]},
     "content text must be at most 100000 characters", "items"),
    ({"items": [{"role": "user", "content": "ok"}, {"role": "wizard", "content": "x"}]},
     "item role must be user, assistant, system or developer", "items"),
])
def test_invalid_items_are_400_and_nothing_is_added(guest, snapshot, body, message, param):
    created = create(guest, items=user_items(1))
    before = snapshot()
    assert_error(guest.post(f"/v1/conversations/{created['id']}/items", json=body), 400, message, param=param)
    assert snapshot() == before


def test_an_empty_items_list_adds_nothing(guest, snapshot):
    created = create(guest, items=user_items(1))
    before = snapshot()
    response = add(guest, created["id"], [])
    assert response.status_code == 200
    assert response.json == {"object": "list", "data": [], "first_id": None, "last_id": None, "has_more": False}
    assert snapshot() == before


def test_a_malformed_items_body_is_400(guest, snapshot):
    created = create(guest)
    before = snapshot()
    response = guest.post(f"/v1/conversations/{created['id']}/items", data="{", content_type="application/json")
    assert_error(response, 400, "invalid JSON in request body")
    assert snapshot() == before


# Get ----------------------------------------------------------------------------------------------------------

def test_get_item(guest):
    created = create(guest, items=user_items(2))
    listed = items_of(guest, created["id"])
    response = guest.get(f"/v1/conversations/{created['id']}/items/{listed[1]['id']}")
    assert response.status_code == 200 and response.json == listed[1]


def test_an_item_of_another_conversation_is_404(guest):
    first = create(guest, items=user_items(1))
    second = create(guest, items=user_items(1))
    item = items_of(guest, first["id"])[0]["id"]
    assert_error(guest.get(f"/v1/conversations/{second['id']}/items/{item}"), 404, "item not found")
    assert_error(guest.get(f"/v1/conversations/{first['id']}/items/msg_0000000000000000"), 404, "item not found")


# Delete ---------------------------------------------------------------------------------------------------

def test_delete_forks_before_the_item_and_keeps_the_old_main_as_backup(guest):
    created = create(guest, items=dialogue(2))  # q1 a1 q2 a2
    before = items_of(guest, created["id"])
    response = guest.delete(f"/v1/conversations/{created['id']}/items/{before[2]['id']}")
    assert response.status_code == 200, response.json
    body = response.json
    assert BACKUP.fullmatch(body.pop("old_main_backup"))
    assert body == {"branch": "MAIN", "branch_created": True, "deleted": True}
    main = items_of(guest, created["id"])
    assert texts(main) == ["question 1", "answer 1"]  # Jan: MAIN ends before the deleted item
    assert [i["sequence_number"] for i in main] == [1, 2]
    assert all(MSG_ID.fullmatch(i["id"]) and i["id"] not in {b["id"] for b in before} for i in main)
    backup = items_of(guest, created["id"], branch=response.json["old_main_backup"])
    assert [i["id"] for i in backup] == [i["id"] for i in before]  # the original, untouched
    branches = guest.get(f"/v1/conversations/{created['id']}/branches").json
    assert branches["active_branch"] == "MAIN"
    assert {b["name"]: b["item_count"] for b in branches["data"]} == {
        "MAIN": 2, response.json["old_main_backup"]: 4}


def test_deleting_the_first_item_leaves_main_empty(guest):
    created = create(guest, items=user_items(2))
    first = items_of(guest, created["id"])[0]["id"]
    body = guest.delete(f"/v1/conversations/{created['id']}/items/{first}").json
    assert items_of(guest, created["id"]) == []
    assert texts(items_of(guest, created["id"], branch=body["old_main_backup"])) == ["message 1", "message 2"]


def test_deleting_an_unknown_item_is_404_and_changes_nothing(guest, snapshot):
    created = create(guest, items=user_items(2))
    before = snapshot()
    assert_error(guest.delete(f"/v1/conversations/{created['id']}/items/msg_0000000000000000"), 404,
                 "item not found")
    assert snapshot() == before


# Edit -----------------------------------------------------------------------------------------------------

def test_edit_swaps_a_new_main_in_and_does_not_call_the_model(guest, upstream):
    created = create(guest, items=dialogue(2))
    before = items_of(guest, created["id"])
    response = guest.post(f"/v1/conversations/{created['id']}/items/{before[2]['id']}/edit",
                          json={"content": "question 2, edited"})
    assert response.status_code == 200, response.json
    body = response.json
    assert upstream.requests == []
    assert set(body) == {"branch", "old_main_backup", "branch_created", "new_branch", "user_item"}
    assert body["branch"] == "MAIN" and body["branch_created"] is True and BACKUP.fullmatch(body["old_main_backup"])
    user_item = body["user_item"]
    assert (user_item["branch"], user_item["sequence_number"], user_item["role"], user_item["content"]) == (
        "MAIN", 3, "user", [{"type": "input_text", "text": "question 2, edited"}])
    new_branch = body["new_branch"]
    assert (new_branch["name"], new_branch["item_count"], new_branch["is_active"], new_branch["parent_branch"],
            new_branch["description"]) == ("MAIN", 3, True, "MAIN", "Edited message branch")
    assert new_branch["forked_from_item_id"] == before[1]["id"]  # the fork point on the source branch
    assert texts(items_of(guest, created["id"])) == ["question 1", "answer 1", "question 2, edited"]
    assert items_of(guest, created["id"])[2] == user_item
    assert [i["id"] for i in items_of(guest, created["id"], branch=body["old_main_backup"])] == [
        i["id"] for i in before]


def test_the_chat_request_after_an_edit_answers_once_and_stores_the_message_once(guest, upstream):
    created = create(guest, items=dialogue(2))
    target = items_of(guest, created["id"])[2]["id"]
    guest.post(f"/v1/conversations/{created['id']}/items/{target}/edit", json={"content": "new question"})
    answer = chat(guest, created["id"], "new question")
    assert answer["choices"][0]["message"]["content"] == "echo: new question"
    assert upstream.requests[-1].body["messages"] == [
        {"role": "user", "content": "question 1"}, {"role": "assistant", "content": "answer 1"},
        {"role": "user", "content": "new question"}]
    main = items_of(guest, created["id"])
    assert [(i["role"], i["content"][0]["text"]) for i in main] == [
        ("user", "question 1"), ("assistant", "answer 1"), ("user", "new question"),
        ("assistant", "echo: new question")]
    assert [i["sequence_number"] for i in main] == [1, 2, 3, 4]


def test_edit_accepts_content_parts(guest):
    created = create(guest, items=user_items(1))
    item = items_of(guest, created["id"])[0]["id"]
    response = guest.post(f"/v1/conversations/{created['id']}/items/{item}/edit",
                          json={"content": [{"type": "text", "text": "parts"}], "regenerate": True})
    assert response.status_code == 200, response.json
    assert response.json["user_item"]["content"] == [{"type": "input_text", "text": "parts"}]
    assert response.json["new_branch"]["forked_from_item_id"] is None


def test_editing_an_item_no_longer_on_the_active_branch_forks_from_its_own_branch(guest):
    """Jan: the fork starts from the item's branch at the item's position (here the backup the first edit
    made), and the result is swapped to MAIN as usual; the previous MAIN is kept."""
    created = create(guest, items=dialogue(2))
    item = items_of(guest, created["id"])[2]["id"]  # question 2
    first = guest.post(f"/v1/conversations/{created['id']}/items/{item}/edit", json={"content": "one"})
    assert first.status_code == 200
    second = guest.post(f"/v1/conversations/{created['id']}/items/{item}/edit", json={"content": "two"})
    assert second.status_code == 200, second.json
    assert texts(items_of(guest, created["id"])) == ["question 1", "answer 1", "two"]
    assert second.json["user_item"]["branch"] == "MAIN"
    assert texts(items_of(guest, created["id"], second.json["old_main_backup"])) == ["question 1", "answer 1", "one"]
    assert texts(items_of(guest, created["id"], first.json["old_main_backup"])) == [
        "question 1", "answer 1", "question 2", "answer 2"]


def test_editing_an_item_of_another_branch_than_the_active_one(guest):
    """A client edits a message it fetched before it activated another branch."""
    created = create(guest, items=dialogue(2))
    original = items_of(guest, created["id"])
    made = guest.post(f"/v1/conversations/{created['id']}/branches",
                      json={"name": "side", "fork_from_item_id": original[1]["id"]})
    assert made.status_code == 201, made.json
    assert guest.post(f"/v1/conversations/{created['id']}/branches/side/activate").status_code == 200
    response = guest.post(f"/v1/conversations/{created['id']}/items/{original[2]['id']}/edit",
                          json={"content": "edited on MAIN"})
    assert response.status_code == 200, response.json
    assert texts(items_of(guest, created["id"])) == ["question 1", "answer 1", "edited on MAIN"]
    assert texts(items_of(guest, created["id"], "side")) == ["question 1", "answer 1"]


def test_regenerating_an_answer_no_longer_on_the_active_branch_forks_from_its_own_branch(guest):
    created = create(guest, items=dialogue(2))
    answer = items_of(guest, created["id"])[3]["id"]  # answer 2
    edited = guest.post(f"/v1/conversations/{created['id']}/items/{items_of(guest, created['id'])[0]['id']}/edit",
                        json={"content": "other start"})
    assert edited.status_code == 200
    response = guest.post(f"/v1/conversations/{created['id']}/items/{answer}/regenerate")
    assert response.status_code == 200, response.json
    assert texts(items_of(guest, created["id"])) == ["question 1", "answer 1", "question 2"]
    assert texts(items_of(guest, created["id"], response.json["old_main_backup"])) == ["other start"]


@pytest.mark.parametrize("index, body, status, message, param", [
    (1, {"content": "x"}, 400, "only user messages can be edited", "item_id"),
    (0, {}, 400, "content is required", "content"),
    (0, {"content": "   "}, 400, "content is required", "content"),
    (0, {"content": []}, 400, "content is required", "content"),
    (0, {"content": 5}, 400, "content must be a string or a list of content parts", "content"),
    (0, {"content": "x" * 100_001}, 400, "content text must be at most 100000 characters", "content"),
    (0, {"content": "x", "regenerate": "yes"}, 400, "regenerate must be a boolean", "regenerate"),
])
def test_invalid_edits_change_nothing(guest, snapshot, index, body, status, message, param):
    created = create(guest, items=dialogue(1))
    item = items_of(guest, created["id"])[index]["id"]
    before = snapshot()
    assert_error(guest.post(f"/v1/conversations/{created['id']}/items/{item}/edit", json=body), status, message,
                 param=param)
    assert_error(guest.post(f"/v1/conversations/{created['id']}/items/msg_0000000000000000/edit",
                            json={"content": "x"}), 404, "item not found")
    assert snapshot() == before


# Regenerate -------------------------------------------------------------------------------------------------

def test_regenerate_an_answer_then_the_chat_request_replaces_it(guest, upstream):
    created = create(guest, items=dialogue(2))
    before = items_of(guest, created["id"])
    response = guest.post(f"/v1/conversations/{created['id']}/items/{before[3]['id']}/regenerate")
    assert response.status_code == 200, response.json
    body = response.json
    assert upstream.requests == []
    assert set(body) == {"branch", "old_main_backup", "branch_created", "new_branch", "user_item_id"}
    main = items_of(guest, created["id"])
    assert texts(main) == ["question 1", "answer 1", "question 2"]
    assert body["user_item_id"] == main[-1]["id"] != before[2]["id"]
    assert body["new_branch"]["item_count"] == 3
    assert body["new_branch"]["description"] == "Regenerated response branch"
    upstream.script(reply(content="a better answer 2"))
    chat(guest, created["id"], "question 2")
    assert upstream.requests[-1].body["messages"][-2:] == [
        {"role": "assistant", "content": "answer 1"}, {"role": "user", "content": "question 2"}]
    assert texts(items_of(guest, created["id"])) == ["question 1", "answer 1", "question 2", "a better answer 2"]
    assert texts(items_of(guest, created["id"], branch=body["old_main_backup"])) == texts(before)


def test_regenerate_from_a_user_message_keeps_it(guest):
    created = create(guest, items=dialogue(2))
    question = items_of(guest, created["id"])[2]["id"]
    body = guest.post(f"/v1/conversations/{created['id']}/items/{question}/regenerate",
                      json={"model": TEST_MODEL_ID, "temperature": 0.3}).json
    assert texts(items_of(guest, created["id"])) == ["question 1", "answer 1", "question 2"]
    assert body["user_item_id"] == items_of(guest, created["id"])[-1]["id"]


def test_regenerate_rules(guest, snapshot):
    created = create(guest, items=[{"role": "system", "content": "be brief"}, {"role": "assistant",
                                                                                "content": "hello"}])
    system, greeting = (item["id"] for item in items_of(guest, created["id"]))
    path = f"/v1/conversations/{created['id']}/items"
    before = snapshot()
    assert_error(guest.post(f"{path}/{system}/regenerate"), 400,
                 "only user or assistant messages can be regenerated", param="item_id")
    assert_error(guest.post(f"{path}/{greeting}/regenerate"), 404, "user message not found for regeneration")
    assert_error(guest.post(f"{path}/msg_0000000000000000/regenerate"), 404, "item not found")
    assert_error(guest.post(f"{path}/{greeting}/regenerate", data="{", content_type="application/json"), 400,
                 "invalid JSON in request body")
    assert snapshot() == before


# MCP write-back ---------------------------------------------------------------------------------------------

def test_a_tool_result_written_back_by_call_id_is_replayed_as_history(guest, upstream):
    created = create(guest)
    calls = [{"id": "call_mcp1", "type": "function", "function": {"name": "search", "arguments": '{"q": "x"}'}}]
    upstream.script(reply(content=None, tool_calls=calls, finish_reason="tool_calls"))
    chat(guest, created["id"], "look it up")
    response = guest.patch(f"/v1/conversations/{created['id']}/items/by-call-id/call_mcp1",
                           json={"status": "completed", "output": {"results": ["r1"]},
                                 "server_label": "Jan MCP Server"})
    assert response.status_code == 200, response.json
    item = response.json
    assert (item["type"], item["call_id"], item["name"], item["status"], item["output"], item["server_label"]) == (
        "function_call", "call_mcp1", "search", "completed", '{"results": ["r1"]}', "Jan MCP Server")
    assert item["completed_at"]
    chat(guest, created["id"], "and then?")
    assert upstream.requests[-1].body["messages"] == [
        {"role": "user", "content": "look it up"},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "call_mcp1", "type": "function", "function": {"name": "search", "arguments": '{"q": "x"}'}}]},
        {"role": "tool", "tool_call_id": "call_mcp1", "content": '{"results": ["r1"]}'},
        {"role": "user", "content": "and then?"}]


def test_write_back_updates_error_name_and_arguments(guest):
    created = create(guest, items=[{"type": "function_call", "call_id": "c1", "name": "old", "arguments": "{}",
                                    "status": "in_progress"}])
    body = guest.patch(f"/v1/conversations/{created['id']}/items/by-call-id/c1",
                       json={"status": "failed", "error": "tool timed out", "name": "new",
                             "arguments": {"q": 1}}).json
    assert (body["status"], body["error"], body["name"], body["arguments"]) == (
        "failed", "tool timed out", "new", '{"q": 1}')
    calling = guest.patch(f"/v1/conversations/{created['id']}/items/by-call-id/c1", json={"status": "calling"}).json
    assert calling["status"] == "calling" and "completed_at" not in calling


def test_write_back_targets_the_active_branch_copy(guest):
    created = create(guest, items=[{"role": "user", "content": "q"},
                                   {"type": "function_call", "call_id": "c1", "name": "f", "arguments": "{}"},
                                   {"role": "user", "content": "next"}])
    last = items_of(guest, created["id"])[2]["id"]
    backup = guest.post(f"/v1/conversations/{created['id']}/items/{last}/edit", json={"content": "x"}).json[
        "old_main_backup"]
    guest.patch(f"/v1/conversations/{created['id']}/items/by-call-id/c1", json={"status": "completed",
                                                                                 "output": "done"})
    assert items_of(guest, created["id"])[1]["output"] == "done"
    assert "output" not in items_of(guest, created["id"], branch=backup)[1]


@pytest.mark.parametrize("call_id, body, status, message, param", [
    ("c1", {}, 400, "status must be one of: calling, cancelled, completed, failed, generating, in_progress, "
                    "incomplete, rate_limited, searching, streaming", "status"),
    ("c1", {"status": "done"}, 400, "status must be one of: calling, cancelled, completed, failed, generating, "
                                    "in_progress, incomplete, rate_limited, searching, streaming", "status"),
    ("c1", {"status": "completed", "name": 5}, 400, "name must be a string", "name"),
    ("c1", {"status": "completed", "server_label": "s" * 256}, 400, "server_label must be at most 255 characters",
     "server_label"),
    ("c1", {"status": "completed", "output": "o" * 100_001}, 400, "output must be at most 100000 characters",
     "output"),
    ("unknown", {"status": "completed"}, 404, "item not found", None),
    ("c" * 129, {"status": "completed"}, 404, "item not found", None),
    ("o1", {"status": "completed"}, 404, "item not found", None),  # an output item is not the call
])
def test_invalid_write_backs_change_nothing(guest, snapshot, call_id, body, status, message, param):
    created = create(guest, items=[{"type": "function_call", "call_id": "c1", "name": "f"},
                                   {"type": "function_call_output", "call_id": "o1", "output": "x"}])
    before = snapshot()
    assert_error(guest.patch(f"/v1/conversations/{created['id']}/items/by-call-id/{call_id}", json=body), status,
                 message, param=param)
    assert snapshot() == before


# Isolation --------------------------------------------------------------------------------------------------

def test_every_item_route_answers_404_for_another_users_conversation(guest, new_guest, snapshot):
    created = create(guest, items=[*dialogue(1), {"type": "function_call", "call_id": "c1", "name": "f"}])
    item = items_of(guest, created["id"])[0]["id"]
    other = new_guest()
    before = snapshot()
    for conversation_id in (created["id"], "conv_0000000000000000"):
        path = f"/v1/conversations/{conversation_id}/items"
        for response in (other.get(path), other.post(path, json={"items": user_items(1)}),
                         other.get(f"{path}/{item}"), other.delete(f"{path}/{item}"),
                         other.post(f"{path}/{item}/edit", json={"content": "x"}),
                         other.post(f"{path}/{item}/regenerate"),
                         other.patch(f"{path}/by-call-id/c1", json={"status": "completed"})):
            assert_error(response, 404, "conversation not found")
    assert snapshot() == before


def test_item_routes_are_served_under_llm(guest):
    created = create(guest, items=dialogue(1))
    path = f"/llm/v1/conversations/{created['id']}/items"
    item = guest.get(path).json["data"][-1]["id"]
    assert guest.get(f"{path}/{item}").status_code == 200
    assert guest.post(path, json={"items": user_items(1)}).status_code == 200
    assert guest.post(f"{path}/{item}/edit", json={"content": "e"}).status_code == 200
    last = guest.get(path).json["data"][0]["id"]
    assert guest.post(f"{path}/{last}/regenerate").status_code == 200
    assert guest.delete(f"{path}/{last}").status_code == 200


# Queries ----------------------------------------------------------------------------------------------------

def test_items_page_queries_do_not_grow_with_the_page(app, guest):
    small = create(guest, items=user_items(2))
    large = create(guest, items=user_items(20))
    for start in (21, 41):
        add(guest, large["id"], user_items(20, start=start))
    counts = []
    for created, size in ((small, 2), (large, 60)):
        path = f"/v1/conversations/{created['id']}/items"
        with count_queries(app) as plain:
            assert len(guest.get(path, query_string={"limit": 100}).json["data"]) == size
        cursor = guest.get(path, query_string={"limit": 1}).json["first_id"]
        with count_queries(app) as paged:
            guest.get(path, query_string={"limit": 100, "after": cursor})
        counts.append((len(plain), len(paged)))
    assert counts[0] == counts[1], counts
    assert counts[1][1] == counts[1][0] + 1  # the cursor lookup
    assert counts[1][0] <= 3, counts  # authentication + conversation + page


def test_no_duplicate_sequence_numbers_after_many_operations(app, guest):
    created = create(guest, items=dialogue(3))
    path = f"/v1/conversations/{created['id']}/items"
    ids = [i["id"] for i in items_of(guest, created["id"])]
    guest.post(f"{path}/{ids[4]}/edit", json={"content": "e1"})
    guest.post(f"{path}/{items_of(guest, created['id'])[3]['id']}/regenerate")
    guest.delete(f"{path}/{items_of(guest, created['id'])[1]['id']}")
    add(guest, created["id"], user_items(3))
    rows = stored_items(app, created["id"])
    positions = [(row.branch, row.sequence_number) for row in rows]
    assert len(positions) == len(set(positions))
    for branch in {row.branch for row in rows}:
        numbers = sorted(row.sequence_number for row in rows if row.branch == branch)
        assert numbers == list(range(1, len(numbers) + 1)), branch
