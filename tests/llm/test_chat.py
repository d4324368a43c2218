"""Non-streaming chat completions through the llm function (Flask test client, real PostgreSQL, scripted upstream)."""
from __future__ import annotations

import pytest
from sqlalchemy import select

from shared.domain.usage.tables import usage_records
from shared.schema import users
from tests.conftest import TEST_MODEL, TEST_MODEL_ID
from tests.doubles import error, hang, malformed, reply

pytestmark = pytest.mark.usefixtures("provider")


def chat(account, **body):
    body.setdefault("model", TEST_MODEL_ID)
    body.setdefault("messages", [{"role": "user", "content": "hello"}])
    return account.post("/v1/chat/completions", json=body)


def usage_rows(app, account):
    with app.extensions["jan"].db.read() as conn:
        user_id = conn.execute(select(users.c.id).where(users.c.public_id == account.user_id)).scalar_one()
        return conn.execute(select(usage_records).where(usage_records.c.user_id == user_id)
                            .order_by(usage_records.c.id)).all()


def test_reply_is_the_upstream_body_with_the_upstream_model_id_rewritten(guest, upstream):
    response = chat(guest)
    assert response.status_code == 200
    body = response.json
    assert body["object"] == "chat.completion"
    assert body["choices"][0]["message"] == {"role": "assistant", "content": "echo: hello"}
    sent = upstream.requests[-1]
    assert sent.body["model"] == TEST_MODEL
    assert "conversation" not in body
    assert float(response.headers["X-Overhead-Duration-Ms"]) >= 0


def test_standard_parameters_pass_through_and_jan_fields_do_not(guest, upstream):
    tools = [{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}]
    chat(guest, tools=tools, tool_choice="auto", response_format={"type": "json_object"}, stop=["\n\n"], seed=7,
         logprobs=True, top_logprobs=2, n=1, temperature=0.2, top_p=0.9, max_tokens=20, top_k=40,
         store=False, store_reasoning=True, enable_thinking=False, user="someone")
    sent = upstream.requests[-1].body
    for name, value in {"tools": tools, "tool_choice": "auto", "response_format": {"type": "json_object"},
                        "stop": ["\n\n"], "seed": 7, "logprobs": True, "top_logprobs": 2, "n": 1,
                        "temperature": 0.2, "top_p": 0.9, "max_tokens": 20, "top_k": 40, "user": "someone"}.items():
        assert sent[name] == value, name
    for jan_only in ("store", "store_reasoning", "enable_thinking", "conversation"):
        assert jan_only not in sent


def test_tool_choice_is_dropped_without_tools(guest, upstream):
    chat(guest, tool_choice="auto")
    assert "tool_choice" not in upstream.requests[-1].body


def test_tool_calls_come_back_unchanged(guest, upstream):
    calls = [{"id": "call_1", "type": "function", "function": {"name": "lookup", "arguments": '{"q": "x"}'}}]
    upstream.script(reply(content=None, tool_calls=calls, finish_reason="tool_calls"))
    body = chat(guest).json
    assert body["choices"][0]["message"]["tool_calls"] == calls
    assert body["choices"][0]["finish_reason"] == "tool_calls"


def test_json_stringified_content_parts_are_decoded(guest, upstream):
    chat(guest, messages=[{"role": "user", "content": '[{"type": "text", "text": "hi"}]'}])
    assert upstream.requests[-1].body["messages"][-1]["content"] == [{"type": "text", "text": "hi"}]


def test_every_request_records_its_usage(app, guest, upstream):
    chat(guest)
    (row,) = usage_rows(app, guest)
    assert row.model == TEST_MODEL_ID and row.status == "completed" and row.stream is False
    assert row.prompt_tokens > 0 and row.total_tokens == row.prompt_tokens + row.completion_tokens
    assert row.latency_ms > 0 and row.api_key_id is None


