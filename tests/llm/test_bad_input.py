"""Bad input across the llm function's routes: each rejected with the one error body and a fixed status, and
nothing stored (every table compared before and after). Route sweeps enumerate `app.url_map`, so a new route
is covered the day it is added."""
from __future__ import annotations

import io
import re

import pytest

from shared.errors import ERROR_TYPES
from tests.conftest import TEST_MODEL_ID

pytestmark = pytest.mark.usefixtures("provider")

PUBLIC_PATHS = {"/healthz", "/readyz", "/version", "/metrics", "/openapi.json", "/auth/guest-login",
                "/auth/refresh-token", "/auth/logout", "/auth/revoke", "/auth/login", "/auth/validate-api-key",
                "/auth/callback"}
PUBLIC_PATHS |= {f"/llm{path}" for path in PUBLIC_PATHS if path.startswith("/auth/")}
PUBLIC_PATHS |= {"/v1/public/shares/<slug>"}  # root only, rate-limited per client address
PUBLIC_PATHS |= {"/.well-known/jwks.json", "/.well-known/openid-configuration"}  # the issuer's public documents
MAX_REQUEST_BYTES = 256 * 1024
_ARGUMENT = re.compile(r"<(?:([a-z]+)(?:\([^)]*\))?:)?([a-z_]+)>")


def assert_error(response, status: int, message: str, *, code: str | None = None, param: str | None = None):
    assert response.status_code == status, (response.request.path, response.get_data(as_text=True))
    assert response.json == {
        "error": {"message": message, "type": ERROR_TYPES[status], "param": param, "code": code},
        "message": message,
        "request_id": response.headers["X-Request-Id"],
    }, response.request.path


def routes(app):
    """(method, concrete path, rule) for every route, path arguments filled with placeholder values."""
    found = []
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static":
            continue
        path = _ARGUMENT.sub(lambda m: "vendor/model" if m.group(1) == "path" else "x0000000000000000", rule.rule)
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            found.append((method, path, rule.rule))
    return found


def chat_body(**overrides):
    body = {"model": TEST_MODEL_ID, "messages": [{"role": "user", "content": "hello"}]}
    body.update(overrides)
    return {key: value for key, value in body.items() if value is not ...}


# Authentication and authorisation sweeps -------------------------------------------------------------------

def test_sweep_sees_the_known_routes(app):
    paths = {rule for _, _, rule in routes(app)}
    for expected in ("/v1/chat/completions", "/v1/models", "/v1/conversations", "/v1/admin/providers",
                     "/llm/v1/chat/completions", "/auth/me", "/healthz"):
        assert expected in paths


def test_every_non_public_route_requires_credentials(client, app, snapshot):
    before = snapshot()
    checked = 0
    for method, path, rule in routes(app):
        if rule in PUBLIC_PATHS:
            continue
        response = client.open(path, method=method)
        assert_error(response, 401, "authentication required")
        garbage = client.open(path, method=method, headers={"Authorization": "Bearer not-a-token"})
        assert garbage.status_code == 401, (method, path)
        assert garbage.json["error"]["type"] == "authentication_error"
        checked += 1
    assert checked >= 20
    assert snapshot() == before


@pytest.mark.parametrize("account", ["guest", "user"])
def test_every_admin_route_is_403_for_non_admins(request, app, snapshot, account):
    caller = request.getfixturevalue(account)
    before = snapshot()
    admin_routes = [(method, path) for method, path, rule in routes(app) if "/admin/" in rule]
    assert len(admin_routes) >= 12
    for method, path in admin_routes:
        response = caller.client.open(path, method=method, headers=caller.headers, json={"enable": False})
        assert_error(response, 403, "admin access required")
    assert snapshot() == before


# Malformed bodies -------------------------------------------------------------------------------------------

class RecordingBody:
    """A request body (wsgi.input) that records whether the app read it."""

    def __init__(self, raw: bytes):
        self.stream = io.BytesIO(raw)
        self.was_read = False

    def read(self, *args):
        self.was_read = True
        return self.stream.read(*args)

    def readline(self, *args):
        self.was_read = True
        return self.stream.readline(*args)


# POST, PUT and PATCH routes that take no body, with the reason; every other one must read a body. DELETE routes
# take none (and are not probed: as an admin, DELETE /v1/users/me would delete the caller).
BODILESS = {
    "/auth/guest-login": "creates a guest; no parameters",
    "/v1/admin/providers/<provider_id>/sync": "re-reads the provider's model list; no parameters",
    "/v1/conversations/<conversation_id>/branches/<name>/activate": "the branch is named in the path",
}


def mutating_routes(app) -> list[tuple[str, str, str]]:
    return [(method, path, rule) for method, path, rule in routes(app) if method in {"POST", "PUT", "PATCH"}]


