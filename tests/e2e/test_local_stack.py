"""End to end: the dev gateway (routing by gateway/kong.yml) → the llm function (gunicorn, as in its image) →
the real local model server (llama.cpp with SmolLM2-135M), with real PostgreSQL. It never skips: a
missing model server is installed (`make test` does it first), and a failure to start fails the test."""
from __future__ import annotations

import os
import subprocess
import sys

import openai
import pytest
import urllib3

from dev import model_server, stack
from tests.conftest import ROOT, free_port, wait_http

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def model_port():
    return free_port()


@pytest.fixture(scope="module")
def model_process(model_port):
    """The real local model server, installed first if needed: this test never skips."""
    process = stack.start_model_server(port=model_port, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    yield process
    process.terminate()
    process.wait(timeout=15)


@pytest.fixture(scope="module")
def model_url(model_port, model_process):
    return model_server.base_url(model_port)


@pytest.fixture(autouse=True)
def model_server_stays_up(model_process):
    """A model server that dies is named, with its signal, in the failing test's report."""
    yield
    ended = model_server.exit_description(model_process)
    if ended is not None:
        pytest.fail(f"the local model server {ended} during this test")


@pytest.fixture(scope="module")
def gateway(llm_env, model_url, app, llm, tmp_path_factory):
    with app.app_context():
        registered = llm.providers.register({"name": "local-e2e", "vendor": "local", "base_url": model_url})
    assert registered["models"], registered
    llm.catalog.invalidate_routes()
    llm_port, gateway_port = free_port(), free_port()
    logs = tmp_path_factory.mktemp("e2e")
    env = {**os.environ, **llm_env, "HOST": "127.0.0.1", "UPSTREAM_TIMEOUT_SECONDS": "120"}
    processes = [
        subprocess.Popen(stack.function_command("llm"), cwd=ROOT, env={**env, "PORT": str(llm_port)},
                         stdout=open(logs / "llm.log", "wb"), stderr=subprocess.STDOUT),
        subprocess.Popen(stack.gateway_command({"llm": f"http://127.0.0.1:{llm_port}"}, port=gateway_port),
                         cwd=ROOT, env=env, stdout=open(logs / "gateway.log", "wb"), stderr=subprocess.STDOUT),
    ]
    base = f"http://127.0.0.1:{gateway_port}"
    try:
        wait_http(f"{base}/readyz")
        yield {"base": base, "model": registered["models"][0]["id"]}
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()


@pytest.fixture(scope="module")
def http():
    return urllib3.PoolManager()


@pytest.fixture(scope="module")
def token(gateway, http):
    response = http.request("POST", f"{gateway['base']}/auth/guest-login")
    assert response.status == 201
    return response.json()["access_token"]


def test_jan_prefixed_and_openai_routes_reach_the_function(gateway, http, token):
    for path in ("/v1/models", "/llm/v1/models"):
        response = http.request("GET", gateway["base"] + path, headers={"Authorization": f"Bearer {token}"})
        assert response.status == 200, path
        assert gateway["model"] in [m["id"] for m in response.json()["data"]]
    me = http.request("GET", gateway["base"] + "/llm/auth/me", headers={"Authorization": f"Bearer {token}"})
    assert me.status == 200 and me.headers["X-Auth-Method"] == "jwt"


def test_metrics_are_not_routed_publicly(gateway, http):
    assert http.request("GET", gateway["base"] + "/metrics").status == 404


def test_chat_with_the_real_model_through_the_gateway(gateway, token):
    client = openai.OpenAI(base_url=f"{gateway['base']}/v1", api_key=token, max_retries=0, timeout=120)
    completion = client.chat.completions.create(
        model=gateway["model"], messages=[{"role": "user", "content": "Say hello."}], max_tokens=16)
    assert completion.choices[0].message.content.strip()
    assert completion.usage.completion_tokens > 0

    chunks = list(client.chat.completions.create(
        model=gateway["model"], messages=[{"role": "user", "content": "Count to three."}], max_tokens=16,
        stream=True, stream_options={"include_usage": True}))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices).strip()
    # llama.cpp's server ignores stream_options.include_usage; vLLM honours it. Either way the stream ends cleanly.


def test_api_key_and_conversation_through_the_gateway(gateway, http, token):
    created = http.request("POST", gateway["base"] + "/auth/api-keys", json={"name": "e2e"},
                           headers={"Authorization": f"Bearer {token}"})
    assert created.status == 201
    key = created.json()["key"]
    conversation = http.request("POST", gateway["base"] + "/v1/conversations", json={"title": "e2e"},
                                headers={"X-API-Key": key}).json()
    reply = http.request("POST", gateway["base"] + "/v1/chat/completions", headers={"X-API-Key": key},
                         json={"model": gateway["model"], "conversation": conversation["id"], "max_tokens": 8,
                               "messages": [{"role": "user", "content": "Hi"}]})
    assert reply.status == 200 and reply.headers["X-Auth-Method"] == "apikey"
    items = http.request("GET", gateway["base"] + f"/v1/conversations/{conversation['id']}/items",
                         headers={"X-API-Key": key}).json()["data"]
    assert [item["role"] for item in items] == ["assistant", "user"]
