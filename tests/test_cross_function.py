"""Isolation and bad input across every function of the platform (issue 9): the functions come from their
manifests (functions/<name>/function.toml), and each is either handled here or exempt with a reason, so a new
function cannot be forgotten. The llm function has its own, deeper sweeps (tests/llm/test_isolation_matrix.py,
tests/llm/test_bad_input.py); routing through the gateway already enumerates every function
(tests/deploy/test_kong_routing.py).

* Isolation: each route whose path argument names a user-owned resource is called for the owner's real resource
  by another user's token and API key (404, exactly the body a never-existing id gets), without credentials (401),
  and by the owner (the route's own success status).
* Bad input: each route that reads a body gets malformed JSON, a JSON array and a body over MAX_REQUEST_BYTES:
  a 4xx in the function's error body, never a 5xx, and the database (every table) unchanged.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from unittest import mock

import httpx
import pytest

from shared.errors import ERROR_TYPES
from shared.function_manifest import all_manifests
from tests.conftest import Account
from tests.llm.test_bad_input import body_reading_routes, mutating_routes, routes
from tests.mcp.conftest import mcp_env, sandbox, serper, start_uvicorn, stop  # noqa: F401 (fixtures)
from tests.realtime.conftest import clock, livekit, make_realtime, realtime_env  # noqa: F401 (fixtures)


@dataclass(frozen=True)
class Exempt:
    reason: str


# How each function's user-owned routes are checked: the rules (path arguments naming a user's resource) with
# the owner's success status per method, or an exemption.
ISOLATION = {
    "llm": Exempt("tests/llm/test_isolation_matrix.py enumerates every llm route with a path argument"),
    "mcp": Exempt("no route names a user-owned resource: /v1/mcp-tools/{tool_key} and /v1/admin/mcp-tools/"
                  "{public_id} are the shared tool configuration (admin role-checked); the write-back of tool "
                  "results into a user's conversation is covered by tests/mcp/test_mcp_write_back.py"),
    "embeddings": Exempt("internal and stateless: it stores nothing and no route has a path argument"),
    "realtime": {"/v1/realtime/sessions/<session_id>": {"GET": 200, "DELETE": 200}},
}

# How each function's body-reading routes are found: for a Flask app (built by `flask_function`), probed on its
# url_map as the llm sweep does, with the POST/PUT/PATCH routes that read no body listed with a reason; for the
# ASGI app, a list of (method, rule, path to call); or an exemption.
BAD_INPUT = {
    "llm": Exempt("tests/llm/test_bad_input.py sweeps every llm body route with many more malformed bodies"),
    "embeddings": {"bodiless": {}},
    "realtime": {"bodiless": {
        "/v1/realtime/sessions": "the request body is ignored, as in Jan",
        "/v1/realtime/client_secrets": "not offered: 404 whatever is sent",
    }},
    # Its REST admin update and the MCP endpoint (at /v1/mcp and Jan's root alias); the OpenAPI rule, a real id.
    "mcp": [("PATCH", "/v1/admin/mcp-tools/{public_id}", "/v1/admin/mcp-tools/mcp_scrape_001"),
            ("POST", "/v1/mcp", "/v1/mcp"), ("POST", "/", "/")],
}
MCP_TOOL_CONFIG_RULES = {"/v1/mcp-tools/{tool_key}", "/v1/admin/mcp-tools/{public_id}"}

MALFORMED = '{"x": '
ARRAY = '[{"x": 1}]'


def test_every_function_is_handled_or_exempt():
    functions = set(all_manifests())
    assert {"llm", "mcp", "embeddings", "realtime"} <= functions
    assert set(ISOLATION) == functions, "add the function to ISOLATION (its user-owned routes, or Exempt(reason))"
    assert set(BAD_INPUT) == functions, "add the function to BAD_INPUT (how its body routes are found, or Exempt)"
    for table in (ISOLATION, BAD_INPUT):
        assert all(entry.reason.strip() for entry in table.values() if isinstance(entry, Exempt))


# The functions under test, built in-process on the session's database ---------------------------------------

@pytest.fixture(scope="module")
def embeddings_app(embeddings_env):
    from functions.embeddings.app import create_app
    from functions.embeddings.settings import load_settings

    with mock.patch.dict(os.environ, embeddings_env):
        settings = load_settings()
    app = create_app(settings)
    yield app
    app.extensions["jan"].db.engine.dispose()


@pytest.fixture
def flask_function(request):
    def build(name: str):
        if name == "embeddings":
            return request.getfixturevalue("embeddings_app")
        if name == "realtime":
            return request.getfixturevalue("make_realtime")()
        raise AssertionError(f"no in-process builder for {name}")

    return build


@pytest.fixture(scope="module")
def live_mcp_base(mcp_env, tmp_path_factory):
    process, base = start_uvicorn(mcp_env, tmp_path_factory.mktemp("cross-mcp") / "uvicorn.log")
    yield base
    stop(process)


def on(app, account: Account) -> Account:
    """The same account calling another function's in-process app."""
    return Account(app.test_client(), account.body)


def assert_error_body(body: dict, status: int):
    assert body["error"]["type"] == ERROR_TYPES[status], body
    assert body["message"] == body["error"]["message"], body


# Isolation ---------------------------------------------------------------------------------------------------

def _owned_rules(app) -> set[str]:
    return {rule for _method, _path, rule in routes(app) if "<" in rule and not rule.startswith("/static/")}


def test_realtime_routes_with_path_arguments_are_all_in_the_matrix(make_realtime):
    assert _owned_rules(make_realtime()) == set(ISOLATION["realtime"])


