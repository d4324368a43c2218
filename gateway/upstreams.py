"""Local upstreams: which URL serves each Kong service, and one keep-alive connection pool per service."""

from __future__ import annotations

from urllib.parse import urlsplit

import urllib3

from gateway.kongconfig import Service

ENV_VARIABLE = "DEVGATEWAY_UPSTREAMS"
# Idle keep-alive connections kept per upstream; more are opened under load and closed after use.
POOL_SIZE = 32


class UpstreamSpecError(ValueError):
    pass


def parse_upstream_specs(specs: list[str]) -> dict[str, str]:
    """`["llm=http://127.0.0.1:8080", ...]` (each item may also be a comma-separated list) -> {service: url}."""
    upstreams: dict[str, str] = {}
    for item in specs:
        for spec in filter(None, (part.strip() for part in item.split(","))):
            name, separator, url = spec.partition("=")
            if not separator or not name.strip():
                raise UpstreamSpecError(f"upstream {spec!r} is not SERVICE=URL")
            parts = urlsplit(url.strip())
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise UpstreamSpecError(f"upstream {spec!r}: URL must be http(s)://host[:port]")
            if parts.path not in ("", "/") or parts.query:
                raise UpstreamSpecError(f"upstream {spec!r}: give no path; the Kong service's path applies")
            upstreams[name.strip()] = f"{parts.scheme}://{parts.netloc}"
    return upstreams


def connection_pools(urls: dict[str, str], services: dict[str, Service]) -> dict[str, urllib3.HTTPConnectionPool]:
    """A pool per mapped service, with the service's Kong timeouts (read_timeout is, as in Kong, the longest
    silence between two reads, so a slow first token or a quiet stream is not cut)."""
    return {
        name: urllib3.connection_from_url(
            url,
            maxsize=POOL_SIZE,
            block=False,
            retries=False,
            timeout=urllib3.Timeout(connect=services[name].connect_timeout, read=services[name].read_timeout),
        )
        for name, url in urls.items()
        if name in services
    }
