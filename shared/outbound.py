"""Outbound HTTP: one pooled urllib3 client per process, explicit timeouts, retries only where safe,
and trace context propagated to whoever we call (other functions, model providers, JWKS endpoints).
Framework-free: the request being served comes from shared.context, so ASGI functions use it as it is.
"""
from __future__ import annotations

import json
import threading

import urllib3

from shared import context
from shared.errors import UpstreamError

_pool: urllib3.PoolManager | None = None
_pool_lock = threading.Lock()

# GETs are idempotent: retry connection failures and 502/503/504 twice with backoff. POSTs are never retried:
# a model call may already have run.
SAFE_RETRIES = urllib3.Retry(total=2, connect=2, read=0, status=2, backoff_factor=0.1,
                             status_forcelist=(502, 503, 504), allowed_methods=frozenset({"GET", "HEAD"}),
                             raise_on_status=False)


def pool() -> urllib3.PoolManager:
    global _pool
    if _pool is None:
        with _pool_lock:
            if _pool is None:
                _pool = urllib3.PoolManager(num_pools=16, maxsize=32, block=False, retries=False)
    return _pool


def propagation_headers() -> dict[str, str]:
    """W3C trace context and our request id, for every call made while serving a request."""
    current = context.current()
    if current is None:
        return {}
    return {"traceparent": current.traceparent, "X-Request-Id": current.request_id}


def send(method: str, url: str, *, body: bytes | None = None, headers: dict | None = None,
         connect_timeout: float = 5.0, read_timeout: float = 30.0, stream: bool = False):
    all_headers = propagation_headers()
    all_headers.update(headers or {})
    retries = SAFE_RETRIES if method in ("GET", "HEAD") else False
    return pool().request(
        method, url, body=body, headers=all_headers,
        timeout=urllib3.Timeout(connect=connect_timeout, read=read_timeout),
        retries=retries, preload_content=not stream, decode_content=True,
    )


def fetch_json(url: str, *, headers: dict | None = None, timeout: float = 5.0):
    """GET a JSON document; any failure is an UpstreamError (502/504) naming the host, never a 500."""
    try:
        response = send("GET", url, headers={"Accept": "application/json", **(headers or {})},
                        connect_timeout=timeout, read_timeout=timeout)
    except urllib3.exceptions.NewConnectionError:
        raise UpstreamError(f"could not reach {_host(url)}") from None
    except urllib3.exceptions.TimeoutError:
        raise UpstreamError(f"timed out calling {_host(url)}", status=504) from None
    except urllib3.exceptions.HTTPError as exc:
        raise UpstreamError(f"could not reach {_host(url)}: {type(exc).__name__}") from None
    if response.status != 200:
        raise UpstreamError(f"{_host(url)} answered {response.status}")
    try:
        return json.loads(response.data)
    except ValueError:
        raise UpstreamError(f"{_host(url)} returned invalid JSON") from None


def _host(url: str) -> str:
    return urllib3.util.parse_url(url).host or url