@pytest.mark.parametrize("rule, method", [(rule, method) for rule, methods in ISOLATION["realtime"].items()
                                          for method in methods])
def test_realtime_session_of_another_user_is_404_like_a_missing_one(make_realtime, client, new_user, snapshot,
                                                                    rule, method):
    app = make_realtime()
    rt = app.test_client()
    owner, other = new_user(), new_user()
    created = rt.post("/v1/realtime/sessions", headers=owner.headers)
    assert created.status_code == 201, created.json
    key = client.post("/auth/api-keys", headers=other.headers, json={"name": "other key"})
    assert key.status_code == 201, key.json
    other_key = key.json["key"]
    assert client.get("/auth/me", headers={"X-API-Key": other_key}).status_code == 200  # records its first use

    def call(session_id: str, headers: dict):
        response = rt.open(rule.replace("<session_id>", session_id), method=method, headers=headers)
        body = response.get_json()
        if body is not None:
            body.pop("request_id", None)
        return response.status_code, body

    missing = "sess_" + "0" * 24
    before = snapshot()
    for headers in ({"Authorization": f"Bearer {other.token}"}, {"X-API-Key": other_key},
                    {"Authorization": f"Bearer {other_key}"}):
        foreign = call(created.json["id"], headers)
        assert foreign[0] == 404, (headers, foreign)
        assert foreign == call(missing, headers)
        assert_error_body(foreign[1], 404)
    anonymous = call(created.json["id"], {})
    assert anonymous[0] == 401
    assert anonymous == call(missing, {})
    assert snapshot() == before

    status, body = call(created.json["id"], owner.headers)
    assert status == ISOLATION["realtime"][rule][method], body
    assert body["id"] == created.json["id"]


def test_mcp_and_embeddings_have_no_user_owned_route(live_mcp_base, embeddings_app):
    """What their exemptions claim: a new route with a path argument must be put in the matrix or explained."""
    paths = httpx.get(f"{live_mcp_base}/openapi.json").json()["paths"]
    assert {path for path in paths if "{" in path} == MCP_TOOL_CONFIG_RULES
    assert _owned_rules(embeddings_app) == set()


# Bad input ---------------------------------------------------------------------------------------------------

def _flask_functions():
    return [name for name, entry in BAD_INPUT.items() if isinstance(entry, dict)]


def _oversized(app) -> str:
    return json.dumps({"x": "x" * app.config["MAX_CONTENT_LENGTH"]})


@pytest.mark.parametrize("name", _flask_functions())
def test_flask_bad_bodies_are_4xx_and_change_nothing(flask_function, admin, snapshot, name):
    app = flask_function(name)
    caller = on(app, admin)
    bodiless = BAD_INPUT[name]["bodiless"]
    targets = body_reading_routes(app, caller, {})
    reading = {rule for _method, _path, rule in targets}
    unexplained = sorted(rule for _method, _path, rule in mutating_routes(app)
                         if rule not in reading and rule not in bodiless)
    assert unexplained == [], f"{name}: these routes read no body: list them as bodiless with a reason"
    assert not reading & set(bodiless), f"{name}: a route listed as bodiless reads its body"
    before = snapshot()
    for method, path, _rule in targets:
        for raw, allowed in ((MALFORMED, {400}), (ARRAY, {400}), (_oversized(app), {413})):
            response = caller.client.open(path, method=method, data=raw, content_type="application/json",
                                          headers=caller.headers)
            assert response.status_code in allowed, (name, method, path, raw[:20], response.get_data(as_text=True))
            assert_error_body(response.get_json(), response.status_code)
    assert snapshot() == before
    if name == "embeddings":
        assert {rule for _method, _path, rule in targets} == {"/embed", "/v1/embeddings"}


def test_mcp_body_routes_are_all_swept(live_mcp_base):
    from functions.mcp.app import MCP_PATHS

    paths = httpx.get(f"{live_mcp_base}/openapi.json").json()["paths"]
    body_routes = {(method.upper(), path) for path, methods in paths.items() for method in methods
                   if method in {"post", "put", "patch"}}
    body_routes |= {("POST", path) for path in MCP_PATHS}
    assert body_routes == {(method, rule) for method, rule, _path in BAD_INPUT["mcp"]}


def test_mcp_bad_bodies_are_4xx_and_change_nothing(live_mcp_base, mcp_env, admin, snapshot):
    from functions.mcp.settings import McpSettings
    from shared.settings import from_env

    headers = {**admin.headers, "Content-Type": "application/json", "Accept": "application/json, text/event-stream"}
    with httpx.Client(base_url=live_mcp_base, headers=headers, timeout=30) as http:
        oversized = json.dumps({"x": "x" * from_env(McpSettings, environ=mcp_env).max_request_bytes})
        before = snapshot()
        for method, _rule, path in BAD_INPUT["mcp"]:
            for raw, allowed in ((MALFORMED, {400}), (ARRAY, {400}), (oversized, {413})):
                response = http.request(method, path, content=raw)
                assert response.status_code in allowed, (method, path, raw[:20], response.text[:500])
                if method == "PATCH":
                    assert_error_body(response.json(), response.status_code)
                elif response.status_code == 400:
                    # The MCP SDK's JSON-RPC errors: a parse error, and an invalid request for a batch (an array).
                    error = response.json()["error"]
                    assert error["code"] == (-32700 if raw == MALFORMED else -32602), error
        # The admin route answers 413 in the platform error body (the SDK answers the MCP endpoint in plain text).
        assert http.patch(BAD_INPUT["mcp"][0][2], content=oversized).json()["error"]["message"] == \
            "request body too large"
        assert snapshot() == before