def body_reading_routes(app, caller, internal_headers) -> list[tuple[str, str, str]]:
    """(method, path, rule) of every route that reads its request body, found by calling each POST, PUT and PATCH
    route as an admin (as a calling service for /internal routes; ids that do not exist) with a malformed body and
    seeing whether the app read it."""
    found = []
    for method, path, rule in mutating_routes(app):
        body = RecordingBody(b'{"probe": ')
        headers = internal_headers.get(rule, caller.headers)
        response = caller.client.open(path, method=method, headers=headers, content_type="application/json",
                                      environ_overrides={"wsgi.input": body, "CONTENT_LENGTH": "10"})
        response.close()
        if body.was_read:
            found.append((method, path, rule))
    return found


def _alias_free(rule: str) -> str:
    return rule.removeprefix("/llm")


def test_every_mutating_route_reads_its_body_or_is_declared_bodiless(app, admin, internal_headers):
    """A route that parses its body only after a lookup would escape the probe: it must be declared here."""
    reading = {(method, rule) for method, _path, rule in body_reading_routes(app, admin, internal_headers)}
    unexplained = [f"{method} {rule}" for method, _path, rule in mutating_routes(app)
                   if (method, rule) not in reading and _alias_free(rule) not in BODILESS]
    assert unexplained == [], f"these routes read no body: list them in BODILESS with a reason: {unexplained}"
    assert len({(method, _alias_free(rule)) for method, rule in reading}) >= 27  # each also under the /llm alias
    assert not {_alias_free(rule) for _method, rule in reading} & set(BODILESS)


@pytest.mark.parametrize("raw, message", [
    ('{"model": ', "invalid JSON in request body"),
    ("{'model': 'x'}", "invalid JSON in request body"),
    ("not json", "invalid JSON in request body"),
    ('{"temperature": NaN}', "invalid JSON in request body"),
    ('{"temperature": Infinity}', "invalid JSON in request body"),
    ("[" * 100_000, "invalid JSON in request body"),
    ('[{"model": "x"}]', "request body must be a JSON object"),
    ('"a string"', "request body must be a JSON object"),
    ("42", "request body must be a JSON object"),
    ("null", "request body must be a JSON object"),
    ('{"title": "a\\u0000b"}', "strings in the request body must not contain NUL characters"),
    ('{"metadata": {"k\\u0000": "v"}}', "strings in the request body must not contain NUL characters"),
    ('{"title": "\\ud800"}', "strings in the request body must be valid Unicode (no unpaired surrogates)"),
])
def test_malformed_json_on_every_body_route_is_400_and_changes_nothing(app, admin, upstream, snapshot, raw,
                                                                        message, internal_headers):
    targets = body_reading_routes(app, admin, internal_headers)
    before = snapshot()
    for method, path, rule in targets:
        response = admin.client.open(path, method=method, data=raw, content_type="application/json",
                                     headers=internal_headers.get(rule, admin.headers))
        assert_error(response, 400, message)
    assert snapshot() == before
    assert upstream.requests == []


def test_invalid_utf8_body_is_400(guest, snapshot):
    before = snapshot()
    assert_error(guest.post("/v1/conversations", data=b'{"title": "\xff\xfe"}', content_type="application/json"), 400,
                 "invalid JSON in request body")
    assert snapshot() == before


def test_a_valid_surrogate_pair_is_accepted(guest):
    response = guest.post("/v1/conversations", data='{"title": "smile \\ud83d\\ude00"}',
                          content_type="application/json")
    assert response.status_code == 200
    assert response.json["title"] == "smile \U0001F600"


def test_jan_first_json_value_rule_ignores_trailing_bytes(guest, upstream):
    response = guest.post("/v1/conversations", data='{"title":"x"} }', content_type="application/json")
    assert response.status_code == 200, response.json
    assert response.json["title"] == "x"
    response = guest.post("/v1/conversations", data=' \n{"title":"y"}{"title":"z"} trailing',
                          content_type="application/json")
    assert response.json["title"] == "y"
    raw = '{"model": "%s", "messages": [{"role": "user", "content": "hi"}]} }' % TEST_MODEL_ID
    response = guest.post("/v1/chat/completions", data=raw, content_type="application/json")
    assert response.status_code == 200
    assert response.json["choices"][0]["message"]["content"] == "echo: hi"


def test_json_body_is_read_whatever_the_content_type(guest):
    response = guest.post("/v1/conversations", data='{"title": "plain"}', content_type="text/plain")
    assert response.status_code == 200
    assert response.json["title"] == "plain"


