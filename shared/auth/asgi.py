"""ASGI adapter over the shared verification core: the same PrincipalResolver the Flask functions use, run in a
worker thread (it reads PostgreSQL and checks RSA signatures), so the event loop never blocks on it.

The resolved Principal is put in the ASGI scope (`scope["jan.principal"]`); handlers read it from there. Identity
headers from outside are never read: only the request's own token or API key counts.
"""
from __future__ import annotations

import json
import re
import typing
import uuid

import anyio.to_thread

from shared.auth.principal import Principal, PrincipalResolver
from shared.errors import ApiError, error_body

PRINCIPAL_KEY = "jan.principal"
REQUEST_ID_KEY = "jan.request_id"
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


class _Headers:
    """Case-insensitive `.get` over raw ASGI headers (what credential_from needs)."""

    def __init__(self, raw: typing.Iterable[tuple[bytes, bytes]]):
        self._values: dict[str, str] = {}
        for name, value in raw:
            self._values.setdefault(name.decode("latin-1").lower(), value.decode("latin-1"))

    def get(self, name: str, default: str | None = None) -> str | None:
        return self._values.get(name.lower(), default)


def principal_of(scope: dict) -> Principal:
    return scope[PRINCIPAL_KEY]


def request_id_of(scope: dict) -> str:
    return scope.get(REQUEST_ID_KEY, "")


async def send_error(send, status: int, message: str, *, request_id: str, headers: dict | None = None,
                     code: str | None = None) -> None:
    payload = json.dumps(error_body(status, message, code=code, request_id=request_id)).encode()
    response_headers = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode()),
                        (b"x-request-id", request_id.encode())]
    response_headers += [(name.lower().encode(), value.encode()) for name, value in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": response_headers})
    await send({"type": "http.response.body", "body": payload})


class AuthenticationMiddleware:
    """Every HTTP request but the open paths (health, metrics, version, OpenAPI) must carry a valid credential;
    otherwise 401 in the platform's error body. Also gives each request its id (X-Request-Id, echoed)."""

    def __init__(self, app, resolver: PrincipalResolver, open_paths: typing.Collection[str]):
        self.app = app
        self.resolver = resolver
        self.open_paths = frozenset(open_paths)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = _Headers(scope.get("headers", ()))
        incoming = headers.get("x-request-id") or ""
        request_id = incoming if _REQUEST_ID.match(incoming) else str(uuid.uuid4())
        scope[REQUEST_ID_KEY] = request_id
        if scope["path"] not in self.open_paths:
            try:
                scope[PRINCIPAL_KEY] = await anyio.to_thread.run_sync(self.resolver.resolve, headers)
            except ApiError as exc:
                await send_error(send, exc.status, exc.message, request_id=request_id, headers=exc.headers,
                                 code=exc.code)
                return

        async def send_with_request_id(message):
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", ()), (b"x-request-id", request_id.encode())]}
            await send(message)

        await self.app(scope, receive, send_with_request_id)
