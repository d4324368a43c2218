"""Kong's `cors` plugin (3.x handler): the gateway answers preflights itself and adds Access-Control-* headers to
every other response, upstream's or its own."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

DEFAULT_METHODS = "GET,HEAD,PUT,PATCH,POST,DELETE,OPTIONS,TRACE,CONNECT"
# Kong treats an origin entry with any other character as a regular expression.
_REGEX_HINT = re.compile(r"[^A-Za-z0-9.:/-]")
SUPPORTED_KEYS = frozenset(
    {"origins", "methods", "headers", "exposed_headers", "credentials", "max_age", "preflight_continue",
     "private_network"})

Headers = list[tuple[str, str]]


def _normalize_origin(origin: str) -> tuple[str, str]:
    """(scheme://host[:port] without default ports, host), as Kong compares origins."""
    try:
        parts = urlsplit(origin)
        port = parts.port
    except ValueError:  # a client-sent Origin that is not a URL: compared as it is
        return origin, origin
    if not parts.hostname:
        return origin, origin
    if (parts.scheme, port) in (("http", 80), ("https", 443)):
        port = None
    domain = (f"{parts.scheme}://" if parts.scheme else "") + parts.hostname + (f":{port}" if port else "")
    return domain, parts.hostname


class Cors:
    def __init__(self, config: dict):
        origins = config.get("origins") or []
        self.allow_all = not origins or origins == ["*"]
        self._exact: set[str] = set()
        self._patterns: list[tuple[re.Pattern[str], bool]] = []
        for entry in [] if self.allow_all else origins:
            if _REGEX_HINT.search(entry):
                pattern = entry if entry.endswith("$") else entry + "$"
                self._patterns.append((re.compile(pattern.removeprefix("^")), ":" not in entry))
            else:
                self._exact.add(_normalize_origin(entry)[0])
        self.methods = ",".join(config["methods"]) if config.get("methods") else DEFAULT_METHODS
        self.headers = ",".join(config["headers"]) if config.get("headers") else None
        self.exposed_headers = ",".join(config["exposed_headers"]) if config.get("exposed_headers") else None
        self.credentials = bool(config.get("credentials"))
        self.max_age = config.get("max_age")
        self.preflight_continue = bool(config.get("preflight_continue"))
        self.private_network = bool(config.get("private_network"))

    def _origin_allowed(self, origin: str) -> bool:
        domain, host = _normalize_origin(origin)
        if domain in self._exact:
            return True
        return any(pattern.match(host if by_host else domain) for pattern, by_host in self._patterns)

    def _origin_headers(self, origin: str | None) -> Headers:
        if self.allow_all:  # with credentials Kong would echo the origin: gateway.plugins refuses that config
            return [("Access-Control-Allow-Origin", "*")]
        headers = [("Vary", "Origin")]
        if origin and self._origin_allowed(origin):
            headers.append(("Access-Control-Allow-Origin", origin))
        if self.credentials:
            headers.append(("Access-Control-Allow-Credentials", "true"))
        return headers

    def is_preflight(self, environ: dict) -> bool:
        return (environ["REQUEST_METHOD"] == "OPTIONS" and "HTTP_ORIGIN" in environ
                and "HTTP_ACCESS_CONTROL_REQUEST_METHOD" in environ)

    def preflight_headers(self, environ: dict) -> Headers:
        headers = self._origin_headers(environ.get("HTTP_ORIGIN"))
        allow_headers = self.headers or environ.get("HTTP_ACCESS_CONTROL_REQUEST_HEADERS")
        if allow_headers:
            headers.append(("Access-Control-Allow-Headers", allow_headers))
        headers.append(("Access-Control-Allow-Methods", self.methods))
        if self.max_age is not None:
            headers.append(("Access-Control-Max-Age", str(self.max_age)))
        if self.private_network and environ.get("HTTP_ACCESS_CONTROL_REQUEST_PRIVATE_NETWORK") == "true":
            headers.append(("Access-Control-Allow-Private-Network", "true"))
        return headers

    def response_headers(self, environ: dict) -> Headers:
        headers = self._origin_headers(environ.get("HTTP_ORIGIN"))
        if self.exposed_headers:
            headers.append(("Access-Control-Expose-Headers", self.exposed_headers))
        return headers


def merge_cors_headers(response_headers: Headers, cors_headers: Headers) -> Headers:
    """Kong sets (replaces) the Access-Control-* headers, clears an upstream Allow-Origin it did not grant, and adds
    Origin to Vary."""
    replaced = {name.lower() for name, _ in cors_headers if name != "Vary"} | {"access-control-allow-origin"}
    merged = [(name, value) for name, value in response_headers if name.lower() not in replaced]
    for name, value in cors_headers:
        if name == "Vary":
            merged = _add_vary_origin(merged)
        else:
            merged.append((name, value))
    return merged


def _add_vary_origin(headers: Headers) -> Headers:
    for index, (name, value) in enumerate(headers):
        if name.lower() == "vary":
            if value.strip() == "*" or "origin" in (part.strip().lower() for part in value.split(",")):
                return headers
            headers[index] = (name, value + ", Origin")
            return headers
    headers.append(("Vary", "Origin"))
    return headers
