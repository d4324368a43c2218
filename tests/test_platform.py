"""What the app factory gives every function: health, readiness, version, Prometheus metrics, the OpenAPI
document, request ids, W3C trace context towards the model provider, and error bodies for unknown routes."""
from __future__ import annotations

import re
import uuid

import pytest

from shared.errors import ERROR_TYPES
from tests.conftest import TEST_MODEL_ID

UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
TRACEPARENT = re.compile(r"00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})")


def assert_error(response, status: int, message: str, *, code: str | None = None, param: str | None = None):
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.json == {
        "error": {"message": message, "type": ERROR_TYPES[status], "param": param, "code": code},
        "message": message,
        "request_id": response.headers["X-Request-Id"],
    }


@pytest.fixture(scope="module")
def unreachable_db_app(llm_env):
    """The llm function configured with a database nobody listens on."""
    from functions.llm.app import create_app
    from functions.llm.settings import LlmSettings
    from shared.settings import from_env

    settings = from_env(LlmSettings, environ={**llm_env, "DATABASE_URL": "postgresql://postgres@127.0.0.1:1/nowhere"})
    app = create_app(settings)
    yield app
    app.extensions["jan"].db.engine.dispose()


# Health -----------------------------------------------------------------------------------------------------

def test_healthz_answers_without_io(client, unreachable_db_app):
    for app_client in (client, unreachable_db_app.test_client()):
        response = app_client.get("/healthz")
        assert response.status_code == 200
        assert response.json == {"status": "ok"}


def test_readyz_is_200_when_the_database_answers(client):
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json == {"status": "ready"}


def test_readyz_is_503_with_the_error_body_when_the_database_is_unreachable(unreachable_db_app):
    response = unreachable_db_app.test_client().get("/readyz")
    assert_error(response, 503, "database unreachable", code="database_unreachable")


def test_version_names_the_function(client, llm_settings):
    response = client.get("/version")
    assert response.status_code == 200
    assert response.json == {"service": "llm", "version": llm_settings.version, "environment": "development"}


def test_health_routes_need_no_credentials(client):
    for path in ("/healthz", "/readyz", "/version", "/metrics", "/openapi.json"):
        assert client.get(path).status_code == 200, path


# Metrics ----------------------------------------------------------------------------------------------------

def test_metrics_are_prometheus_text_with_request_counts_by_route(client, guest, provider):
    guest.get("/v1/models")
    guest.get(f"/v1/models/{TEST_MODEL_ID}")
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.mimetype == "text/plain"
    text = response.get_data(as_text=True)
    assert "# TYPE flask_http_request_total counter" in text
    assert "# TYPE flask_http_request_duration_seconds histogram" in text
    assert re.search(r'jan_function_info\{[^}]*service="llm"[^}]*\} 1\.0', text)
    # grouped by route template, not by raw path (bounded label cardinality)
    assert re.search(r'flask_http_request_duration_seconds_count\{[^}]*url_rule="/v1/models"', text)
    assert re.search(r'flask_http_request_duration_seconds_count\{[^}]*url_rule="/v1/models/<path:model_id>"', text)
    assert TEST_MODEL_ID not in text
    assert 'url_rule="/healthz"' not in text


def version_requests(app_client) -> int:
    text = app_client.get("/metrics").get_data(as_text=True)
    found = re.search(r'flask_http_request_duration_seconds_count\{[^}]*url_rule="/version"[^}]*\} (\d+)\.0', text)
    return int(found.group(1)) if found else 0


def test_each_app_in_a_process_reports_its_own_requests(client, unreachable_db_app):
    other = unreachable_db_app.test_client()
    mine_before, other_before = version_requests(client), version_requests(other)
    for _ in range(3):
        other.get("/version")
    assert version_requests(other) == other_before + 3
    assert version_requests(client) == mine_before
    text = other.get("/metrics").get_data(as_text=True)
    assert "process_cpu_seconds_total" in text and "python_gc_objects_collected_total" in text


# OpenAPI ----------------------------------------------------------------------------------------------------

def test_openapi_document_lists_every_real_route(client, app):
    response = client.get("/openapi.json")
    assert response.status_code == 200
    document = response.json
    assert document["openapi"] == "3.1.0"
    assert document["info"]["title"] == "Jan Server (llm)" and document["info"]["version"]
    assert set(document["components"]["securitySchemes"]) == {"bearer", "apiKey"}
    paths = document["paths"]
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static":
            continue
        path = re.sub(r"<(?:[a-z]+:)?([a-z_]+)>", r"{\1}", rule.rule)
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            operation = paths[path][method.lower()]
            assert operation["summary"] and "responses" in operation
            path_parameters = [p for p in operation["parameters"] if p["in"] == "path"]
            assert sorted(p["name"] for p in path_parameters) == sorted(rule.arguments)
            assert all(p["required"] is True for p in path_parameters)
            assert all(p["in"] in ("path", "query") for p in operation["parameters"])
    assert "post" in paths["/v1/chat/completions"]
    assert "get" in paths["/v1/models/{model_id}"]
    assert "patch" in paths["/v1/admin/models/catalogs/{catalog_id}"]
    assert "post" in paths["/llm/v1/conversations"]
    assert not any("<" in path or ">" in path for path in paths)
    operation_ids = [op["operationId"] for item in paths.values() for op in item.values()]
    assert len(operation_ids) == len(set(operation_ids))


