"""The dev gateway's WSGI application: Kong's request path (route, plugins, forward) over keep-alive pools, with
the response relayed chunk by chunk as it arrives."""

from __future__ import annotations

from collections.abc import Iterator
from http import HTTPStatus
from urllib.parse import urlsplit

import urllib3
from urllib3.exceptions import HTTPError, NewConnectionError, TimeoutError as UpstreamTimeout
from urllib3.util import SKIP_HEADER

from gateway.body import BodyTooLarge, IncompleteBody, RequestBody, request_body
from gateway.cors import merge_cors_headers
from gateway.disconnect import ClientDisconnected, DisconnectWatch
from gateway.headers import downstream_response_headers, upstream_request_headers
from gateway.kongconfig import Service
from gateway.plugins import kong_json
from gateway.routing import Match, RouteTable, normalize_path, upstream_path

READ_SIZE = 64 * 1024
NO_ROUTE = "no Route matched with those values"
BAD_UPSTREAM = "An invalid response was received from the upstream server"
UPSTREAM_TIMEOUT = "The upstream server is timing out"
_JSON = "application/json; charset=utf-8"


class StreamAborted(Exception):
    """The response started but cannot complete: the connection to the client must close without the final chunk,
    so the client sees an incomplete response rather than a short one."""


class Gateway:
    def __init__(self, routes: RouteTable, services: dict[str, Service], pools: dict[str, urllib3.HTTPConnectionPool]):
        self._routes = routes
        self._services = services
        self._pools = pools

    def __call__(self, environ: dict, start_response):
        path, query = _split_target(environ)
        path = normalize_path(path)
        environ["gateway.request_path"] = path
        match = self._routes.match(environ["REQUEST_METHOD"], path)
        if match is None:
            return _respond(start_response, 404, kong_json(NO_ROUTE))
        plugins = match.route.plugins
        cors = plugins.cors
        cors_headers = cors.response_headers(environ) if cors else []
        if cors and not cors.preflight_continue and cors.is_preflight(environ):
            return _respond(start_response, 200, b"", extra_headers=cors.preflight_headers(environ))
        try:
            body = request_body(environ, plugins.size_limit)
        except BodyTooLarge as error:
            return _respond(start_response, error.status, kong_json(str(error)), extra_headers=cors_headers)
        if plugins.termination:
            termination = plugins.termination
            return _respond(start_response, termination.status, termination.body, termination.content_type,
                            cors_headers)
        pool = self._pools.get(match.route.service)
        if pool is None:
            message = (f"no local upstream for service '{match.route.service}': start the dev gateway with "
                       f"--upstream {match.route.service}=http://127.0.0.1:PORT")
            return _respond(start_response, 502, kong_json(message), extra_headers=cors_headers)
        return self._forward(environ, start_response, match, path, query, body, pool, cors_headers)

    def _forward(self, environ, start_response, match: Match, path: str, query: str, body: RequestBody,
                 pool: urllib3.HTTPConnectionPool, cors_headers: list[tuple[str, str]]):
        route = match.route
        target = upstream_path(self._services[route.service].path, match, path)
        if query:
            target += "?" + query
        forwarded_prefix = match.prefix if route.strip_path and match.prefix != "/" else None
        headers = upstream_request_headers(environ, forwarded_prefix, route.preserve_host)
        if body.length is not None:
            headers["Content-Length"] = str(body.length)
        # Without these, urllib3 would add headers of its own that the client never sent.
        headers.setdefault("Accept-Encoding", SKIP_HEADER)
        headers.setdefault("User-Agent", SKIP_HEADER)

        watch = DisconnectWatch(environ["gateway.client_socket"])
        content = body.content
        if isinstance(content, Iterator):
            content = _then(content, watch.start)
        else:
            watch.start()
        try:
            response = watch.wait(_open, pool, environ["REQUEST_METHOD"], target, content, headers,
                                  body.length is None and content is not None)
        except (ClientDisconnected, IncompleteBody, HTTPError, OSError) as error:
            watch.stop()
            return _respond(start_response, *_failure(error, cors_headers))

        relay = _Relay(response, watch)
        try:
            response_headers = downstream_response_headers(response.headers.iteritems(),
                                                           response.headers.get("Connection"))
            if cors_headers:
                response_headers = merge_cors_headers(response_headers, cors_headers)
            status = f"{response.status} {response.reason or _reason(response.status)}"
            write = start_response(status, response_headers)
            if environ["REQUEST_METHOD"] == "HEAD" or response.status in (204, 304):
                relay.close()
                return []
            if "Content-Length" not in response.headers:
                # A stream: status and headers go out now, not with the first chunk, which may be a slow token away.
                write(b"")
        except BaseException:
            relay.close()
            raise
        return relay


def _open(pool: urllib3.HTTPConnectionPool, method: str, target: str, content, headers: dict[str, str],
          chunked: bool) -> urllib3.BaseHTTPResponse:
    return pool.urlopen(method, target, body=content, headers=headers, retries=False, redirect=False,
                        assert_same_host=False, preload_content=False, decode_content=False, release_conn=False,
                        chunked=chunked)


def _failure(error: Exception, cors_headers: list[tuple[str, str]]) -> tuple[int, bytes, str, list[tuple[str, str]]]:
    """The answer when no upstream response came: Kong's statuses and messages."""
    if isinstance(error, ClientDisconnected):
        return 499, b"", _JSON, [("Connection", "close")]
    if isinstance(error, IncompleteBody):
        return 400, kong_json("Bad request"), _JSON, [("Connection", "close")]
    # Refused connections are NewConnectionError, which urllib3 derives from its TimeoutError.
    if isinstance(error, UpstreamTimeout) and not isinstance(error, NewConnectionError):
        return 504, kong_json(UPSTREAM_TIMEOUT), _JSON, cors_headers
    return 502, kong_json(BAD_UPSTREAM), _JSON, cors_headers


class _Relay:
    """The upstream body as it arrives, one read1() per chunk. The WSGI server calls close() in every case: a
    complete body returns the connection to the pool, anything else (the client went away) closes it."""

    def __init__(self, response: urllib3.BaseHTTPResponse, watch: DisconnectWatch):
        self._response = response
        self._watch = watch
        self._completed = False
        self._closed = False

    def __iter__(self) -> _Relay:
        return self

    def __next__(self) -> bytes:
        try:
            chunk = self._watch.wait(self._response.read1, READ_SIZE)
        except ClientDisconnected:
            raise StreamAborted("client closed the connection") from None
        except (HTTPError, OSError) as error:
            raise StreamAborted(f"upstream stream broke: {error!r}") from None
        if not chunk:
            self._completed = True
            raise StopIteration
        return chunk

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._watch.stop()
        if not self._completed:
            self._response.close()
        self._response.release_conn()


def _then(blocks: Iterator[bytes], callback) -> Iterator[bytes]:
    yield from blocks
    callback()


def _split_target(environ: dict) -> tuple[str, str]:
    target = environ["gateway.raw_target"]
    if not target.startswith("/"):
        # Absolute form (`GET http://host/path`): route on its path, as Kong does.
        parts = urlsplit(target)
        return parts.path or "/", parts.query
    path, _, query = target.partition("?")
    return path, query


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Client Closed Request" if status == 499 else "Unknown"


def _respond(start_response, status: int, body: bytes, content_type: str = _JSON,
             extra_headers: list[tuple[str, str]] = ()) -> list[bytes]:
    headers = [("Content-Length", str(len(body))), *extra_headers]
    if body:
        headers.insert(0, ("Content-Type", content_type))
    start_response(f"{status} {_reason(status)}", headers)
    return [body]
