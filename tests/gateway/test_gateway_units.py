"""The dev gateway's Kong semantics without sockets: path normalisation, route priority, upstream paths, CORS."""

from __future__ import annotations

import pytest

from gateway.cors import Cors, merge_cors_headers
from gateway.plugins import PluginConfigError, build_route_plugins
from gateway.routing import Match, Route, RouteTable, normalize_path, upstream_path


@pytest.mark.parametrize("raw, normalized", [
    ("/v1/models", "/v1/models"),
    ("/llm//v1///models", "/llm/v1/models"),
    ("/llm/./v1/../metrics", "/llm/metrics"),
    ("/../../metrics", "/metrics"),
    ("/v1/models/", "/v1/models/"),
    ("/a/b/..", "/a/"),
    ("/%6D%65trics", "/metrics"),
    ("/llm/%2e%2e/metrics", "/metrics"),
    ("/v1/models/org%2fname", "/v1/models/org%2Fname"),
])
def test_normalize_path(raw, normalized):
    assert normalize_path(raw) == normalized


def route(name: str, paths: list[str], methods: list[str] | None = None, strip: bool = False) -> Route:
    return Route(name, "svc", tuple(paths), frozenset(methods) if methods else None, strip)


class TestPriority:
    table = RouteTable([
        route("v1", ["/v1"]),
        route("chat", ["/v1/chat/completions"]),
        route("shares", ["/v1/public/shares"], ["GET"]),
        route("health", ["/healthz"], ["GET"]),
        route("root-get", ["/"], ["GET"]),
    ])

    @pytest.mark.parametrize("method, path, expected", [
        ("POST", "/v1/chat/completions", "chat"),
        ("POST", "/v1/chat/completionsX", "chat"),
        ("POST", "/v1/models", "v1"),
        ("GET", "/v1/public/shares/x", "shares"),
        ("POST", "/v1/public/shares/x", "v1"),
        # A route with methods outranks any paths-only route: Kong's traditional_compatible priority.
        ("GET", "/v1/chat/completions", "root-get"),
        ("GET", "/healthz", "health"),
        ("POST", "/healthz", None),
    ])
    def test_match(self, method, path, expected):
        match = self.table.match(method, path)
        assert (match.route.name if match else None) == expected


@pytest.mark.parametrize("service_path, prefix, strip, request_path, expected", [
    # Kong's path_handling v0 table (docs: "Path handling algorithms").
    (None, "/llm", True, "/llm/v1/models", "/v1/models"),
    (None, "/llm", True, "/llm", "/"),
    (None, "/llm", True, "/llm/", "/"),
    (None, "/llm", True, "/llmx", "/x"),
    (None, "/v1", False, "/v1/models", "/v1/models"),
    ("/s", "/fv0", False, "/fv0req", "/s/fv0req"),
    ("/s", "/fv0", False, "/fv0", "/s/fv0"),
    ("/s", "/tv0", True, "/tv0req", "/s/req"),
    ("/s", "/tv0", True, "/tv0", "/s"),
    ("/s", "/tv0", True, "/tv0/", "/s/"),
    ("/s/", "/fv0", False, "/fv0req", "/s/fv0req"),
    ("/s/", "/tv0", True, "/tv0req", "/s/req"),
    ("/s/", "/tv0", True, "/tv0", "/s"),
    ("/s/", "/tv0", True, "/tv0/", "/s/"),
])
def test_upstream_path(service_path, prefix, strip, request_path, expected):
    match = Match(route("r", [prefix], strip=strip), prefix)
    assert upstream_path(service_path, match, request_path) == expected


class TestCors:
    app = Cors({"origins": ["http://localhost:3000", "tauri://localhost", "https://(.*)\\.jan\\.ai"],
                "credentials": True, "exposed_headers": ["X-Request-Id"]})

    @pytest.mark.parametrize("origin, allowed", [
        ("http://localhost:3000", True),
        ("tauri://localhost", True),
        ("https://chat.jan.ai", True),
        ("https://chat.jan.ai.evil.example", False),
        ("http://localhost:3001", False),
        ("http://localhost", False),
        ("http://localhost:99999999", False),
        ("http://[::1", False),
        ("null", False),
    ])
    def test_origin_matching(self, origin, allowed):
        granted = dict(self.app.response_headers({"HTTP_ORIGIN": origin})).get("Access-Control-Allow-Origin")
        assert granted == (origin if allowed else None)

    def test_default_port_is_normalised(self):
        cors = Cors({"origins": ["https://app.example:443"]})
        assert dict(cors.response_headers({"HTTP_ORIGIN": "https://app.example"}))["Access-Control-Allow-Origin"]

    @pytest.mark.parametrize("origins", [["*"], []], ids=["star", "none (Kong: any)"])
    def test_any_origin_with_credentials_is_refused(self, origins):
        """Kong would echo every Origin with Allow-Credentials: any site could read credentialed responses."""
        with pytest.raises(PluginConfigError, match="credentials"):
            build_route_plugins({"cors": {"origins": origins, "credentials": True}})

    def test_wildcard_without_credentials_answers_star(self):
        headers = dict(Cors({"origins": ["*"]}).response_headers({"HTTP_ORIGIN": "https://x.example"}))
        assert headers["Access-Control-Allow-Origin"] == "*"
        assert "Access-Control-Allow-Credentials" not in headers

    def test_preflight_needs_origin_and_requested_method(self):
        assert self.app.is_preflight({"REQUEST_METHOD": "OPTIONS", "HTTP_ORIGIN": "x",
                                      "HTTP_ACCESS_CONTROL_REQUEST_METHOD": "POST"})
        assert not self.app.is_preflight({"REQUEST_METHOD": "OPTIONS", "HTTP_ORIGIN": "x"})

    def test_merge_replaces_upstream_grants_and_extends_vary(self):
        upstream = [("Access-Control-Allow-Origin", "*"), ("Vary", "Accept-Encoding"), ("Content-Type", "x")]
        merged = merge_cors_headers(upstream, self.app.response_headers({"HTTP_ORIGIN": "https://evil.example"}))
        names = dict(merged)
        assert "Access-Control-Allow-Origin" not in names
        assert names["Vary"] == "Accept-Encoding, Origin"
        assert names["Access-Control-Expose-Headers"] == "X-Request-Id"