def test_api_key_requests_record_the_key(app, guest, upstream):
    key = guest.post("/auth/api-keys", json={"name": "ci"}).json
    with guest.client.post("/v1/chat/completions", headers={"Authorization": f"Bearer {key['key']}"},
                           json={"model": TEST_MODEL_ID, "messages": [{"role": "user", "content": "hey"}]}) as response:
        pass
    assert response.status_code == 200
    assert response.headers["X-Auth-Method"] == "apikey"
    assert usage_rows(app, guest)[-1].api_key_id == key["id"]


@pytest.mark.parametrize("behavior, status, code", [
    (error(500), 502, "upstream_error"),
    (error(503), 502, "upstream_error"),
    (error(401), 502, "upstream_error"),
    (error(429, headers={"Retry-After": "7"}), 429, None),
    (error(400), 400, "upstream_rejected"),
    (malformed(), 502, "upstream_invalid"),
])
def test_upstream_failures_are_errors_not_fallback_answers(guest, upstream, snapshot, behavior, status, code):
    upstream.script(behavior)
    response = chat(guest)
    assert response.status_code == status
    assert response.json["error"]["message"] == response.json["message"]
    if code:
        assert response.json["error"]["code"] == code
    if status == 429:
        assert response.headers["Retry-After"] == "7"


def test_upstream_timeout_is_504(guest, upstream):
    upstream.script(hang(10))
    response = chat(guest)  # the test app's UPSTREAM_TIMEOUT_SECONDS is 5
    assert response.status_code == 504
    assert response.json["error"]["type"] == "upstream_timeout"


def test_unreachable_provider_is_502(app, admin, guest):
    created = admin.post("/v1/admin/providers", json={"name": "gone", "vendor": "gone",
                                                      "base_url": "http://127.0.0.1:9/v1"}).json
    assert created["models"] == []
    from sqlalchemy import insert
    from shared import ids
    from shared.domain.models.tables import provider_models, providers
    with app.extensions["jan"].db.transaction() as conn:
        provider_id = conn.execute(select(providers.c.id).where(providers.c.public_id == created["id"])).scalar_one()
        conn.execute(insert(provider_models).values(public_id=ids.public_id("pmdl"), provider_id=provider_id,
                                                    model_public_id="gone/model", provider_original_model_id="model",
                                                    model_display_name="model"))
    app.extensions["jan"].services["llm"].catalog.invalidate_routes()
    response = chat(guest, model="gone/model")
    assert response.status_code == 502
    assert response.json["error"]["code"] == "upstream_unreachable"


