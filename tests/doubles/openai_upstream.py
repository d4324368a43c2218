"""ScriptedUpstream: a TEST DOUBLE of an OpenAI-compatible model provider (vLLM, OpenAI, ...).

It is not a model. It is a real HTTP/1.1 server on 127.0.0.1 that speaks the OpenAI wire protocol
(`GET /v1/models`, `POST /v1/chat/completions`, JSON and SSE streaming) and answers each chat request
with the next scripted behaviour, so tests can force exact upstream behaviour: content, tool calls,
errors, malformed bodies, hangs, slow first tokens, streams that die midway. It records every request
it receives and whether the client went away before a response finished.

    with ScriptedUpstream() as upstream:
        upstream.script(stream(["Hel", "lo"], pause_between=0.5))
        ...  # point the code under test at upstream.base_url
        assert upstream.requests[-1].body["stream_options"] == {"include_usage": True}
        assert upstream.wait_for_disconnect(1.0)

Standalone (echo only, for benchmarks):
    python -m tests.doubles.openai_upstream --port 9999 --model test-model
"""

from __future__ import annotations

import argparse
import json
import re
import selectors
import socket
import sys
import threading
import time
import uuid
from abc import ABC, abstractmethod
from collections import deque
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal

__all__ = [
    "Behavior",
    "RecordedRequest",
    "ScriptedUpstream",
    "error",
    "hang",
    "malformed",
    "openai_error_body",
    "reply",
    "slow_first_token",
    "stream",
    "stream_then_fail",
    "tool_call_stream",
]

# How often a pause looks at the socket and the stop flag: bounds disconnect detection and stop() latency.
_POLL_INTERVAL = 0.02
_ARGUMENT_FRAGMENT_SIZE = 8
_SYSTEM_FINGERPRINT = "fp_scripted_upstream"
_DONE = b"data: [DONE]\n\n"


@dataclass
class RecordedRequest:
    """One request as the double received it."""

    method: str
    path: str
    headers: dict[str, str]  # names lower-cased
    body: Any  # parsed JSON; None when empty or not JSON
    raw_body: bytes
    disconnected: bool = False  # the client closed the connection before the response finished


def openai_error_body(message: str, type: str, code: str | None = None, param: str | None = None) -> dict:
    return {"error": {"message": message, "type": type, "param": param, "code": code}}


class Behavior(ABC):
    """How the double answers one `POST /v1/chat/completions`."""

    @abstractmethod
    def serve(self, exchange: _Exchange, request: RecordedRequest) -> None: ...


@dataclass(frozen=True)
class _Completion(Behavior):
    content: str | None = None
    chunks: tuple[str | dict | bytes, ...] | None = None
    tool_calls: tuple[dict, ...] = ()
    finish_reason: str | None = None
    usage: dict | None = None
    stream: bool | None = None  # None: stream exactly when the request asks to
    pause_before_first: float = 0.0
    pause_between: float = 0.0
    include_usage: bool | Literal["auto"] = "auto"
    fail_after: int | None = None

    def serve(self, exchange: _Exchange, request: RecordedRequest) -> None:
        body = request.body
        streaming = bool(body.get("stream")) if self.stream is None else self.stream
        pieces = self._pieces(body)
        content = "".join(piece for piece in pieces if isinstance(piece, str))
        if not pieces and self.tool_calls:
            content = None
        tool_calls = [_normalize_tool_call(spec) for spec in self.tool_calls]
        finish_reason = self.finish_reason or ("tool_calls" if tool_calls else "stop")
        usage = self.usage or _estimate_usage(body, content, tool_calls)
        envelope = {
            "id": f"chatcmpl-{uuid.uuid4().hex[:24]}",
            "created": int(time.time()),
            "model": body.get("model", ""),
            "system_fingerprint": _SYSTEM_FINGERPRINT,
        }
        if not streaming:
            exchange.pause(self.pause_before_first)
            message: dict[str, Any] = {"role": "assistant", "content": content}
            if tool_calls:
                message["tool_calls"] = tool_calls
            choice = {"index": 0, "message": message, "logprobs": None, "finish_reason": finish_reason}
            exchange.send_json(
                200, {**envelope, "object": "chat.completion", "choices": [choice], "usage": usage}
            )
            return

        wants_usage = self.include_usage
        if wants_usage == "auto":
            wants_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        events = _stream_events(envelope, pieces, tool_calls, finish_reason, usage if wants_usage else None)
        if self.fail_after is not None:
            events = events[: self.fail_after]
        exchange.start_stream()
        for index, event in enumerate(events):
            exchange.pause(self.pause_before_first if index == 0 else self.pause_between)
            exchange.send_event(event)
        if self.fail_after is not None:
            exchange.drop()
            return
        exchange.send_event(_DONE)
        exchange.end_stream()

    def _pieces(self, body: dict) -> list[str | dict | bytes]:
        if self.chunks is not None:
            return list(self.chunks)
        if self.content is not None:
            return _split_words(self.content)
        if self.tool_calls:
            return []
        return _split_words(_echo(body))


