"""gateway/kong.yml: valid for decK (Kong's own offline check), loadable by the dev gateway, and holding the edge
policy the platform relies on. Broken fixtures prove both checks can fail."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest
import yaml

from gateway import kongconfig
from gateway.routing import RouteTable
from gateway_harness import FIXTURES, KONG_YML, ROOT

BROKEN = sorted((FIXTURES / "broken").glob("*.yml"))
ALL_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


@pytest.fixture(scope="module")
def document() -> dict:
    return yaml.safe_load(KONG_YML.read_text())


@pytest.fixture(scope="module")
def config() -> kongconfig.GatewayConfig:
    return kongconfig.load(KONG_YML)


def all_routes(document: dict) -> list[dict]:
    return [route for service in document["services"] for route in service.get("routes", [])]


def plugin(entries: list[dict], name: str) -> dict | None:
    return next((entry["config"] for entry in entries if entry["name"] == name), None)


@pytest.fixture(scope="module")
def deck() -> str:
    path = shutil.which("deck")
    if path is None:
        if os.environ.get("CI"):
            pytest.fail("deck is not installed (the Makefile installs it with apt-get install deck)")
        pytest.skip("deck is not installed (apt-get install deck)")
    return path


class TestDeckValidate:
    def test_kong_yml_is_valid(self, deck):
        result = subprocess.run([deck, "validate", "-s", str(KONG_YML)], capture_output=True, text=True)
        assert result.returncode == 0, result.stdout + result.stderr

    @pytest.mark.parametrize("broken", BROKEN, ids=lambda path: path.stem)
    def test_broken_config_is_rejected(self, deck, broken):
        result = subprocess.run([deck, "validate", "-s", str(broken)], capture_output=True, text=True)
        assert result.returncode != 0, f"deck accepted {broken.name}"


class TestDevGatewayLoader:
    @pytest.mark.parametrize("broken", BROKEN, ids=lambda path: path.stem)
    def test_broken_config_is_rejected(self, broken):
        with pytest.raises(kongconfig.ConfigError):
            kongconfig.load(broken)

    def test_gateway_refuses_to_start_on_a_broken_config(self):
        result = subprocess.run(
            [sys.executable, "-m", "gateway.devgateway", "--config", str(BROKEN[0]), "--port", "0"],
            cwd=ROOT, capture_output=True, text=True, timeout=30)
        assert result.returncode == 2
        assert "devgateway:" in result.stderr

    @pytest.mark.parametrize("route_fields, complaint", [
        ({"paths": ["~/v1/items/\\d+"]}, "regex path"),
        ({"paths": ["/v1"], "hosts": ["api.example"]}, "hosts"),
        ({"paths": ["/v1"], "path_handling": "v1"}, "path_handling"),
        ({"methods": ["GET"]}, "no paths"),
        ({"paths": ["/v1"], "plugins": [{"name": "key-auth"}]}, "not emulated"),
    ])
    def test_what_it_cannot_emulate_is_refused_not_ignored(self, route_fields, complaint):
        document = {"_format_version": "3.0",
                    "services": [{"name": "llm", "url": "http://llm", "routes": [{"name": "r", **route_fields}]}]}
        with pytest.raises(kongconfig.ConfigError, match=complaint):
            kongconfig.parse(document)

    def test_route_plugin_replaces_the_global_one(self):
        document = {"_format_version": "3.0",
                    "services": [{"name": "llm", "url": "http://llm", "routes": [
                        {"name": "open", "paths": ["/open"],
                         "plugins": [{"name": "cors", "config": {"origins": ["*"]}}]},
                        {"name": "app", "paths": ["/app"]}]}],
                    "plugins": [{"name": "cors", "config": {"origins": ["http://localhost:3000"]}}]}
        open_route, app_route = kongconfig.parse(document).routes
        assert open_route.plugins.cors.allow_all
        assert not app_route.plugins.cors.allow_all


class TestEdgePolicy:
    def test_format_and_upstreams(self, document):
        assert document["_format_version"] == "3.0"
        for service in document["services"]:
            assert service["url"] == f"http://{service['name']}.jan.svc.cluster.local"

    def test_the_public_functions_are_routed(self, config):
        assert set(config.services) == {"llm", "mcp", "realtime"}

    @pytest.mark.parametrize("path, route", [
        ("/llm/v1/models", "llm-prefixed"), ("/v1/models", "llm-v1"), ("/v1/chat/completions", "llm-chat-completions"),
        ("/auth/guest-login", "llm-auth-sessions"), ("/llm/auth/login", "llm-auth-sessions"),
        ("/auth/refresh-token", "llm-auth-sessions"), ("/auth/me", "llm-auth"), ("/auth/logout", "llm-auth"),
        ("/healthz", "llm-health"), ("/readyz", "llm-health"),
        ("/v1/public/shares/abc", "llm-public-shares"),
        ("/mcp", "mcp-rpc"), ("/mcp/healthz", "mcp-health"), ("/mcp/readyz", "mcp-health"),
        ("/v1/mcp-tools", "mcp-tools"), ("/v1/mcp-tools/google_search", "mcp-tools"),
        ("/v1/admin/mcp-tools/mcp_scrape_001", "mcp-tools"), ("/v1/admin/models", "llm-v1"),
        # Longest prefix: /v1/realtime beats llm's /v1.
        ("/v1/realtime/sessions", "realtime-v1"), ("/v1/realtime/sessions/sess_abc", "realtime-v1"),
        ("/v1/realtime/client_secrets", "realtime-v1"), ("/realtime/healthz", "realtime-prefixed"),
    ])
    def test_routes(self, config, path, route):
        method = "POST" if path.endswith(("completions", "login", "token", "/mcp")) else "GET"
        assert RouteTable(config.routes).match(method, path).route.name == route

    def test_mcp_endpoint_is_post_only_and_reaches_the_function_root(self, config):
        from gateway.routing import upstream_path

        table = RouteTable(config.routes)
        match = table.match("POST", "/mcp")
        assert (match.route.name, upstream_path(None, match, "/mcp")) == ("mcp-rpc", "/")
        assert table.match("GET", "/mcp") is None or table.match("GET", "/mcp").route.name != "mcp-rpc"

    @pytest.mark.parametrize("path", ["/mcp/metrics", "/mcp/version", "/mcp/openapi.json"])
    def test_mcp_internals_are_unreachable(self, config, path):
        for method in ALL_METHODS:
            match = RouteTable(config.routes).match(method, path)
            assert match is not None and match.route.plugins.termination is not None, (method, path)

    def test_streaming_routes_are_unbuffered_with_long_reads(self, document):
        routes = {route["name"]: route for route in all_routes(document)}
        for name in ("llm-chat-completions", "llm-v1", "llm-prefixed"):
            assert routes[name]["response_buffering"] is False
            assert routes[name]["request_buffering"] is False
        assert document["services"][0]["read_timeout"] >= 600000

    def test_no_host_preservation_and_no_identity_plugins(self, document):
        assert all(route.get("preserve_host") is False for route in all_routes(document))
        names = {entry["name"] for entry in document.get("plugins", [])}
        names |= {entry["name"] for route in all_routes(document) for entry in route.get("plugins", [])}
        # Functions authenticate every request themselves: Kong neither checks keys nor adds identity headers.
        assert not names & {"key-auth", "jwt", "request-transformer", "openid-connect", "basic-auth"}

    def test_global_plugins(self, document):
        limits = plugin(document["plugins"], "rate-limiting")
        assert (limits["minute"], limits["hour"], limits["limit_by"], limits["policy"]) == (600, 10000, "ip", "redis")
        cors = plugin(document["plugins"], "cors")
        assert {"http://localhost:3000", "http://localhost:1420", "http://127.0.0.1:3000",
                "tauri://localhost"} <= set(cors["origins"])
        assert cors["credentials"] is True
        assert set(cors["exposed_headers"]) == {"X-Request-Id", "X-Auth-Method", "X-Principal-Id", "X-User-ID"}
        size = plugin(document["plugins"], "request-size-limiting")
        assert (size["allowed_payload_size"], size["size_unit"]) == (10, "megabytes")

    def test_every_rate_limit_uses_the_cluster_redis_with_the_password_from_a_secret(self, document):
        instances = [document["plugins"], *(service.get("plugins", []) for service in document["services"]),
                     *(route.get("plugins", []) for route in all_routes(document))]
        for limits in filter(None, (plugin(entries, "rate-limiting") for entries in instances)):
            assert limits["policy"] == "redis"
            assert limits["redis"] == {"host": "redis.jan.svc.cluster.local", "port": 6379, "ssl": False,
                                       "timeout": 2000, "password": "{vault://env/jan-redis-password}"}
            assert not [key for key in limits if key.startswith("redis_")]

    def test_one_counter_for_every_llm_route(self, document):
        """A service-level instance: Kong counts all of the service's routes together (three route-level
        counters gave a client three budgets)."""
        service = document["services"][0]
        limits = plugin(service["plugins"], "rate-limiting")
        assert (limits["minute"], limits["hour"]) == (120, 3000)
        own = {route["name"] for route in service["routes"] if plugin(route.get("plugins", []), "rate-limiting")}
        assert own == {"llm-public-shares", "llm-auth-sessions"}

    def test_logins_and_refreshes_have_a_tighter_limit(self, document):
        sessions = next(route for route in all_routes(document) if route["name"] == "llm-auth-sessions")
        limits = plugin(sessions["plugins"], "rate-limiting")
        assert (limits["minute"], limits["hour"]) == (20, 200)

    def test_public_shares_have_a_stricter_limit(self, document):
        shares = next(route for route in all_routes(document) if route["name"] == "llm-public-shares")
        limits = plugin(shares["plugins"], "rate-limiting")
        assert (limits["minute"], limits["hour"]) == (100, 1000)
        assert set(shares["methods"]) == {"GET", "HEAD", "OPTIONS"}

    @pytest.mark.parametrize("internal", ["/metrics", "/version", "/openapi.json"])
    def test_internals_are_unreachable_through_every_prefix(self, config, internal):
        """An internal path, and <prefix><path> for every route that strips its prefix (the function would see
        the internal path), end at a request-termination 404 for every method."""
        table = RouteTable(config.routes)
        prefixes = {path for route in config.routes if route.strip_path for path in route.paths}
        for path in [internal, *(prefix.rstrip("/") + internal for prefix in prefixes)]:
            for method in ALL_METHODS:
                match = table.match(method, path)
                assert match is not None and match.route.plugins.termination is not None, (method, path)
                assert match.route.plugins.termination.status == 404


def test_the_issuers_public_documents_are_routed_to_llm_for_any_origin(config):
    table = RouteTable(config.routes)
    for path in ("/.well-known/jwks.json", "/.well-known/openid-configuration"):
        match = table.match("GET", path)
        assert match is not None and match.route.name == "llm-well-known"
        assert match.route.plugins.cors.allow_all and not match.route.plugins.cors.credentials
