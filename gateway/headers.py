"""Request and response headers across the hop: hop-by-hop headers dropped (RFC 9110 §7.6.1), X-Forwarded-* set
as Kong sets them for an untrusted client (Kong's default `trusted_ips` is empty), everything else untouched:
API keys and Authorization pass through, identity headers are not added."""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache

HOP_BY_HOP = frozenset({
    "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "proxy-connection", "te", "trailer",
    "trailers", "transfer-encoding", "upgrade",
})
# Set by the gateway from the connection; a client's own values are replaced, not trusted.
_FORWARDED = frozenset({
    "x-real-ip", "x-forwarded-proto", "x-forwarded-host", "x-forwarded-port", "x-forwarded-path",
    "x-forwarded-prefix",
})
# The gateway answered it to the client itself (pywsgi sends the 100 Continue when the body is first read).
_ANSWERED = frozenset({"expect"})


@lru_cache(maxsize=1024)
def _header_name(environ_key: str) -> str:
    """`HTTP_X_API_KEY` -> `X-Api-Key` (header names are case-insensitive)."""
    return "-".join(part.capitalize() for part in environ_key[5:].split("_"))


def _connection_tokens(value: str | None) -> frozenset[str]:
    if not value:
        return frozenset()
    return frozenset(token.strip().lower() for token in value.split(","))


def upstream_request_headers(environ: dict, forwarded_prefix: str | None, preserve_host: bool) -> dict[str, str]:
    """Headers for the upstream request. Host is left out (urllib3 sends the upstream's) unless the route
    preserves it; Content-Length and Transfer-Encoding are set by the body framing."""
    dropped = HOP_BY_HOP | _FORWARDED | _ANSWERED | _connection_tokens(environ.get("HTTP_CONNECTION"))
    headers: dict[str, str] = {}
    for key, value in environ.items():
        if key.startswith("HTTP_") and key != "HTTP_HOST":
            name = _header_name(key)
            if name.lower() not in dropped:
                headers[name] = value
    if "CONTENT_TYPE" in environ:
        headers["Content-Type"] = environ["CONTENT_TYPE"]

    host_header = environ.get("HTTP_HOST", "")
    if preserve_host and host_header:
        headers["Host"] = host_header
    client_ip = environ.get("REMOTE_ADDR", "")
    earlier = environ.get("HTTP_X_FORWARDED_FOR")
    headers["X-Forwarded-For"] = f"{earlier}, {client_ip}" if earlier else client_ip
    headers["X-Real-Ip"] = client_ip
    headers["X-Forwarded-Proto"] = environ.get("wsgi.url_scheme", "http")
    headers["X-Forwarded-Host"] = _without_port(host_header)
    headers["X-Forwarded-Port"] = environ.get("SERVER_PORT", "")
    headers["X-Forwarded-Path"] = environ["gateway.request_path"]
    if forwarded_prefix:
        headers["X-Forwarded-Prefix"] = forwarded_prefix
    return headers


def _without_port(host: str) -> str:
    if host.endswith("]"):  # a bare IPv6 literal
        return host
    return host.rsplit(":", 1)[0]


def downstream_response_headers(items: Iterable[tuple[str, str]], connection: str | None) -> list[tuple[str, str]]:
    """Upstream response headers minus hop-by-hop ones (the gateway frames its own response)."""
    dropped = HOP_BY_HOP | _connection_tokens(connection)
    return [(name, value) for name, value in items if name.lower() not in dropped]
