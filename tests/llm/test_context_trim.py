"""History trimmed to the model's context (Jan §3): Jan's estimator (4 characters a token, CJK 1.5), the system
message and the latest turns kept, the oldest turns dropped, and `"trimmed": true` on the reply."""
from __future__ import annotations

import uuid

import httpx
import openai
import pytest
from sqlalchemy import select

from functions.llm.chat.context import estimate_tokens, fit_to_context
from shared.domain.models.tables import model_catalogs, provider_models
from tests.doubles import ScriptedUpstream, reply


def test_jans_estimator_counts_four_characters_a_token_and_cjk_at_one_and_a_half():
    assert estimate_tokens("") == 0
    assert estimate_tokens("abcd" * 10) == 10
    assert estimate_tokens("漢字漢") == 2
    assert estimate_tokens("ab漢") == 2  # 0.5 + 0.67, rounded up


def message(role, text):
    return {"role": role, "content": text}


def test_the_system_message_and_the_latest_turns_are_kept():
    system = message("system", "be brief")
    turns = [message("user" if n % 2 == 0 else "assistant", f"turn {n} " + "x" * 400) for n in range(10)]
    kept, trimmed = fit_to_context([system, *turns], context_length=600, reserve=100)
    assert trimmed
    assert kept[0] == system
    assert kept[-1] == turns[-1]
    assert kept[1:] == turns[-len(kept) + 1:]
    assert sum(estimate_tokens(m["content"]) for m in kept) <= 500


def test_a_history_that_fits_is_untouched():
    messages = [message("user", "hi"), message("assistant", "hello"), message("user", "how are you")]
    assert fit_to_context(messages, context_length=2048, reserve=512) == (messages, False)


def test_no_tool_result_is_left_without_its_call():
    call = {"role": "assistant", "content": None,
            "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]}
    messages = [message("user", "x" * 2000), call, {"role": "tool", "tool_call_id": "c1", "content": "y" * 2000},
                message("user", "now")]
    kept, trimmed = fit_to_context(messages, context_length=700, reserve=100)
    assert trimmed and kept[0]["role"] != "tool" and kept[-1]["content"] == "now"


@pytest.fixture
def small_model(llm, app):
    """A provider whose model declares a 600-token context."""
    with ScriptedUpstream(models=["tiny"]) as server:
        created = llm.providers.register({"name": f"ctx-{uuid.uuid4().hex[:6]}", "vendor": f"c{uuid.uuid4().hex[:6]}",
                                          "base_url": server.base_url})
        model_id = created["models"][0]["id"]
        db = app.extensions["jan"].db
        with db.transaction() as conn:
            catalog_id = conn.execute(select(provider_models.c.model_catalog_id)
                                      .where(provider_models.c.model_public_id == model_id)).scalar_one()
            conn.execute(model_catalogs.update().where(model_catalogs.c.id == catalog_id).values(context_length=600))
        llm.catalog.invalidate_routes()
        try:
            yield model_id, server
        finally:
            llm.providers.delete(created["id"])
            llm.catalog.invalidate_routes()


def sdk(account):
    """The official SDK against the app in process (WSGI), so it parses the reply as it would over HTTP."""
    transport = httpx.WSGITransport(app=account.client.application)
    return openai.OpenAI(api_key=account.token, base_url="http://test/v1", max_retries=0,
                         http_client=httpx.Client(transport=transport))


def test_a_long_conversation_is_trimmed_to_the_models_context_and_says_so(guest, small_model):
    model_id, server = small_model
    server.script(reply("ok"))
    history = [message("system", "be brief")] + [
        message("user" if n % 2 == 0 else "assistant", f"turn {n} " + "x" * 400) for n in range(9)]
    completion = sdk(guest).chat.completions.create(model=model_id, messages=history, max_tokens=100)
    assert completion.model_extra["trimmed"] is True
    sent = server.requests[-1].body["messages"]
    assert sent[0] == history[0] and sent[-1]["content"] == history[-1]["content"]
    assert len(sent) < len(history)
    assert sum(estimate_tokens(m["content"]) for m in sent) <= 500


def test_a_short_conversation_is_sent_whole_without_the_flag(guest, small_model):
    model_id, server = small_model
    server.script(reply("ok"))
    completion = sdk(guest).chat.completions.create(model=model_id, messages=[message("user", "hi")])
    assert "trimmed" not in (completion.model_extra or {})
    assert len(server.requests[-1].body["messages"]) == 1


def test_a_providers_file_entry_declares_its_models_context(llm):
    with ScriptedUpstream(models=["declared"]) as server:
        entry = {"name": f"decl-{uuid.uuid4().hex[:6]}", "vendor": f"d{uuid.uuid4().hex[:6]}",
                 "base_url": server.base_url, "context_length": 2048}
        created = llm.providers.upsert_from_config(entry)
        try:
            llm.catalog.invalidate_routes()
            assert llm.catalog.route(created["models"][0]["id"]).context_length == 2048
            llm.providers.upsert_from_config({**entry, "context_length": 4096})
            llm.catalog.invalidate_routes()
            assert llm.catalog.route(created["models"][0]["id"]).context_length == 4096
        finally:
            llm.providers.delete(created["id"])
            llm.catalog.invalidate_routes()


def test_the_local_models_declared_context_is_the_one_its_server_runs_with():
    import yaml

    from dev import model_server
    from tests.conftest import ROOT

    for path in (ROOT / "dev" / "providers.yml", ROOT / "knative" / "components" / "cpu" / "providers.yml"):
        local = next(p for p in yaml.safe_load(path.read_text())["providers"] if p["name"] == "local")
        assert local["context_length"] == model_server.CONTEXT_LENGTH == 2048, path
