"""Self-tests of the scripted upstream double: the official SDK parses what it sends, and the wire-level
behaviours (pauses, flushing, drops, disconnect detection) are what tests of our functions rely on."""

import http.client
import json
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import openai
import pytest
import urllib3

from .openai_upstream import (
    ScriptedUpstream,
    error,
    hang,
    malformed,
    reply,
    slow_first_token,
    stream,
    stream_then_fail,
    tool_call_stream,
)

MESSAGES = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hello there"}]


@pytest.fixture
def upstream():
    with ScriptedUpstream() as server:
        yield server


@pytest.fixture
def client(upstream):
    with openai.OpenAI(base_url=upstream.base_url, api_key="unused", max_retries=0) as sdk:
        yield sdk


def chat_body(**extra):
    return json.dumps({"model": "test-model", "messages": MESSAGES, **extra}).encode()


def open_raw_stream(upstream, **extra):
    """Send a streaming chat request on a bare socket; returns the socket."""
    body = chat_body(stream=True, **extra)
    sock = socket.create_connection(("127.0.0.1", upstream.port), timeout=5)
    head = (
        f"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    sock.sendall(head.encode() + body)
    return sock


def read_until(sock, marker, received=b""):
    while marker not in received:
        data = sock.recv(65536)
        if not data:
            raise AssertionError(f"connection closed before {marker!r}; got {received!r}")
        received += data
    return received


def test_models_list(client):
    models = client.models.list()
    assert [model.id for model in models.data] == ["test-model"]
    assert models.data[0].object == "model"
    assert models.data[0].owned_by


def test_api_key_is_required_when_configured():
    with ScriptedUpstream(models=["a", "b"], api_key="sk-upstream") as upstream:
        wrong = openai.OpenAI(base_url=upstream.base_url, api_key="sk-wrong", max_retries=0)
        with pytest.raises(openai.AuthenticationError) as raised:
            wrong.models.list()
        assert raised.value.status_code == 401
        assert raised.value.code == "invalid_api_key"
        right = openai.OpenAI(base_url=upstream.base_url, api_key="sk-upstream", max_retries=0)
        assert [model.id for model in right.models.list().data] == ["a", "b"]
        assert upstream.requests[-1].headers["authorization"] == "Bearer sk-upstream"


def test_default_is_a_deterministic_echo(client, upstream):
    completion = client.chat.completions.create(model="test-model", messages=MESSAGES)
    assert completion.id.startswith("chatcmpl-")
    assert completion.object == "chat.completion"
    assert completion.model == "test-model"
    assert completion.system_fingerprint
    assert completion.created > 0
    assert completion.choices[0].message.role == "assistant"
    assert completion.choices[0].message.content == "echo: hello there"
    assert completion.choices[0].finish_reason == "stop"
    usage = completion.usage
    assert (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens) == (4, 3, 7)


def test_echo_reads_text_parts_of_the_last_user_message(client):
    messages = [
        {"role": "user", "content": "first"},
        {"role": "assistant", "content": "ok"},
        {"role": "user", "content": [{"type": "text", "text": "look"}, {"type": "text", "text": "here"}]},
    ]
    completion = client.chat.completions.create(model="test-model", messages=messages)
    assert completion.choices[0].message.content == "echo: look here"


def test_stream_with_usage(client):
    chunks = list(
        client.chat.completions.create(
            model="test-model", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
        )
    )
    assert chunks[0].choices[0].delta.role == "assistant"
    content_chunks = [chunk.choices[0].delta.content for chunk in chunks[1:-2]]
    assert len(content_chunks) > 1
    assert "".join(content_chunks) == "echo: hello there"
    assert chunks[-2].choices[0].finish_reason == "stop"
    assert chunks[-1].choices == []
    assert chunks[-1].usage.total_tokens == 7
    assert len({chunk.id for chunk in chunks}) == 1
    assert all(chunk.model == "test-model" for chunk in chunks)


def test_stream_without_include_usage_has_no_usage_chunk(client):
    chunks = list(client.chat.completions.create(model="test-model", messages=MESSAGES, stream=True))
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert all(chunk.usage is None for chunk in chunks)


def test_sse_wire_format_ends_with_done(upstream):
    sock = open_raw_stream(upstream, stream_options={"include_usage": True})
    with sock:
        received = read_until(sock, b"\r\n0\r\n\r\n")
    head, _, body = received.partition(b"\r\n\r\n")
    assert b"HTTP/1.1 200" in head
    assert b"text/event-stream" in head.lower()
    assert b"transfer-encoding: chunked" in head.lower()
    events = [line.strip() for line in body.split(b"\r\n") if line.startswith(b"data: ")]
    assert events[-1] == b"data: [DONE]"
    assert json.loads(events[-2][len(b"data: ") :])["choices"] == []


def test_scripted_behaviours_are_fifo_then_echo(client, upstream):
    upstream.script(reply("first"), reply("second", finish_reason="length"))
    answers = [client.chat.completions.create(model="test-model", messages=MESSAGES).choices[0] for _ in range(3)]
    assert [answer.message.content for answer in answers] == ["first", "second", "echo: hello there"]
    assert answers[1].finish_reason == "length"


def test_reply_follows_the_request_stream_flag(client, upstream):
    upstream.script(reply("streamed answer", usage={"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3}))
    chunks = list(
        client.chat.completions.create(
            model="test-model", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
        )
    )
    assert "".join(chunk.choices[0].delta.content or "" for chunk in chunks if chunk.choices) == "streamed answer"
    assert chunks[-1].usage.total_tokens == 3


def test_reply_with_tool_calls(client, upstream):
    upstream.script(reply(tool_calls=[{"id": "call_1", "name": "get_weather", "arguments": {"city": "Paris"}}]))
    choice = client.chat.completions.create(model="test-model", messages=MESSAGES).choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None
    call = choice.message.tool_calls[0]
    assert (call.id, call.type, call.function.name) == ("call_1", "function", "get_weather")
    assert json.loads(call.function.arguments) == {"city": "Paris"}


def test_tool_call_stream(client, upstream):
    upstream.script(
        tool_call_stream(
            [
                {"name": "get_weather", "arguments": {"city": "Paris", "unit": "celsius"}},
                {"id": "call_given", "type": "function", "function": {"name": "get_time", "arguments": "{}"}},
            ]
        )
    )
    chunks = list(client.chat.completions.create(model="test-model", messages=MESSAGES, stream=True))
    calls: dict[int, dict] = {}
    fragments = 0
    for chunk in chunks:
        for delta in chunk.choices[0].delta.tool_calls or []:
            if delta.id:
                assert delta.index not in calls
                assert delta.type == "function"
                calls[delta.index] = {"id": delta.id, "name": delta.function.name, "arguments": ""}
            else:
                assert delta.function.name is None
                fragments += 1
            calls[delta.index]["arguments"] += delta.function.arguments or ""
    assert calls[0]["id"].startswith("call_")
    assert calls[0]["name"] == "get_weather"
    assert json.loads(calls[0]["arguments"]) == {"city": "Paris", "unit": "celsius"}
    assert calls[1] == {"id": "call_given", "name": "get_time", "arguments": "{}"}
    assert fragments > 2
    assert chunks[-1].choices[0].finish_reason == "tool_calls"


@pytest.mark.parametrize(
    ("status", "exception"),
    [(400, openai.BadRequestError), (429, openai.RateLimitError), (500, openai.InternalServerError)],
)
def test_error_status_surfaces_in_the_sdk(client, upstream, status, exception):
    upstream.script(error(status))
    with pytest.raises(exception) as raised:
        client.chat.completions.create(model="test-model", messages=MESSAGES)
    assert isinstance(raised.value, openai.APIStatusError)
    assert raised.value.status_code == status
    assert set(raised.value.body) == {"message", "type", "param", "code"}


def test_error_with_custom_body_and_headers(upstream):
    upstream.script(error(503, {"detail": "overloaded"}, headers={"Retry-After": "7"}))
    response = urllib3.request("POST", f"{upstream.base_url}/chat/completions", body=chat_body(stream=True))
    assert response.status == 503
    assert response.headers["Retry-After"] == "7"
    assert response.json() == {"detail": "overloaded"}


def test_unknown_model_is_404(client):
    with pytest.raises(openai.NotFoundError) as raised:
        client.chat.completions.create(model="other-model", messages=MESSAGES)
    assert raised.value.code == "model_not_found"


def test_malformed_is_200_with_invalid_json(upstream):
    upstream.script(malformed())
    response = urllib3.request("POST", f"{upstream.base_url}/chat/completions", body=chat_body())
    assert response.status == 200
    assert response.headers["Content-Type"] == "application/json"
    with pytest.raises(ValueError):
        json.loads(response.data)


def test_requests_are_recorded(client, upstream):
    tools = [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]
    traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    client.chat.completions.create(
        model="test-model",
        messages=MESSAGES,
        tools=tools,
        seed=7,
        logprobs=True,
        stream=True,
        stream_options={"include_usage": True},
        extra_headers={"traceparent": traceparent},
    ).close()
    (request,) = upstream.requests
    assert (request.method, request.path) == ("POST", "/v1/chat/completions")
    assert request.headers["traceparent"] == traceparent
    assert request.body["model"] == "test-model"
    assert request.body["tools"] == tools
    assert (request.body["seed"], request.body["logprobs"]) == (7, True)
    assert request.body["stream_options"] == {"include_usage": True}
    assert json.loads(request.raw_body) == request.body


def test_chunked_request_body_is_read(upstream):
    connection = http.client.HTTPConnection("127.0.0.1", upstream.port, timeout=5)
    connection.request(
        "POST", "/v1/chat/completions", body=iter([chat_body()[:10], chat_body()[10:]]), encode_chunked=True
    )
    response = connection.getresponse()
    assert json.loads(response.read())["choices"][0]["message"]["content"] == "echo: hello there"
    assert upstream.requests[0].body["model"] == "test-model"
    connection.close()


def test_keep_alive_serves_several_requests_on_one_connection(upstream):
    connection = http.client.HTTPConnection("127.0.0.1", upstream.port, timeout=5)
    client_ports = set()
    for streaming in (False, True, False):
        connection.request("POST", "/v1/chat/completions", body=chat_body(stream=streaming))
        response = connection.getresponse()
        assert response.status == 200
        response.read()
        client_ports.add(connection.sock.getsockname()[1])
    assert len(client_ports) == 1
    assert len(upstream.requests) == 3
    assert upstream.disconnects == []
    connection.close()


def test_stream_pauses_and_flushes_each_event(upstream):
    upstream.script(stream(["a", "b", "c"], pause_before_first=0.3, pause_between=0.2))
    started = time.monotonic()
    response = urllib3.request(
        "POST", f"{upstream.base_url}/chat/completions", body=chat_body(), preload_content=False
    )
    headers_after = time.monotonic() - started
    arrivals = [(time.monotonic() - started, chunk) for chunk in response.read_chunked()]
    assert headers_after < 0.2
    # One HTTP chunk per SSE event, each arriving after its pause.
    assert all(chunk.startswith(b"data: ") and chunk.endswith(b"\n\n") for _, chunk in arrivals)
    assert 0.3 <= arrivals[0][0] < 0.5
    assert 0.5 <= arrivals[1][0] < 0.7
    assert 0.7 <= arrivals[2][0] < 0.9
    assert arrivals[-1][1] == b"data: [DONE]\n\n"


def test_slow_first_token(client, upstream):
    upstream.script(slow_first_token(0.3), slow_first_token(0.3, content="late"))
    started = time.monotonic()
    first_chunk = next(iter(client.chat.completions.create(model="test-model", messages=MESSAGES, stream=True)))
    assert first_chunk.choices[0].delta.role == "assistant"
    assert time.monotonic() - started >= 0.3
    started = time.monotonic()
    completion = client.chat.completions.create(model="test-model", messages=MESSAGES)
    assert completion.choices[0].message.content == "late"
    assert time.monotonic() - started >= 0.3


def test_stream_then_fail_drops_without_done(upstream):
    upstream.script(stream_then_fail(after_chunks=2, chunks=["one ", "two ", "three"]))
    response = urllib3.request(
        "POST", f"{upstream.base_url}/chat/completions", body=chat_body(), preload_content=False
    )
    received = []
    with pytest.raises(urllib3.exceptions.ProtocolError):
        for chunk in response.read_chunked():
            received.append(chunk)
    assert len(received) == 2
    assert json.loads(received[1][len(b"data: ") :])["choices"][0]["delta"]["content"] == "one "
    assert upstream.disconnects == []


def test_stream_then_fail_surfaces_in_the_sdk(client, upstream):
    upstream.script(stream_then_fail(after_chunks=3))
    received = []
    with pytest.raises(openai.APIConnectionError):
        for chunk in client.chat.completions.create(model="test-model", messages=MESSAGES, stream=True):
            received.append(chunk)
    assert len(received) == 3


def test_raw_bytes_and_verbatim_dicts_in_a_stream(upstream):
    upstream.script(stream([b": keep-alive\n\n", {"custom": True}, "text"]))
    response = urllib3.request(
        "POST", f"{upstream.base_url}/chat/completions", body=chat_body(), preload_content=False
    )
    events = list(response.read_chunked())
    assert events[1:3] == [b": keep-alive\n\n", b'data: {"custom":true}\n\n']
    assert json.loads(events[3][len(b"data: ") :])["choices"][0]["delta"] == {"content": "text"}


def test_client_disconnect_during_stream_is_detected(upstream):
    upstream.script(stream(["a", "b", "c"], pause_between=2.0))
    sock = open_raw_stream(upstream)
    read_until(sock, b"data: ")
    assert upstream.disconnects == []
    closed_at = time.monotonic()
    sock.close()
    assert upstream.wait_for_disconnect(timeout=1.0)
    assert time.monotonic() - closed_at < 0.5
    (request,) = upstream.disconnects
    assert request.disconnected
    assert upstream.requests[0] is request


def test_client_disconnect_during_hang_is_detected(upstream):
    upstream.script(hang(10))
    sock = open_raw_stream(upstream)
    time.sleep(0.1)
    assert upstream.requests[0].body["stream"] is True
    sock.close()
    assert upstream.wait_for_disconnect(timeout=1.0)


def test_hang_sends_nothing_then_closes(upstream):
    upstream.script(hang(0.3))
    sock = open_raw_stream(upstream)
    with sock:
        started = time.monotonic()
        assert sock.recv(1024) == b""
        assert time.monotonic() - started >= 0.3
    assert not upstream.wait_for_disconnect(timeout=0.05)


def test_completed_stream_is_not_a_disconnect(client, upstream):
    list(client.chat.completions.create(model="test-model", messages=MESSAGES, stream=True))
    assert not upstream.wait_for_disconnect(timeout=0.1)
    assert upstream.requests[0].disconnected is False


def test_reset_forgets_script_and_records(client, upstream):
    upstream.script(reply("scripted"))
    client.models.list()
    upstream.reset()
    assert upstream.requests == []
    assert client.chat.completions.create(model="test-model", messages=MESSAGES).choices[0].message.content == (
        "echo: hello there"
    )


def test_stop_is_prompt_with_hanging_and_idle_connections():
    before = set(threading.enumerate())
    upstream = ScriptedUpstream().start()
    upstream.script(hang(30))
    hanging = open_raw_stream(upstream)
    idle = http.client.HTTPConnection("127.0.0.1", upstream.port, timeout=5)
    idle.request("GET", "/v1/models")
    idle.getresponse().read()
    time.sleep(0.1)
    started = time.monotonic()
    upstream.stop()
    assert time.monotonic() - started < 1.0
    assert set(threading.enumerate()) - before == set()
    assert upstream.disconnects == []
    hanging.close()
    idle.close()
    upstream.stop()


def test_standalone_serves_the_echo():
    root = Path(__file__).resolve().parents[2]
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.doubles.openai_upstream", "--port", "0", "--model", "bench-model"],
        cwd=root,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        base_url = process.stdout.readline().split()[-1]
        sdk = openai.OpenAI(base_url=base_url, api_key="unused", max_retries=0)
        assert [model.id for model in sdk.models.list().data] == ["bench-model"]
        completion = sdk.chat.completions.create(model="bench-model", messages=MESSAGES)
        assert completion.choices[0].message.content == "echo: hello there"
    finally:
        process.terminate()
        process.wait(timeout=5)
