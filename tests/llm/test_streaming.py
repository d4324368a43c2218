"""Streaming chat completions against the function served as in its image (gunicorn + gevent): no buffering,
keep-alive comments, client disconnects closing the upstream, and design.md's streaming-failure rule."""
from __future__ import annotations

import http.client
import json
import socket
import time
import urllib.parse

import pytest

from tests.conftest import TEST_MODEL_ID
from tests.doubles import error, hang, stream, stream_then_fail, tool_call_stream, slow_first_token


def _connection(base: str) -> http.client.HTTPConnection:
    parsed = urllib.parse.urlparse(base)
    return http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=15)


def _request(base, method, path, token=None, body=None):
    conn = _connection(base)
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    conn.request(method, path, body=json.dumps(body) if body is not None else None, headers=headers)
    response = conn.getresponse()
    data = response.read()
    conn.close()
    return response.status, json.loads(data) if data else None


@pytest.fixture
def token(live_llm):
    status, body = _request(live_llm, "POST", "/auth/guest-login")
    assert status == 201
    return body["access_token"]


class OpenStream:
    """A streaming request read line by line, with the arrival time of each line."""

    def __init__(self, base: str, token: str, **body):
        body.setdefault("model", TEST_MODEL_ID)
        body.setdefault("messages", [{"role": "user", "content": "hello"}])
        body["stream"] = True
        self.conn = _connection(base)
        self.started = time.monotonic()
        self.conn.request("POST", "/v1/chat/completions", body=json.dumps(body),
                          headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"})
        self.response = self.conn.getresponse()

    def lines(self):
        while True:
            line = self.response.readline()
            if not line:
                return
            yield time.monotonic() - self.started, line.rstrip(b"\r\n")

    def events(self) -> list[tuple[float, bytes]]:
        return [(at, line) for at, line in self.lines() if line]

    def close(self):
        self.conn.sock.shutdown(socket.SHUT_RDWR)
        self.conn.close()


def data_payloads(events) -> list:
    out = []
    for _, line in events:
        if line.startswith(b"data: "):
            payload = line[6:]
            out.append(payload.decode() if payload == b"[DONE]" else json.loads(payload))
    return out


def conversation_items(base, token, conversation_id):
    status, body = _request(base, "GET", f"/v1/conversations/{conversation_id}/items?order=asc", token)
    assert status == 200
    return body["data"]


def wait_for(predicate, timeout=5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    return predicate()


def test_stream_relays_chunks_through_done_and_hides_usage_unless_asked(live_llm, token, upstream):
    upstream.script(stream(["Hel", "lo"]))
    opened = OpenStream(live_llm, token)
    assert opened.response.status == 200
    assert opened.response.getheader("Content-Type").startswith("text/event-stream")
    assert opened.response.getheader("Cache-Control") == "no-cache"
    assert opened.response.getheader("X-Accel-Buffering") == "no"
    payloads = data_payloads(opened.events())
    assert payloads[-1] == "[DONE]"
    assert "".join(p["choices"][0]["delta"].get("content") or "" for p in payloads[:-1] if p["choices"]) == "Hello"
    assert all(p["choices"] for p in payloads[:-1]), "the usage-only chunk must not reach a client that did not ask"
    assert upstream.requests[-1].body["stream_options"] == {"include_usage": True}


def test_stream_includes_usage_when_the_client_asks(live_llm, token, upstream):
    upstream.script(stream(["a", "b"]))
    payloads = data_payloads(OpenStream(live_llm, token, stream_options={"include_usage": True}).events())
    usage_chunks = [p for p in payloads[:-1] if not p["choices"]]
    assert len(usage_chunks) == 1 and usage_chunks[0]["usage"]["total_tokens"] > 0


def test_stream_is_not_buffered(live_llm, token, upstream):
    upstream.script(stream(["first", "second"], pause_between=1.0))
    events = OpenStream(live_llm, token).events()
    arrivals = {json.loads(line[6:])["choices"][0]["delta"].get("content"): at
                for at, line in events if line.startswith(b"data: {") and json.loads(line[6:])["choices"]}
    # The double pauses 1 s after every event: each must reach the client as soon as it is sent.
    assert arrivals[""] < 0.6, arrivals  # the role chunk
    assert 0.9 <= arrivals["first"] - arrivals[""] < 1.5, arrivals
    assert 0.9 <= arrivals["second"] - arrivals["first"] < 1.5, arrivals


def test_keepalive_comments_while_the_first_token_is_slow(live_llm, token, upstream):
    upstream.script(slow_first_token(1.2, content="late"))
    events = OpenStream(live_llm, token).events()
    first_data = next(at for at, line in events if line.startswith(b"data: "))
    keepalives = [at for at, line in events if line.startswith(b":") and at < first_data]
    assert len(keepalives) >= 2  # the test function's STREAM_KEEPALIVE_SECONDS is 0.3
    assert keepalives[0] < 0.7


def test_failure_before_the_first_byte_is_an_http_error(live_llm, token, upstream):
    upstream.script(error(500))
    opened = OpenStream(live_llm, token)
    assert opened.response.status == 502
    body = json.loads(opened.response.read())
    assert body["error"]["type"] == "upstream_error" and body["message"] == body["error"]["message"]


def test_failure_after_the_stream_started_is_an_sse_error_event_and_stored_as_failed(live_llm, token, upstream):
    _, conversation = _request(live_llm, "POST", "/v1/conversations", token, {})
    upstream.script(stream_then_fail(after_chunks=2, chunks=["partial ", "answer"]))
    payloads = data_payloads(OpenStream(live_llm, token, conversation=conversation["id"]).events())
    assert "[DONE]" not in payloads
    assert payloads[-1]["error"]["code"] == "upstream_stream_broken"
    items = wait_for(lambda: [i for i in conversation_items(live_llm, token, conversation["id"])
                              if i["role"] == "assistant"])
    assert items[0]["status"] == "failed"


def test_provider_silent_past_the_timeout_ends_the_started_stream_with_an_error(live_llm, token, upstream):
    upstream.script(hang(8))  # the test function's UPSTREAM_TIMEOUT_SECONDS is 5
    events = OpenStream(live_llm, token).events()
    assert events[0][1].startswith(b":"), "a keep-alive commits to the stream before the provider answers"
    payloads = data_payloads(events)
    assert payloads[-1]["error"]["type"] == "upstream_timeout"


def test_client_disconnect_closes_the_upstream_and_stores_the_reply_as_incomplete(live_llm, token, upstream):
    _, conversation = _request(live_llm, "POST", "/v1/conversations", token, {})
    upstream.script(stream(["one ", "two ", "three"], pause_between=1.0))
    opened = OpenStream(live_llm, token, conversation=conversation["id"])
    for _, line in opened.lines():
        if line.startswith(b"data: {") and json.loads(line[6:])["choices"][0]["delta"].get("content"):
            break
    opened.close()
    assert upstream.wait_for_disconnect(3.0), "the function must close its upstream request"
    assistant = wait_for(lambda: [i for i in conversation_items(live_llm, token, conversation["id"])
                                  if i["role"] == "assistant"])
    assert assistant[0]["status"] == "incomplete"
    assert assistant[0]["content"][0]["text"] == "one "
    assert assistant[0]["incomplete_details"] == {"reason": "client_disconnected"}


def test_streamed_reply_is_persisted_with_usage_and_history_is_prepended(live_llm, token, upstream):
    _, conversation = _request(live_llm, "POST", "/v1/conversations", token, {})
    upstream.script(stream(["Hi ", "there"]))
    OpenStream(live_llm, token, conversation=conversation["id"]).events()
    items = wait_for(lambda: len(conversation_items(live_llm, token, conversation["id"])) == 2 and
                     conversation_items(live_llm, token, conversation["id"]))
    assert [(i["role"], i["status"]) for i in items] == [("user", "completed"), ("assistant", "completed")]
    assert items[1]["content"][0]["text"] == "Hi there" and items[1]["usage"]["total_tokens"] > 0
    OpenStream(live_llm, token, conversation=conversation["id"],
               messages=[{"role": "user", "content": "more"}]).events()
    assert upstream.requests[-1].body["messages"][:2] == [{"role": "user", "content": "hello"},
                                                          {"role": "assistant", "content": "Hi there"}]


def test_streamed_tool_calls_pass_through_and_are_stored(live_llm, token, upstream):
    _, conversation = _request(live_llm, "POST", "/v1/conversations", token, {})
    upstream.script(tool_call_stream([{"id": "call_s", "name": "search", "arguments": '{"q": "jan"}'}]))
    payloads = data_payloads(OpenStream(live_llm, token, conversation=conversation["id"]).events())
    deltas = [c["delta"] for p in payloads[:-1] for c in p["choices"]]
    assert any(d.get("tool_calls") for d in deltas)
    items = wait_for(lambda: [i for i in conversation_items(live_llm, token, conversation["id"])
                              if i["type"] == "function_call"])
    assert items[0]["call_id"] == "call_s" and items[0]["arguments"] == '{"q": "jan"}'


def test_usage_is_estimated_and_marked_when_the_provider_reports_none(live_llm, token, upstream, app):
    from sqlalchemy import select
    from shared.domain.usage.tables import usage_records

    upstream.script(stream(["twelve chars"], include_usage=False))  # as llama.cpp's server does
    OpenStream(live_llm, token).events()

    def latest():
        with app.extensions["jan"].db.read() as conn:
            return conn.execute(select(usage_records).order_by(usage_records.c.id.desc()).limit(1)).first()

    row = wait_for(lambda: (r := latest()) is not None and r.stream and r.usage_estimated and r)
    assert row.completion_tokens == 3 and row.prompt_tokens > 0 and row.status == "completed"
