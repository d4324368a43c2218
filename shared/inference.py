"""The inference client: calls OpenAI-compatible providers (vLLM, remote APIs, the local model server).

Lean on purpose (urllib3 + json, no `openai` SDK): it sits on every chat request and on the cold-start path.
Upstream failures become UpstreamError (502/504) or, when the provider rejected the request itself (4xx),
a client error carrying the provider's message.
"""
from __future__ import annotations

import json
from dataclasses import dataclass

import urllib3

from shared import outbound
from shared.errors import ApiError, TooManyRequests, UpstreamError


@dataclass(frozen=True)
class Endpoint:
    base_url: str  # ends in /v1 (or whatever prefix precedes /chat/completions)
    api_key: str | None = None

    def url(self, path: str) -> str:
        return self.base_url.rstrip("/") + path

    def headers(self, *, stream: bool = False) -> dict[str, str]:
        headers = {"Content-Type": "application/json",
                   "Accept": "text/event-stream" if stream else "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        return headers


def _provider_message(data: bytes) -> str:
    try:
        body = json.loads(data)
    except ValueError:
        return data[:200].decode("utf-8", "replace")
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict) and isinstance(error.get("message"), str):
        return error["message"]
    if isinstance(error, str):
        return error
    if isinstance(body, dict) and isinstance(body.get("message"), str):
        return body["message"]
    return "upstream error"


def error_for_status(status: int, data: bytes, headers=None) -> ApiError:
    """Map a provider's error status to ours: its 400/404/422 are the client's fault and keep their message;
    its auth failures are our configuration's fault (502); 429 passes through; 5xx is a 502."""
    message = _provider_message(data)
    if status == 429:
        retry_after = (headers or {}).get("Retry-After")
        return TooManyRequests(f"model provider rate limit: {message}",
                               headers={"Retry-After": retry_after} if retry_after else None)
    if status in (400, 404, 413, 422):
        return ApiError(f"model provider rejected the request: {message}", status=400 if status != 413 else 413,
                        code="upstream_rejected")
    return UpstreamError(f"model provider failed with status {status}: {message}", code="upstream_error")


class InferenceClient:
    def __init__(self, *, connect_timeout: float = 5.0, read_timeout: float = 600.0):
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout

    def _post(self, endpoint: Endpoint, path: str, payload: dict, *, stream: bool):
        try:
            return outbound.send("POST", endpoint.url(path), body=json.dumps(payload).encode(),
                                 headers=endpoint.headers(stream=stream), connect_timeout=self.connect_timeout,
                                 read_timeout=self.read_timeout, stream=stream)
        except urllib3.exceptions.NewConnectionError as exc:  # a subclass of ConnectTimeoutError, but refused
            raise UpstreamError(f"model provider unreachable ({type(exc).__name__})", code="upstream_unreachable") from None
        except urllib3.exceptions.TimeoutError:
            raise UpstreamError("model provider timed out", status=504, code="upstream_timeout") from None
        except urllib3.exceptions.HTTPError as exc:
            raise UpstreamError(f"model provider unreachable ({type(exc).__name__})", code="upstream_unreachable") from None

    def chat_completion(self, endpoint: Endpoint, payload: dict) -> dict:
        response = self._post(endpoint, "/chat/completions", payload, stream=False)
        if response.status != 200:
            raise error_for_status(response.status, response.data, response.headers)
        try:
            body = json.loads(response.data)
        except ValueError:
            raise UpstreamError("model provider returned invalid JSON", code="upstream_invalid") from None
        if not isinstance(body, dict) or not isinstance(body.get("choices"), list):
            raise UpstreamError("model provider returned an unexpected body", code="upstream_invalid")
        return body

    def open_stream(self, endpoint: Endpoint, payload: dict) -> "UpstreamStream":
        """Send a streaming request and wait for the response headers. Non-200 raises before any byte is sent."""
        response = self._post(endpoint, "/chat/completions", payload, stream=True)
        if response.status != 200:
            data = response.read()
            response.release_conn()
            raise error_for_status(response.status, data, response.headers)
        return UpstreamStream(response)

    def list_models(self, endpoint: Endpoint, *, timeout: float = 10.0) -> list[dict]:
        body = outbound.fetch_json(endpoint.url("/models"), headers=endpoint.headers(), timeout=timeout)
        data = body.get("data") if isinstance(body, dict) else None
        if not isinstance(data, list):
            raise UpstreamError("model provider returned an unexpected model list")
        return [entry for entry in data if isinstance(entry, dict) and isinstance(entry.get("id"), str)]


class UpstreamStream:
    """An open SSE response from a provider: raw chunks as they arrive, and a close that drops the connection."""

    def __init__(self, response):
        self._response = response
        self._chunked = response.chunked

    def chunks(self):
        try:
            if self._chunked:
                yield from self._response.read_chunked(decode_content=True)
            else:
                while True:
                    chunk = self._response.read1(65536)
                    if not chunk:
                        return
                    yield chunk
        except urllib3.exceptions.TimeoutError:
            raise UpstreamError("model provider stopped sending", status=504, code="upstream_timeout") from None
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise UpstreamError(f"model provider stream broke ({type(exc).__name__})", code="upstream_stream_broken") from None

    def abort(self) -> None:
        """Shut the socket down from another thread or greenlet: the reader's pending read fails at once."""
        try:
            self._response.shutdown()
        except (OSError, ValueError):  # ValueError: the reader already closed it
            pass

    def close(self) -> None:
        """Drop the connection rather than return it to the pool: the provider must see the client go away.
        Only the reader calls this (closing under a pending read is not allowed)."""
        conn = getattr(self._response, "connection", None)
        self._response.close()
        if conn is not None:
            conn.close()

    def release(self) -> None:
        """A stream read to its end leaves a reusable connection: back to the pool."""
        self._response.release_conn()
