"""Every request to the mcp function is authenticated by the function itself (tokens of the llm function, API
keys checked against their hashes); nothing else counts, identity headers included."""
from __future__ import annotations

import httpx
import pytest

from tests.conftest import SERVICE_CREDENTIALS
from tests.mcp.conftest import ALL_TOOLS, list_tools

LIST = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}


def assert_401(response: httpx.Response) -> None:
    assert response.status_code == 401
    body = response.json()
    assert body["error"]["type"] == "authentication_error"
    assert body["message"] == body["error"]["message"]
    assert body["request_id"] == response.headers["x-request-id"]


@pytest.mark.parametrize("path", ["/v1/mcp", "/", "/v1/mcp-tools", "/v1/admin/mcp-tools"])
def test_no_credentials_is_401(live_mcp, path):
    response = httpx.post(live_mcp + path, json=LIST) if "mcp-tools" not in path else httpx.get(live_mcp + path)
    assert_401(response)


@pytest.mark.parametrize("headers", [
    {"Authorization": "Bearer not-a-jwt"},
    {"Authorization": "Bearer sk_live_" + "0" * 48},
    {"X-API-Key": "sk_live_" + "1" * 48},
    {"Authorization": "Basic dXNlcjpwYXNz"},
    # Identity headers a gateway might add are not credentials.
    {"X-User-ID": "someone", "X-Auth-Method": "jwt", "X-Principal-Id": "admin"},
])
def test_bad_credentials_are_401(live_mcp, headers):
    assert_401(httpx.post(f"{live_mcp}/v1/mcp", json=LIST, headers=headers))


def test_a_tampered_token_is_401(live_mcp, user):
    header, payload, signature = user.token.split(".")
    forged = ".".join([header, payload, signature[:-4] + ("AAAA" if signature[-4:] != "AAAA" else "BBBB")])
    assert_401(httpx.post(f"{live_mcp}/v1/mcp", json=LIST, headers={"Authorization": f"Bearer {forged}"}))


def test_a_logged_out_session_is_401(live_mcp, new_user):
    account = new_user()
    assert httpx.post(f"{live_mcp}/v1/mcp", json=LIST, headers=account.headers).status_code == 200
    assert account.post("/auth/logout").status_code in (200, 204)
    assert_401(httpx.post(f"{live_mcp}/v1/mcp", json=LIST, headers=account.headers))


def test_api_key_works_and_a_revoked_one_does_not(live_mcp, user):
    created = user.post("/auth/api-keys", json={"name": "mcp"}).json
    key = created["key"]
    for headers in ({"Authorization": f"Bearer {key}"}, {"X-API-Key": key}):
        assert [t.name for t in list_tools(f"{live_mcp}/v1/mcp", headers).tools] == ALL_TOOLS
    assert user.delete(f"/auth/api-keys/{created['id']}").status_code == 204
    assert_401(httpx.post(f"{live_mcp}/v1/mcp", json=LIST, headers={"X-API-Key": key}))


def test_guests_may_use_the_tools(live_mcp, guest):
    assert httpx.post(f"{live_mcp}/v1/mcp", json=LIST, headers=guest.headers).status_code == 200


@pytest.mark.parametrize("path, body", [("/healthz", {"status": "ok", "service": "mcp-tools"}),
                                        ("/mcp/healthz", {"status": "ok", "service": "mcp-tools"}),
                                        ("/readyz", {"status": "ready", "service": "mcp-tools"}),
                                        ("/mcp/readyz", {"status": "ready", "service": "mcp-tools"})])
def test_health_needs_no_credentials(live_mcp, path, body):
    response = httpx.get(live_mcp + path)
    assert (response.status_code, response.json()) == (200, body)


def test_metrics_version_and_openapi(live_mcp, user):
    httpx.post(f"{live_mcp}/v1/mcp", headers=user.headers,
               json={"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "scrape", "arguments": {}}})
    metrics = httpx.get(f"{live_mcp}/metrics")
    assert metrics.status_code == 200
    assert 'mcp_tool_calls_total{outcome="tool_error",tool="scrape"}' in metrics.text
    assert httpx.get(f"{live_mcp}/version").json()["service"] == "mcp"
    document = httpx.get(f"{live_mcp}/openapi.json").json()
    assert {"/v1/mcp", "/v1/mcp-tools", "/v1/mcp-tools/{tool_key}", "/v1/admin/mcp-tools",
            "/v1/admin/mcp-tools/{public_id}"} <= set(document["paths"])
    assert set(document["paths"]["/v1/admin/mcp-tools/{public_id}"]) == {"get", "patch"}


@pytest.mark.parametrize("method, path, status", [("GET", "/v1/nothing", 404), ("GET", "/v1/mcp", 405),
                                                  ("DELETE", "/v1/mcp", 405), ("POST", "/v1/mcp-tools", 405)])
def test_unknown_routes_and_methods_get_the_error_body(live_mcp, user, method, path, status):
    response = httpx.request(method, live_mcp + path, headers=user.headers)
    assert response.status_code == status
    expected = "not_found_error" if status == 404 else "invalid_request_error"
    assert response.json()["error"]["type"] == expected


def _minted(client, audience: str, user_id: str | None) -> str:
    """A token from the llm issuer, minted as the responses function (its test service credential)."""
    body = {"audience": audience} if user_id is None else {"audience": audience, "user_id": user_id}
    response = client.post("/internal/delegation-tokens", json=body,
                           headers={"Authorization": f"Bearer {SERVICE_CREDENTIALS['responses']}"})
    assert response.status_code == 200, response.json
    return response.json["access_token"]


def test_a_delegation_token_for_mcp_acts_for_its_user(live_mcp, client, new_user):
    owner = new_user()
    token = _minted(client, "mcp", owner.user_id)
    headers = {"Authorization": f"Bearer {token}"}
    assert [t.name for t in list_tools(f"{live_mcp}/v1/mcp", headers).tools] == ALL_TOOLS
    # It acts for that user, not as an admin: the user's routes answer, the admin's do not.
    assert httpx.get(f"{live_mcp}/v1/mcp-tools", headers=headers).status_code == 200
    assert httpx.get(f"{live_mcp}/v1/admin/mcp-tools", headers=headers).status_code == 403


def test_a_delegation_token_for_another_audience_is_401(live_mcp, client, user):
    """Minted for llm, or a service token for mcp that names no user: neither is a credential here."""
    for token in (_minted(client, "llm", user.user_id), _minted(client, "mcp", None)):
        assert_401(httpx.post(f"{live_mcp}/v1/mcp", json=LIST, headers={"Authorization": f"Bearer {token}"}))