@dataclass(frozen=True)
class _Error(Behavior):
    status: int
    body: dict | str | bytes
    headers: dict[str, str]

    def serve(self, exchange: _Exchange, request: RecordedRequest) -> None:
        if isinstance(self.body, dict):
            exchange.send_json(self.status, self.body, self.headers)
        else:
            raw = self.body.encode() if isinstance(self.body, str) else self.body
            exchange.send_bytes(self.status, raw, "text/plain; charset=utf-8", self.headers)


@dataclass(frozen=True)
class _Malformed(Behavior):
    body: bytes

    def serve(self, exchange: _Exchange, request: RecordedRequest) -> None:
        exchange.send_bytes(200, self.body, "application/json")


@dataclass(frozen=True)
class _Hang(Behavior):
    seconds: float

    def serve(self, exchange: _Exchange, request: RecordedRequest) -> None:
        exchange.pause(self.seconds)
        exchange.drop()


def reply(
    content: str | None = None,
    *,
    tool_calls: list[dict] | None = None,
    finish_reason: str | None = None,
    usage: dict | None = None,
) -> Behavior:
    """A complete answer, as JSON or as SSE depending on the request's `stream` flag.

    Without content and tool_calls it echoes. Tool calls are `{"name", "arguments"(str or dict), "id"?}`
    or full OpenAI tool-call objects. finish_reason defaults to "tool_calls" with tool calls, else "stop";
    usage defaults to word counts.
    """
    return _Completion(
        content=content, tool_calls=tuple(tool_calls or ()), finish_reason=finish_reason, usage=usage
    )


def stream(
    chunks: list[str | dict | bytes] | None = None,
    *,
    finish_reason: str = "stop",
    pause_before_first: float = 0.0,
    pause_between: float = 0.0,
    include_usage: bool | Literal["auto"] = "auto",
    usage: dict | None = None,
) -> Behavior:
    """An SSE stream whatever the request asked: role chunk, one event per chunk, finish chunk, usage, [DONE].

    A str chunk is a content delta, a dict is sent verbatim as an event's JSON, bytes are written onto the
    stream as they are (comments, broken events). Without chunks it streams the echo word by word.
    Pauses happen after the 200 headers. include_usage="auto" follows `stream_options.include_usage`.
    """
    return _Completion(
        chunks=None if chunks is None else tuple(chunks),
        finish_reason=finish_reason,
        usage=usage,
        stream=True,
        pause_before_first=pause_before_first,
        pause_between=pause_between,
        include_usage=include_usage,
    )


def tool_call_stream(
    tool_calls: list[dict],
    *,
    content: str | None = None,
    pause_before_first: float = 0.0,
    pause_between: float = 0.0,
    include_usage: bool | Literal["auto"] = "auto",
    usage: dict | None = None,
) -> Behavior:
    """An SSE stream of tool calls as OpenAI streams them: per call a delta with index, id, type and name,
    then its arguments in fragments; finish_reason "tool_calls"."""
    return _Completion(
        content=content,
        tool_calls=tuple(tool_calls),
        usage=usage,
        stream=True,
        pause_before_first=pause_before_first,
        pause_between=pause_between,
        include_usage=include_usage,
    )


def error(status: int, body: dict | str | bytes | None = None, *, headers: dict[str, str] | None = None) -> Behavior:
    """An HTTP error; the body defaults to OpenAI's error shape for that status."""
    return _Error(status, _default_error_body(status) if body is None else body, dict(headers or {}))