# Chat completions ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("body, message, param", [
    (chat_body(model=...), "model key is required", "model"),
    (chat_body(model=""), "model key is required", "model"),
    (chat_body(model=None), "model key is required", "model"),
    (chat_body(model=5), "model must be a string", "model"),
    (chat_body(messages=...), "messages cannot be empty", "messages"),
    (chat_body(messages=[]), "messages cannot be empty", "messages"),
    (chat_body(messages="x"), "messages must be a list", "messages"),
    (chat_body(messages={"role": "user"}), "messages must be a list", "messages"),
    (chat_body(messages=["hi"]), "each message must be an object", "messages[0]"),
    (chat_body(messages=[{"role": "wizard", "content": "x"}]),
     "message role must be one of: assistant, developer, function, system, tool, user", "messages[0].role"),
    (chat_body(messages=[{"content": "x"}]),
     "message role must be one of: assistant, developer, function, system, tool, user", "messages[0].role"),
    (chat_body(messages=[{"role": "user"}]), "message content is required", "messages[0].content"),
    (chat_body(messages=[{"role": "user", "content": 5}]),
     "message content must be a string or a list of content parts", "messages[0].content"),
    (chat_body(messages=[{"role": "user", "content": ["x"]}]), "each content part must be an object",
     "messages[0].content"),
    (chat_body(messages=[{"role": "user", "content": "a"}, {"role": "tool", "content": "r"}]),
     "tool messages need a tool_call_id", "messages[1].tool_call_id"),
    (chat_body(temperature="hot"), "temperature must be a number", "temperature"),
    (chat_body(temperature=True), "temperature must be a number", "temperature"),
    (chat_body(top_p=[1]), "top_p must be a number", "top_p"),
    (chat_body(n=0), "n must be at least 1", "n"),
    (chat_body(n=1.5), "n must be an integer", "n"),
    (chat_body(n="2"), "n must be an integer", "n"),
    (chat_body(max_tokens=0), "max_tokens must be at least 1", "max_tokens"),
    (chat_body(seed="s"), "seed must be an integer", "seed"),
    (chat_body(stream="yes"), "stream must be a boolean", "stream"),
    (chat_body(stream=1), "stream must be a boolean", "stream"),
    (chat_body(logprobs="true"), "logprobs must be a boolean", "logprobs"),
    (chat_body(store="no"), "store must be a boolean", "store"),
    (chat_body(stream_options="usage"), "stream_options must be an object", "stream_options"),
    (chat_body(response_format="json"), "response_format must be an object", "response_format"),
    (chat_body(stop=5), "stop must be a string or a list of strings", "stop"),
    (chat_body(stop=["a", 1]), "stop must be a string or a list of strings", "stop"),
    (chat_body(tools={"type": "function"}), "tools must be a list of objects", "tools"),
    (chat_body(tool_choice=5), "tool_choice must be a string or an object", "tool_choice"),
    (chat_body(conversation=5), "conversation must be an id or an object with an id", "conversation"),
    (chat_body(conversation=""), "conversation must be an id or an object with an id", "conversation"),
])
def test_chat_with_wrong_types_is_400_and_nothing_reaches_upstream(guest, upstream, snapshot, body, message, param):
    before = snapshot()
    assert_error(guest.post("/v1/chat/completions", json=body), 400, message, param=param)
    assert upstream.requests == []
    assert snapshot() == before


@pytest.mark.parametrize("model", ["nobody/nothing", "test-model", "SCRIPTED/TEST-MODEL", "scripted/test-model "])
def test_chat_with_unknown_model_is_404_and_nothing_reaches_upstream(guest, upstream, snapshot, model):
    before = snapshot()
    assert_error(guest.post("/v1/chat/completions", json=chat_body(model=model)), 404, f"model '{model}' not found",
                 code="model_not_found", param="model")
    assert upstream.requests == []
    assert snapshot() == before


def test_chat_with_another_users_conversation_is_404_and_stores_nothing(guest, new_guest, upstream, snapshot):
    conversation = guest.post("/v1/conversations", json={"title": "mine"}).json["id"]
    other = new_guest()
    before = snapshot()
    for reference in (conversation, {"id": conversation}, "conv_0000000000000000"):
        response = other.post("/v1/chat/completions", json=chat_body(conversation=reference))
        assert_error(response, 404, "conversation not found")
    assert upstream.requests == []
    assert snapshot() == before


# Oversize bodies --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("path", ["/v1/chat/completions", "/llm/v1/chat/completions", "/v1/conversations"])
def test_body_over_the_limit_is_413_and_changes_nothing(guest, upstream, snapshot, path):
    padding = "x" * MAX_REQUEST_BYTES
    before = snapshot()
    response = guest.post(path, json=chat_body(messages=[{"role": "user", "content": padding}]))
    assert_error(response, 413, "request body too large")
    assert upstream.requests == []
    assert snapshot() == before


