"""Jan's result write-back: a tools/call with `X-Conversation-ID` and `X-Tool-Call-ID` stores the tool's result on
that conversation's item with that call id, through the official MCP client against the running function; only the
caller's own conversation is ever written, and the caller gets the tool's result either way."""
from __future__ import annotations

import json

import httpx

from tests.conftest import SERVICE_CREDENTIALS
from tests.llm.conversation_support import create
from tests.mcp.conftest import call_tool

PENDING = {"type": "function_call", "call_id": "call_scrape1", "name": "scrape", "arguments": "{}",
           "status": "in_progress"}


def conversation_with_pending_call(account) -> str:
    return create(account, items=[PENDING, {**PENDING, "call_id": "call_other"}])["id"]


def item(account, conversation_id: str, call_id: str) -> dict:
    items = account.get(f"/v1/conversations/{conversation_id}/items").json["data"]
    return next(entry for entry in items if entry.get("call_id") == call_id)


def tracked(account, conversation_id: str, call_id: str, headers: dict | None = None) -> dict:
    return {**(headers or account.headers), "X-Conversation-ID": conversation_id, "X-Tool-Call-ID": call_id}


def test_the_result_is_written_to_the_callers_item_by_call_id(live_mcp, user, pages):
    conversation = conversation_with_pending_call(user)
    result = call_tool(live_mcp, tracked(user, conversation, "call_scrape1"), "scrape",
                       {"url": f"http://localhost:{pages.port}/page"})
    assert not result.is_error
    written = item(user, conversation, "call_scrape1")
    assert (written["status"], written["output"]) == ("completed", result.content[0].text)
    assert json.loads(written["output"])["metadata"]["title"] == "Test page"
    assert written["completed_at"]
    untouched = item(user, conversation, "call_other")
    assert untouched["status"] == "in_progress" and "output" not in untouched


def test_a_tool_failure_is_written_as_the_items_error(live_mcp, user):
    conversation = conversation_with_pending_call(user)
    result = call_tool(live_mcp, tracked(user, conversation, "call_scrape1"), "scrape",
                       {"url": "http://169.254.169.254/latest/meta-data/"})
    assert result.is_error
    written = item(user, conversation, "call_scrape1")
    assert (written["status"], written["error"]) == ("failed", result.content[0].text)
    assert "output" not in written


def test_another_users_conversation_is_never_written(live_mcp, new_user, pages):
    owner, stranger = new_user(), new_user()
    conversation = conversation_with_pending_call(owner)
    before = owner.get(f"/v1/conversations/{conversation}/items").json
    result = call_tool(live_mcp, tracked(stranger, conversation, "call_scrape1"), "scrape",
                       {"url": f"http://localhost:{pages.port}/page"})
    assert not result.is_error and json.loads(result.content[0].text)["metadata"]["title"] == "Test page"
    assert owner.get(f"/v1/conversations/{conversation}/items").json == before


def test_an_unknown_call_id_or_conversation_writes_nothing_and_still_answers(live_mcp, user, pages):
    conversation = conversation_with_pending_call(user)
    before = user.get(f"/v1/conversations/{conversation}/items").json
    for conversation_id, call_id in ((conversation, "call_missing"), ("conv_missing", "call_scrape1"),
                                     (conversation, "c" * 129)):
        result = call_tool(live_mcp, tracked(user, conversation_id, call_id), "scrape",
                           {"url": f"http://localhost:{pages.port}/page"})
        assert not result.is_error
    assert user.get(f"/v1/conversations/{conversation}/items").json == before


def test_a_delegation_token_writes_to_its_users_conversation(live_mcp, client, new_user, pages):
    """The responses function calling for a user: the write-back lands in that user's conversation."""
    owner = new_user()
    conversation = conversation_with_pending_call(owner)
    minted = client.post("/internal/delegation-tokens", json={"audience": "mcp", "user_id": owner.user_id},
                         headers={"Authorization": f"Bearer {SERVICE_CREDENTIALS['responses']}"}).json
    delegated = {"Authorization": f"Bearer {minted['access_token']}"}
    result = call_tool(live_mcp, tracked(owner, conversation, "call_scrape1", delegated), "scrape",
                       {"url": f"http://localhost:{pages.port}/page"})
    assert not result.is_error
    assert item(owner, conversation, "call_scrape1")["output"] == result.content[0].text


def test_bare_json_rpc_writes_back_too(live_mcp, user, pages):
    conversation = conversation_with_pending_call(user)
    response = httpx.post(f"{live_mcp}/v1/mcp", headers=tracked(user, conversation, "call_scrape1"), json={
        "jsonrpc": "2.0", "id": 1, "method": "tools/call",
        "params": {"name": "scrape", "arguments": {"url": f"http://localhost:{pages.port}/page"}}})
    assert response.status_code == 200
    text = response.json()["result"]["content"][0]["text"]
    assert item(user, conversation, "call_scrape1")["output"] == text
