"""The official `openai` SDK against the llm function served as in its image: every reply must parse."""
from __future__ import annotations

import json
import urllib.request

import openai
import pytest

from tests.conftest import TEST_MODEL_ID
from tests.doubles import error, reply, stream, stream_then_fail


@pytest.fixture
def sdk(live_llm):
    request = urllib.request.Request(f"{live_llm}/auth/guest-login", method="POST")
    with urllib.request.urlopen(request) as response:
        token = json.loads(response.read())["access_token"]
    return openai.OpenAI(base_url=f"{live_llm}/v1", api_key=token, max_retries=0)


def test_models_list_and_retrieve(sdk):
    models = sdk.models.list()
    assert TEST_MODEL_ID in [m.id for m in models.data]
    model = sdk.models.retrieve(TEST_MODEL_ID)
    assert model.id == TEST_MODEL_ID and model.object == "model"
    with pytest.raises(openai.NotFoundError) as raised:
        sdk.models.retrieve("nobody/nothing")
    assert "not found" in raised.value.message


def test_chat_completion(sdk, upstream):
    completion = sdk.chat.completions.create(model=TEST_MODEL_ID, messages=[{"role": "user", "content": "sdk"}])
    assert completion.choices[0].message.content == "echo: sdk"
    assert completion.usage.total_tokens > 0


def test_chat_completion_with_tool_calls(sdk, upstream):
    upstream.script(reply(tool_calls=[{"id": "call_1", "name": "weather", "arguments": '{"city": "Hanoi"}'}]))
    completion = sdk.chat.completions.create(
        model=TEST_MODEL_ID, messages=[{"role": "user", "content": "weather?"}],
        tools=[{"type": "function", "function": {"name": "weather", "parameters": {"type": "object"}}}])
    call = completion.choices[0].message.tool_calls[0]
    assert call.function.name == "weather" and json.loads(call.function.arguments) == {"city": "Hanoi"}


def test_chat_stream_with_usage(sdk, upstream):
    upstream.script(stream(["a", "b", "c"]))
    chunks = list(sdk.chat.completions.create(model=TEST_MODEL_ID, messages=[{"role": "user", "content": "x"}],
                                              stream=True, stream_options={"include_usage": True}))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "abc"
    assert chunks[-1].usage.total_tokens > 0


def test_chat_stream_failure_mid_stream_raises(sdk, upstream):
    upstream.script(stream_then_fail(after_chunks=2))
    with pytest.raises(openai.APIError):
        list(sdk.chat.completions.create(model=TEST_MODEL_ID, messages=[{"role": "user", "content": "x"}],
                                         stream=True))


def test_errors_parse_as_openai_errors(sdk, upstream):
    with pytest.raises(openai.BadRequestError) as raised:
        sdk.chat.completions.create(model=TEST_MODEL_ID, messages=[])
    assert raised.value.body["message"] == "messages cannot be empty"
    upstream.script(error(500))
    with pytest.raises(openai.InternalServerError) as raised:
        sdk.chat.completions.create(model=TEST_MODEL_ID, messages=[{"role": "user", "content": "x"}])
    assert raised.value.status_code == 502


def test_bad_credentials_are_authentication_errors(live_llm):
    client = openai.OpenAI(base_url=f"{live_llm}/v1", api_key="sk_live_" + "0" * 48, max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        client.models.list()
