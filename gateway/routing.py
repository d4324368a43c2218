"""Kong's route matching, as the traditional_compatible router (Kong 3.x's default) does it for plain paths.

A route with more kinds of match fields wins over one with fewer (a route with `methods` and `paths` beats a
route with `paths` only, whatever the path lengths); among equals, the longest matching path prefix wins.
Prefixes are plain string prefixes: `/llm` also matches `/llmx`, as in Kong.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
_PERCENT_ESCAPE = re.compile(r"%([0-9A-Fa-f]{2})")


@dataclass(frozen=True)
class Route:
    name: str
    service: str
    paths: tuple[str, ...]
    methods: frozenset[str] | None = None
    strip_path: bool = True
    preserve_host: bool = False
    plugins: Any = field(default=None, compare=False)

    @property
    def match_weight(self) -> int:
        return 1 + (self.methods is not None)


@dataclass(frozen=True)
class Match:
    route: Route
    prefix: str


class RouteTable:
    """Built once at start: every (route, path) pair sorted by Kong's priority, first match wins."""

    def __init__(self, routes: list[Route]):
        entries = [(route, path) for route in routes for path in route.paths]
        entries.sort(key=lambda entry: (entry[0].match_weight, len(entry[1])), reverse=True)
        self._entries = entries

    def match(self, method: str, path: str) -> Match | None:
        for route, prefix in self._entries:
            if path.startswith(prefix) and (route.methods is None or method in route.methods):
                return Match(route, prefix)
        return None


def _decode_unreserved(escape: re.Match[str]) -> str:
    char = chr(int(escape.group(1), 16))
    return char if char in UNRESERVED else escape.group(0).upper()


def normalize_path(path: str) -> str:
    """Kong's request path normalisation, applied before matching and forwarded upstream: percent-escapes of
    unreserved characters decoded, duplicate slashes merged, dot segments removed. `/llm/%2E%2E//metrics` and
    `/llm/../metrics` both become `/metrics`, so no spelling reaches a blocked path through a prefix route."""
    if "%" in path:
        path = _PERCENT_ESCAPE.sub(_decode_unreserved, path)
    if "//" not in path and "/." not in path:
        return path
    segments: list[str] = []
    for segment in path.split("/"):
        if segment == "..":
            if segments:
                segments.pop()
        elif segment not in ("", "."):
            segments.append(segment)
    trailing = "/" if path.endswith(("/", "/.", "/..")) and segments else ""
    return "/" + "/".join(segments) + trailing


def upstream_path(service_path: str | None, match: Match, path: str) -> str:
    """The path Kong sends upstream (path_handling v0): the service path, then the request path with the
    matched prefix removed when the route strips it."""
    base = service_path or "/"
    if not match.route.strip_path:
        if base.endswith("/"):
            return base + path[1:]
        return base if path == "/" else base + path
    rest = path[len(match.prefix):]
    if base.endswith("/"):
        if rest == "":
            if base == "/" or path.endswith("/"):
                return base
            return base[:-1]
        return base[:-1] + rest if rest.startswith("/") else base + rest
    if rest == "":
        return base + "/" if len(path) > 1 and path.endswith("/") else base
    return base + rest if rest.startswith("/") else base + "/" + rest
