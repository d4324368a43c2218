"""The request being served, as context variables: request id and W3C trace context.

Set by the web adapter (Flask's before_request today, an ASGI middleware tomorrow) and read by framework-free
code: error bodies, outbound HTTP, log lines. Each gevent greenlet and each thread has its own context, so
concurrent requests never see each other's values; outside a request they are unset.
"""
from __future__ import annotations

from contextvars import ContextVar, Token
from dataclasses import dataclass

__all__ = ["RequestContext", "current", "enter", "leave"]


@dataclass(frozen=True)
class RequestContext:
    request_id: str
    trace_id: str
    traceparent: str  # what to send onward: our span in the caller's trace


_current: ContextVar[RequestContext | None] = ContextVar("jan_request_context", default=None)


def current() -> RequestContext | None:
    return _current.get()


def enter(context: RequestContext) -> Token:
    return _current.set(context)


def leave(token: Token) -> None:
    _current.reset(token)