def malformed(body: bytes = b'{"id": "chatcmpl-malformed", "choices": [{"index": 0, "mess') -> Behavior:
    """200 with a body that is not valid JSON."""
    return _Malformed(body)


def hang(seconds: float = 30.0) -> Behavior:
    """Read the request, send nothing for `seconds`, then close the connection."""
    return _Hang(seconds)


def stream_then_fail(
    after_chunks: int = 2, *, chunks: list[str | dict | bytes] | None = None, pause_between: float = 0.0
) -> Behavior:
    """Start an SSE stream, send `after_chunks` events (the role chunk counts), then close the connection
    without finishing the chunked body and without [DONE]."""
    return _Completion(
        chunks=None if chunks is None else tuple(chunks),
        stream=True,
        pause_between=pause_between,
        fail_after=after_chunks,
    )


def slow_first_token(seconds: float, content: str | None = None) -> Behavior:
    """Like reply(), after `seconds`: streamed, the 200 headers go out at once and the first event waits."""
    return _Completion(content=content, pause_before_first=seconds)


class ScriptedUpstream:
    """The double itself. Chat requests consume scripted behaviours first in, first out; with none left
    they get the echo. `/v1/models` never consumes a behaviour."""

    def __init__(
        self,
        models: list[str] | tuple[str, ...] = ("test-model",),
        api_key: str | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        record: bool = True,
    ) -> None:
        self.models = list(models)
        self.api_key = api_key
        self._address = (host, port)
        self._record = record
        self._created = int(time.time())
        self._lock = threading.Lock()
        self._disconnected = threading.Condition(self._lock)
        self._script: deque[Behavior] = deque()
        self._requests: list[RecordedRequest] = []
        self._disconnects: list[RecordedRequest] = []
        self._connections: dict[socket.socket, threading.Thread] = {}
        self._stopping = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> ScriptedUpstream:
        if self._server is None:
            self._stopping.clear()
            self._server = _Server(self._address, _Exchange, self)
            self._thread = threading.Thread(
                target=self._server.serve_forever,
                kwargs={"poll_interval": _POLL_INTERVAL},
                name="scripted-upstream",
                daemon=True,
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        self._stopping.set()
        server.shutdown()
        server.server_close()
        with self._lock:
            connections = dict(self._connections)
        # Idle keep-alive connections block their threads in a read until the socket goes away.
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        for thread in [*connections.values(), self._thread]:
            thread.join(timeout=2.0)

    def __enter__(self) -> ScriptedUpstream:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("ScriptedUpstream is not running")
        return self._server.server_address[1]

    @property
    def base_url(self) -> str:
        return f"http://{self._address[0]}:{self.port}/v1"

    def script(self, *behaviors: Behavior) -> ScriptedUpstream:
        with self._lock:
            self._script.extend(behaviors)
        return self

    def reset(self) -> None:
        """Forget scripted behaviours, requests and disconnects (for a server shared between tests)."""
        with self._lock:
            self._script.clear()
            self._requests.clear()
            self._disconnects.clear()

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    @property
    def disconnects(self) -> list[RecordedRequest]:
        """Requests whose client closed the connection before the response finished."""
        with self._lock:
            return list(self._disconnects)

    def wait_for_disconnect(self, timeout: float = 5.0) -> bool:
        with self._disconnected:
            return self._disconnected.wait_for(lambda: bool(self._disconnects), timeout)

    def _next_behavior(self) -> Behavior:
        with self._lock:
            return self._script.popleft() if self._script else _ECHO

    def _add_request(self, request: RecordedRequest) -> None:
        if self._record:
            with self._lock:
                self._requests.append(request)

    def _mark_disconnected(self, request: RecordedRequest) -> None:
        if self._stopping.is_set():
            return
        with self._disconnected:
            request.disconnected = True
            if self._record:
                self._disconnects.append(request)
            self._disconnected.notify_all()

    def _track(self, connection: socket.socket) -> None:
        with self._lock:
            self._connections[connection] = threading.current_thread()

    def _untrack(self, connection: socket.socket) -> None:
        with self._lock:
            self._connections.pop(connection, None)


_ECHO = _Completion()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], handler: type, upstream: ScriptedUpstream) -> None:
        self.upstream = upstream
        super().__init__(address, handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A peer vanishing mid-exchange is routine for this server; anything else is a bug worth a traceback.
        if not isinstance(sys.exc_info()[1], OSError):
            super().handle_error(request, client_address)


class _ClientGone(ConnectionError):
    pass


class _Stopping(Exception):
    pass


class _Exchange(BaseHTTPRequestHandler):
    """Serves one connection; behaviours write their answer through its send/pause/drop methods."""

    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes: without TCP_NODELAY each exchange stalls ~40 ms (Nagle).
    disable_nagle_algorithm = True
    server: _Server

    def setup(self) -> None:
        super().setup()
        self.upstream = self.server.upstream
        self.upstream._track(self.connection)

    def finish(self) -> None:
        self.upstream._untrack(self.connection)
        super().finish()

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        request = self._receive()
        if not self._authorized():
            return
        if self.path.split("?")[0] == "/v1/models":
            data = [
                {"id": model, "object": "model", "created": self.upstream._created, "owned_by": "scripted-upstream"}
                for model in self.upstream.models
            ]
            self.send_json(200, {"object": "list", "data": data})
        else:
            self._not_found(request)

    def do_POST(self) -> None:
        request = self._receive()
        if not self._authorized():
            return
        if self.path.split("?")[0] != "/v1/chat/completions":
            self._not_found(request)
            return
        if not isinstance(request.body, dict):
            self.send_json(400, openai_error_body("The request body is not a JSON object.", "invalid_request_error"))
            return
        model = request.body.get("model")
        if model not in self.upstream.models:
            message = f"The model `{model}` does not exist or you do not have access to it."
            self.send_json(404, openai_error_body(message, "invalid_request_error", "model_not_found"))
            return
        try:
            self.upstream._next_behavior().serve(self, request)
        except ConnectionError:
            self.close_connection = True
            self.upstream._mark_disconnected(request)
        except _Stopping:
            self.close_connection = True

    def send_bytes(self, status: int, body: bytes, content_type: str, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def send_json(self, status: int, payload: dict, headers: dict[str, str] | None = None) -> None:
        self.send_bytes(status, json.dumps(payload).encode(), "application/json", headers)

    def start_stream(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream; charset=utf-8")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()

    def send_event(self, event: dict | bytes) -> None:
        """One SSE event as one HTTP chunk, written straight to the socket."""
        data = event if isinstance(event, bytes) else b"data: " + _compact_json(event) + b"\n\n"
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))

    def end_stream(self) -> None:
        self.wfile.write(b"0\r\n\r\n")

    def drop(self) -> None:
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def pause(self, seconds: float) -> None:
        """Sleep, watching the socket: EOF from the client raises _ClientGone at once, stop() raises _Stopping."""
        if seconds <= 0:
            return
        deadline = time.monotonic() + seconds
        with selectors.DefaultSelector() as selector:
            selector.register(self.connection, selectors.EVENT_READ)
            while (remaining := deadline - time.monotonic()) > 0:
                if self.upstream._stopping.is_set():
                    raise _Stopping
                step = min(remaining, _POLL_INTERVAL)
                if selector.select(step):
                    if self._peer_closed():
                        raise _ClientGone("client closed the connection")
                    # Early bytes of a pipelined request, not EOF: wait without spinning on them.
                    self.upstream._stopping.wait(step)

    def _peer_closed(self) -> bool:
        try:
            return self.connection.recv(1, socket.MSG_PEEK) == b""
        except ConnectionError:
            return True

    def _receive(self) -> RecordedRequest:
        raw = self._read_body()
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        request = RecordedRequest(
            method=self.command,
            path=self.path,
            headers={name.lower(): value for name, value in self.headers.items()},
            body=body,
            raw_body=raw,
        )
        self.upstream._add_request(request)
        return request

    def _read_body(self) -> bytes:
        if "chunked" not in self.headers.get("Transfer-Encoding", "").lower():
            return self.rfile.read(int(self.headers.get("Content-Length") or 0))
        parts = []
        while size := int(self.rfile.readline().split(b";")[0], 16):
            parts.append(self.rfile.read(size))
            self.rfile.readline()
        while self.rfile.readline() not in (b"\r\n", b"\n", b""):
            pass  # trailers
        return b"".join(parts)

    def _authorized(self) -> bool:
        api_key = self.upstream.api_key
        if api_key is None or self.headers.get("Authorization") == f"Bearer {api_key}":
            return True
        message = "Incorrect API key provided."
        self.send_json(401, openai_error_body(message, "invalid_request_error", "invalid_api_key"))
        return False

    def _not_found(self, request: RecordedRequest) -> None:
        message = f"Invalid URL ({request.method} {request.path})"
        self.send_json(404, openai_error_body(message, "invalid_request_error"))


def _stream_events(
    envelope: dict,
    pieces: list[str | dict | bytes],
    tool_calls: list[dict],
    finish_reason: str,
    usage: dict | None,
) -> list[dict | bytes]:
    def chunk(delta: dict, finish: str | None = None) -> dict:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        event = {**envelope, "object": "chat.completion.chunk", "choices": [choice]}
        if usage is not None:
            # With include_usage OpenAI puts "usage": null on every chunk before the usage chunk.
            event["usage"] = None
        return event

    events: list[dict | bytes] = [chunk({"role": "assistant", "content": "" if pieces else None})]
    for piece in pieces:
        events.append(chunk({"content": piece}) if isinstance(piece, str) else piece)
    for index, call in enumerate(tool_calls):
        function = call["function"]
        head = {"index": index, "id": call["id"], "type": "function"}
        events.append(chunk({"tool_calls": [{**head, "function": {"name": function["name"], "arguments": ""}}]}))
        arguments = function["arguments"]
        for start in range(0, len(arguments), _ARGUMENT_FRAGMENT_SIZE):
            fragment = arguments[start : start + _ARGUMENT_FRAGMENT_SIZE]
            events.append(chunk({"tool_calls": [{"index": index, "function": {"arguments": fragment}}]}))
    events.append(chunk({}, finish_reason))
    if usage is not None:
        events.append({**envelope, "object": "chat.completion.chunk", "choices": [], "usage": usage})
    return events


def _normalize_tool_call(spec: dict) -> dict:
    function = spec.get("function", spec)
    arguments = function.get("arguments", {})
    return {
        "id": spec.get("id") or f"call_{uuid.uuid4().hex[:24]}",
        "type": "function",
        "function": {
            "name": function["name"],
            "arguments": arguments if isinstance(arguments, str) else json.dumps(arguments),
        },
    }


def _echo(body: dict) -> str:
    for message in reversed(body.get("messages") or []):
        if isinstance(message, dict) and message.get("role") == "user":
            return f"echo: {_text(message.get('content'))}"
    return "echo: "


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = [part.get("text", "") for part in content if isinstance(part, dict) and part.get("type") == "text"]
        return " ".join(texts)
    return ""


def _split_words(text: str) -> list[str]:
    return re.findall(r"\s+|\S+\s*", text)


def _estimate_usage(body: dict, content: str | None, tool_calls: list[dict]) -> dict:
    """Word counts stand in for tokens: deterministic, which is all a test needs."""
    prompt = sum(
        len(_text(message.get("content")).split())
        for message in body.get("messages") or []
        if isinstance(message, dict)
    )
    completion = len((content or "").split()) + sum(
        len(call["function"]["name"].split()) + len(call["function"]["arguments"].split()) for call in tool_calls
    )
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def _default_error_body(status: int) -> dict:
    try:
        message = HTTPStatus(status).phrase
    except ValueError:
        message = f"HTTP {status}"
    if status == 429:
        return openai_error_body(f"Rate limit reached: {message}", "requests", "rate_limit_exceeded")
    if status >= 500:
        return openai_error_body(
            f"The server had an error while processing your request ({message}).", "server_error"
        )
    return openai_error_body(message, "invalid_request_error")


def _compact_json(payload: dict) -> bytes:
    return json.dumps(payload, separators=(",", ":")).encode()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Scripted OpenAI-compatible upstream (test double); echoes.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--model", action="append", dest="models", help="repeatable; default test-model")
    parser.add_argument("--api-key", help="require this bearer token")
    args = parser.parse_args(argv)
    # Benchmarks send many requests: keep no per-request records.
    upstream = ScriptedUpstream(
        args.models or ["test-model"], args.api_key, host=args.host, port=args.port, record=False
    )
    with upstream:
        print(f"scripted upstream (test double) serving {upstream.base_url}", flush=True)
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
