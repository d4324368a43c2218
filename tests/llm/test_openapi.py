"""The llm function's OpenAPI document: a valid OpenAPI 3.1 document, every route that reads a body declares
its request schema (found by sending each route malformed JSON, not by reading the declarations), and the
declared response schemas describe what the routes really answer."""
from __future__ import annotations

import re

import jsonschema
import pytest
from openapi_spec_validator import validate as validate_openapi

from tests.conftest import TEST_MODEL_ID

pytestmark = pytest.mark.usefixtures("provider")

_ARGUMENT = re.compile(r"<(?:([a-z]+)(?:\([^)]*\))?:)?([a-z_]+)>")


@pytest.fixture(scope="module")
def document(app):
    return app.test_client().get("/openapi.json").json


def test_the_document_is_valid_openapi_3_1(document):
    validate_openapi(document)
    assert document["openapi"] == "3.1.0"


def _template(rule: str) -> str:
    return _ARGUMENT.sub(lambda m: "{" + m.group(2) + "}", rule)


def test_every_route_that_reads_a_body_declares_its_request_schema(app, admin, document, internal_headers):
    readers = []
    for rule in app.url_map.iter_rules():
        path = _ARGUMENT.sub(lambda m: "vendor/model" if m.group(1) == "path" else "x0000000000000000", rule.rule)
        for method in sorted(rule.methods & {"POST", "PATCH", "PUT"}):
            response = admin.client.open(path, method=method, data="{", content_type="application/json",
                                         headers=internal_headers.get(rule.rule, admin.headers))
            operation = document["paths"][_template(rule.rule)][method.lower()]
            reads_body = response.status_code == 400 and response.json["message"] == "invalid JSON in request body"
            assert reads_body == ("requestBody" in operation), (method, rule.rule, response.json)
            if reads_body:
                readers.append((method, rule.rule))
                schema = operation["requestBody"]["content"]["application/json"]["schema"]
                name = schema["$ref"].rsplit("/", 1)[1]
                assert document["components"]["schemas"][name]["type"] == "object"
    assert len(readers) >= 40  # 22 routes that read a body, most served under /llm as well


def test_request_schemas_name_their_fields(document):
    chat = document["paths"]["/v1/chat/completions"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    schema = document["components"]["schemas"][chat["$ref"].rsplit("/", 1)[1]]
    for name in ("model", "messages", "stream", "temperature", "max_tokens", "conversation", "store"):
        assert name in schema["properties"], name
    message = document["components"]["schemas"]["ChatMessage"]
    assert message["required"] == ["role"]
    assert set(message["properties"]["role"]["enum"]) == {"assistant", "developer", "function", "system", "tool",
                                                         "user"}


def test_cursor_lists_declare_their_query_parameters(document, guest):
    conversation = guest.post("/v1/conversations", json={}).json["id"]
    lists = {"/v1/conversations": 100, "/v1/conversations/{conversation_id}/items": 100, "/v1/projects": 100,
             "/v1/projects/{project_id}/conversations": 100, "/v1/shares": 100,
             "/v1/conversations/{conversation_id}/shares": 100}
    for path, maximum in lists.items():
        query = {p["name"]: p for p in document["paths"][path]["get"]["parameters"] if p["in"] == "query"}
        assert set(query) == {"limit", "after", "order"}, path
        assert query["limit"]["schema"]["maximum"] == maximum
    # The declared maximum is the enforced one.
    over = guest.get(f"/v1/conversations/{conversation}/items", query_string={"limit": 101})
    assert over.status_code == 400 and over.json["error"]["param"] == "limit"
    assert guest.get(f"/v1/conversations/{conversation}/items", query_string={"limit": 100}).status_code == 200


def test_every_operation_lists_its_error_body(document):
    for path, item in document["paths"].items():
        for method, operation in item.items():
            assert operation["responses"]["default"]["content"]["application/json"]["schema"] == {
                "$ref": "#/components/schemas/ErrorResponse"}, (method, path)


class Conformance:
    """Checks real responses against the schema the document declares for their route and status."""

    def __init__(self, document):
        self.document = document
        self.checked = set()

    def __call__(self, response, method: str, template: str):
        operation = self.document["paths"][template][method]
        declared = operation["responses"][str(response.status_code)]["content"]["application/json"]["schema"]
        schema = {**declared, "components": self.document["components"]}
        jsonschema.Draft202012Validator(schema).validate(response.json)
        self.checked.add((method, template))
        return response.json


def test_declared_response_schemas_match_real_responses(client, admin, document, upstream):
    check = Conformance(document)
    guest = client.post("/auth/guest-login")
    check(guest, "post", "/auth/guest-login")
    check(admin.get("/auth/me"), "get", "/auth/me")
    check(admin.get("/v1/users/me"), "get", "/v1/users/me")
    check(admin.post("/auth/api-keys", json={"name": "k"}), "post", "/auth/api-keys")
    check(admin.get("/auth/api-keys"), "get", "/auth/api-keys")
    check(client.post("/auth/login", json={"email": admin.email, "password": admin.password}), "post", "/auth/login")

    check(admin.get("/v1/models"), "get", "/v1/models")
    check(admin.get(f"/v1/models/{TEST_MODEL_ID}"), "get", "/v1/models/{model_id}")

    project = check(admin.post("/v1/projects", json={"name": "p", "instruction": "be brief"}), "post",
                    "/v1/projects")
    check(admin.patch(f"/v1/projects/{project['id']}", json={"is_archived": True}), "patch",
          "/v1/projects/{project_id}")
    check(admin.get("/v1/projects"), "get", "/v1/projects")

    conversation = check(admin.post("/v1/conversations", json={
        "title": "t", "metadata": {"k": "v"}, "project_id": project["id"],
        "items": [{"role": "user", "content": "hi"}]}), "post", "/v1/conversations")
    path = f"/v1/conversations/{conversation['id']}"
    check(admin.get(path), "get", "/v1/conversations/{conversation_id}")
    check(admin.patch(path, json={"title": "u"}), "patch", "/v1/conversations/{conversation_id}")
    check(admin.get("/v1/conversations"), "get", "/v1/conversations")
    added = check(admin.post(f"{path}/items", json={"items": [
        {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "x"}]},
        {"type": "function_call", "call_id": "c1", "name": "f", "arguments": "{}"}]}),
        "post", "/v1/conversations/{conversation_id}/items")
    check(admin.get(f"{path}/items"), "get", "/v1/conversations/{conversation_id}/items")
    check(admin.get(f"{path}/items/{added['data'][0]['id']}"), "get",
          "/v1/conversations/{conversation_id}/items/{item_id}")
    check(admin.patch(f"{path}/items/by-call-id/c1", json={"status": "completed", "output": {"ok": True}}), "patch",
          "/v1/conversations/{conversation_id}/items/by-call-id/{call_id}")
    check(admin.post(f"{path}/branches", json={"name": "alt"}), "post", "/v1/conversations/{conversation_id}/branches")
    check(admin.get(f"{path}/branches/alt"), "get", "/v1/conversations/{conversation_id}/branches/{name}")

    completion = admin.post("/v1/chat/completions", json={
        "model": TEST_MODEL_ID, "messages": [{"role": "user", "content": "hello"}], "conversation": conversation["id"]})
    assert check(completion, "post", "/v1/chat/completions")["conversation"]["id"] == conversation["id"]
    check(admin.delete(path), "delete", "/v1/conversations/{conversation_id}")
    assert len(check.checked) == 23