def test_admin_body_over_the_limit_is_413(admin, snapshot):
    before = snapshot()
    response = admin.post("/v1/admin/providers", json={"name": "big", "vendor": "x", "base_url": "http://127.0.0.1:1",
                                                       "metadata": {"pad": "x" * MAX_REQUEST_BYTES}})
    assert_error(response, 413, "request body too large")
    assert snapshot() == before


def test_body_just_under_the_limit_is_accepted(guest, upstream):
    content = "x" * (MAX_REQUEST_BYTES - 200)
    response = guest.post("/v1/chat/completions", json=chat_body(messages=[{"role": "user", "content": content}]))
    assert response.status_code == 200
    assert upstream.requests[-1].body["messages"][-1]["content"] == content


# URLs -----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("path", [
    "/v1/conversations/conv_%00",
    "/v1/conversations/conv_0000000000000000/items?after=%00",
    "/v1/models/scripted%00/x",
    "/v1/admin/models/catalogs?family=%00",
    "/v1/admin/providers/prov_%00",
])
def test_nul_in_url_is_400(admin, snapshot, path):
    before = snapshot()
    assert_error(admin.get(path), 400, "the request URL must not contain NUL characters")
    assert snapshot() == before


# Pagination -------------------------------------------------------------------------------------------------

def test_invalid_pagination_is_400_on_every_paginated_route(guest, admin, snapshot):
    conversation = guest.post("/v1/conversations", json={"items": [{"role": "user", "content": "x"}]}).json["id"]
    paginated = [(guest, f"/v1/conversations/{conversation}/items", 100),
                 (admin, "/v1/admin/models/catalogs", 1000),
                 (admin, "/v1/admin/models/provider-models", 1000)]
    before = snapshot()
    for caller, path, maximum in paginated:
        for limit in ("0", "-5", str(maximum + 1)):
            assert_error(caller.get(path, query_string={"limit": limit}), 400,
                         f"limit must be between 1 and {maximum}", param="limit")
        assert_error(caller.get(path, query_string={"limit": "ten"}), 400, "limit must be an integer", param="limit")
        assert_error(caller.get(path, query_string={"order": "random"}), 400, "order must be 'asc' or 'desc'",
                     param="order")
    assert snapshot() == before


# Unknown and foreign ids ----------------------------------------------------------------------------------

def test_unknown_ids_are_404_everywhere(guest, admin, snapshot):
    before = snapshot()
    cases = [
        (guest.get("/v1/conversations/conv_zzzzzzzzzzzzzzzz"), "conversation not found"),
        (guest.get("/v1/conversations/conv_zzzzzzzzzzzzzzzz/items"), "conversation not found"),
        (guest.get("/v1/models/catalogs/nobody/nothing"), "model catalog not found"),
        (admin.get("/v1/admin/providers/prov_zzzzzzzzzzzzzzzz"), "provider not found"),
        (admin.patch("/v1/admin/providers/prov_zzzzzzzzzzzzzzzz", json={"active": True}), "provider not found"),
        (admin.delete("/v1/admin/providers/prov_zzzzzzzzzzzzzzzz"), "provider not found"),
        (admin.post("/v1/admin/providers/prov_zzzzzzzzzzzzzzzz/sync"), "provider not found"),
        (admin.get("/v1/admin/models/catalogs/nobody/nothing"), "model catalog not found"),
        (admin.patch("/v1/admin/models/catalogs/nobody/nothing", json={"notes": "x"}), "model catalog not found"),
        (admin.get("/v1/admin/models/provider-models/pmdl_zzzzzzzzzzzzzzzz"), "provider model not found"),
        (admin.patch("/v1/admin/models/provider-models/pmdl_zzzzzzzzzzzzzzzz", json={"active": True}),
         "provider model not found"),
    ]
    for response, message in cases:
        assert_error(response, 404, message)
    assert_error(guest.get("/v1/models/nobody/nothing"), 404, "model 'nobody/nothing' not found",
                 code="model_not_found", param="model")
    assert snapshot() == before


def test_another_users_api_key_cannot_be_deleted(guest, new_guest, snapshot):
    created = guest.post("/auth/api-keys", json={"name": "mine"})
    assert created.status_code == 201, created.json
    other = new_guest()
    before = snapshot()
    response = other.delete(f"/auth/api-keys/{created.json['id']}")
    assert response.status_code == 404
    assert response.json["error"]["type"] == "not_found_error"
    assert snapshot() == before


def test_unknown_route_and_wrong_method_use_the_error_body(guest):
    assert_error(guest.get("/v1/nothing-here"), 404, "not found")
    response = guest.delete("/v1/chat/completions")
    assert_error(response, 405, "method not allowed")
    assert "POST" in response.headers["Allow"]