class TestConversationPersistence:
    def test_conversation_id_persists_input_and_reply_and_is_returned(self, guest, upstream):
        conversation = guest.post("/v1/conversations", json={"title": "chat"}).json
        body = chat(guest, conversation=conversation["id"]).json
        assert body["conversation"] == {"id": conversation["id"], "title": "chat"}
        items = guest.get(f"/v1/conversations/{conversation['id']}/items?order=asc").json["data"]
        assert [(i["role"], i["content"][0]["text"], i["status"]) for i in items] == [
            ("user", "hello", "completed"), ("assistant", "echo: hello", "completed")]
        assert items[1]["usage"]["total_tokens"] > 0
        assert items[1]["finish_reason"] == "stop"

    def test_conversation_object_form_is_accepted(self, guest, upstream):
        conversation = guest.post("/v1/conversations", json={}).json
        assert chat(guest, conversation={"id": conversation["id"]}).status_code == 200
        assert len(guest.get(f"/v1/conversations/{conversation['id']}/items").json["data"]) == 2

    def test_history_is_prepended_on_the_next_request(self, guest, upstream):
        conversation = guest.post("/v1/conversations", json={}).json
        chat(guest, conversation=conversation["id"], messages=[{"role": "user", "content": "first"}])
        chat(guest, conversation=conversation["id"], messages=[{"role": "user", "content": "second"}])
        assert upstream.requests[-1].body["messages"] == [
            {"role": "user", "content": "first"}, {"role": "assistant", "content": "echo: first"},
            {"role": "user", "content": "second"}]

    def test_store_false_prepends_history_but_stores_nothing(self, guest, upstream):
        conversation = guest.post("/v1/conversations", json={}).json
        chat(guest, conversation=conversation["id"], messages=[{"role": "user", "content": "kept"}])
        chat(guest, conversation=conversation["id"], store=False, messages=[{"role": "user", "content": "secret"}])
        assert upstream.requests[-1].body["messages"][0] == {"role": "user", "content": "kept"}
        assert len(guest.get(f"/v1/conversations/{conversation['id']}/items").json["data"]) == 2

    def test_a_repeated_user_message_is_not_stored_twice(self, guest, upstream):
        conversation = guest.post("/v1/conversations", json={"items": [
            {"type": "message", "role": "user", "content": "again"}]}).json
        chat(guest, conversation=conversation["id"], messages=[{"role": "user", "content": "again"}])
        roles = [i["role"] for i in guest.get(f"/v1/conversations/{conversation['id']}/items?order=asc").json["data"]]
        assert roles == ["user", "assistant"]

    def test_tool_calls_are_stored_as_function_call_items_and_results_replayed(self, guest, upstream):
        conversation = guest.post("/v1/conversations", json={}).json
        calls = [{"id": "call_9", "type": "function", "function": {"name": "lookup", "arguments": "{}"}}]
        upstream.script(reply(content=None, tool_calls=calls, finish_reason="tool_calls"))
        chat(guest, conversation=conversation["id"], messages=[{"role": "user", "content": "look it up"}])
        chat(guest, conversation=conversation["id"],
             messages=[{"role": "tool", "tool_call_id": "call_9", "content": "42"}])
        items = guest.get(f"/v1/conversations/{conversation['id']}/items?order=asc").json["data"]
        assert [i["type"] for i in items] == ["message", "function_call", "function_call_output", "message"]
        assert items[1]["call_id"] == "call_9" and items[1]["name"] == "lookup"
        sent = upstream.requests[-1].body["messages"]
        assert sent[1]["tool_calls"][0]["id"] == "call_9"
        assert sent[-1] == {"role": "tool", "tool_call_id": "call_9", "content": "42"}

    def test_referrer_creates_a_conversation(self, guest, upstream):
        response = guest.post("/v1/chat/completions?referrer=web",
                              json={"model": TEST_MODEL_ID, "messages": [{"role": "user", "content": "x"}]})
        conversation = response.json["conversation"]
        assert conversation["id"].startswith("conv_")
        assert guest.get(f"/v1/conversations/{conversation['id']}").json["referrer"] == "web"

    def test_upstream_failure_is_stored_as_failed_never_completed(self, guest, upstream):
        conversation = guest.post("/v1/conversations", json={}).json
        upstream.script(error(500))
        assert chat(guest, conversation=conversation["id"]).status_code == 502
        items = guest.get(f"/v1/conversations/{conversation['id']}/items?order=asc").json["data"]
        assert items[-1]["role"] == "assistant" and items[-1]["status"] == "failed"
        assert "500" in items[-1]["error"]
        # failed items are not replayed as history
        chat(guest, conversation=conversation["id"], messages=[{"role": "user", "content": "retry"}])
        assert upstream.requests[-1].body["messages"] == [{"role": "user", "content": "hello"},
                                                          {"role": "user", "content": "retry"}]

    def test_another_users_conversation_is_404_and_nothing_is_sent_upstream(self, guest, new_guest, upstream, snapshot):
        other = new_guest()
        conversation = other.post("/v1/conversations", json={}).json
        before = snapshot()
        response = chat(guest, conversation=conversation["id"])
        assert response.status_code == 404
        assert response.json["error"]["type"] == "not_found_error"
        assert upstream.requests == []
        assert snapshot() == before
