"""Server-sent events on the response side: headers that stop every buffer on the way, keep-alive comments,
error events, and noticing that the client went away while we wait on an upstream."""
from __future__ import annotations

import json
import select
import socket

from shared.errors import ApiError, error_body

KEEPALIVE = b": keep-alive\n\n"

HEADERS = {
    "Cache-Control": "no-cache",
    "X-Accel-Buffering": "no",
}


def error_event(error: ApiError) -> bytes:
    """An OpenAI-style error event (the openai SDK raises APIError on a data chunk carrying `error`)."""
    return b"data: " + json.dumps(error_body(error.status, error.message, code=error.code)).encode() + b"\n\n"


def client_socket(environ: dict):
    return environ.get("gunicorn.socket") or environ.get("werkzeug.socket")


def client_disconnected(sock) -> bool:
    """True when the client has closed its end: the socket is readable and a peek reads end-of-file."""
    if sock is None:
        return False
    try:
        readable, _, _ = select.select([sock], [], [], 0)
        if not readable:
            return False
        return sock.recv(1, socket.MSG_PEEK) == b""
    except (OSError, ValueError):
        return True