# Request ids ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("incoming", ["req-123", "abc.DEF_9:x-y", str(uuid.uuid4()), "r" * 128])
def test_a_valid_incoming_request_id_is_echoed(client, incoming):
    response = client.get("/healthz", headers={"X-Request-Id": incoming})
    assert response.headers["X-Request-Id"] == incoming


@pytest.mark.parametrize("incoming", ["<script>alert(1)</script>", "a b", "r" * 129, "id\\x", "x;drop", "é"])
def test_a_malicious_or_oversized_request_id_is_replaced(client, incoming):
    response = client.get("/healthz", headers={"X-Request-Id": incoming})
    assert UUID.fullmatch(response.headers["X-Request-Id"])


def test_a_request_id_is_generated_when_none_is_sent(client):
    first = client.get("/healthz").headers["X-Request-Id"]
    second = client.get("/healthz").headers["X-Request-Id"]
    assert UUID.fullmatch(first) and UUID.fullmatch(second) and first != second


def test_error_bodies_carry_the_request_id(client):
    response = client.get("/v1/models", headers={"X-Request-Id": "trace-me-1"})
    assert response.status_code == 401
    assert response.json["request_id"] == "trace-me-1" == response.headers["X-Request-Id"]


# Trace context ----------------------------------------------------------------------------------------------

def chat(account, **headers):
    return account.post("/v1/chat/completions", headers=headers,
                        json={"model": TEST_MODEL_ID, "messages": [{"role": "user", "content": "hi"}]})


def test_incoming_traceparent_is_continued_into_the_upstream_call(guest, provider, upstream):
    trace_id, parent = uuid.uuid4().hex, uuid.uuid4().hex[:16]
    response = chat(guest, traceparent=f"00-{trace_id}-{parent}-01", **{"X-Request-Id": "chat-req-7"})
    assert response.status_code == 200
    sent = upstream.requests[-1].headers
    match = TRACEPARENT.fullmatch(sent["traceparent"])
    assert match, sent["traceparent"]
    assert match.group(1) == trace_id
    assert match.group(2) != parent  # our own span id, child of the caller's
    assert match.group(3) == "01"
    assert sent["x-request-id"] == "chat-req-7"


def test_a_trace_is_started_when_none_or_an_invalid_one_arrives(guest, provider, upstream):
    chat(guest)
    chat(guest, traceparent="00-not-a-trace-01")
    chat(guest, traceparent=f"00-{'0' * 32}-{'g' * 16}-01")
    trace_ids = []
    for request in upstream.requests[-3:]:
        match = TRACEPARENT.fullmatch(request.headers["traceparent"])
        assert match, request.headers["traceparent"]
        trace_ids.append(match.group(1))
    assert len(set(trace_ids)) == 3


# Unknown routes and methods ----------------------------------------------------------------------------------

@pytest.mark.parametrize("path", ["/nope", "/v1", "/v2/models", "/llm/nothing"])
def test_unknown_path_is_404_with_the_error_body(client, path):
    assert_error(client.get(path), 404, "not found")


def test_wrong_method_is_405_with_the_error_body_and_allow_header(client):
    response = client.post("/healthz")
    assert_error(response, 405, "method not allowed")
    assert set(response.headers["Allow"].replace(" ", "").split(",")) >= {"GET"}
    response = client.put("/v1/models")
    assert_error(response, 405, "method not allowed")


# CORS when a function is exposed directly (CORS_ORIGINS) ------------------------------------------------------


def _cors_app(database_url, origins):
    from flask import Blueprint

    from shared.app import create_app
    from shared.settings import PlatformSettings

    app = create_app(PlatformSettings(database_url=database_url, cors_origins=origins), [Blueprint("none", __name__)])
    return app


def test_a_wildcard_origin_list_answers_star_and_never_grants_credentials(database_url):
    app = _cors_app(database_url, ("*",))
    for method in ("GET", "OPTIONS"):
        response = app.test_client().open("/healthz", method=method, headers={
            "Origin": "https://evil.example", "Access-Control-Request-Method": "POST"})
        assert response.headers["Access-Control-Allow-Origin"] == "*"
        assert "Access-Control-Allow-Credentials" not in response.headers
    app.extensions["jan"].db.engine.dispose()


def test_a_listed_origin_is_echoed_with_credentials_and_others_get_nothing(database_url):
    app = _cors_app(database_url, ("*", "http://localhost:3000"))
    client = app.test_client()
    listed = client.get("/healthz", headers={"Origin": "http://localhost:3000"})
    assert listed.headers["Access-Control-Allow-Origin"] == "http://localhost:3000"
    assert listed.headers["Access-Control-Allow-Credentials"] == "true"
    assert "Origin" in listed.headers["Vary"]
    other = client.get("/healthz", headers={"Origin": "https://evil.example"})
    assert other.headers["Access-Control-Allow-Origin"] == "*"
    assert "Access-Control-Allow-Credentials" not in other.headers
    app.extensions["jan"].db.engine.dispose()
