"""GET /v1/users/me: the same body as /auth/me, for every kind of caller, and nothing from identity headers."""
from __future__ import annotations

import pytest

from shared.errors import ERROR_TYPES


def assert_error(response, status: int, message: str, *, param=None, code=None) -> None:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.json == {"error": {"message": message, "type": ERROR_TYPES[status], "param": param, "code": code},
                             "message": message, "request_id": response.headers["X-Request-Id"]}


@pytest.mark.parametrize("kind", ["guest", "user", "admin"])
@pytest.mark.parametrize("prefix", ["", "/llm"])
def test_users_me_is_the_auth_me_body(request, kind, prefix):
    account = request.getfixturevalue(kind)
    response = account.get(f"{prefix}/v1/users/me")
    assert response.status_code == 200
    assert response.json == account.get("/auth/me").json
    body = response.json
    assert body["id"] == account.user_id and body["auth_method"] == "jwt"
    assert body["roles"] == [kind] and body["is_admin"] is (kind == "admin") and body["is_guest"] is (kind == "guest")
    if kind != "guest":
        assert body["email"] == account.email
    assert response.headers["X-User-ID"] == account.user_id


def test_users_me_with_an_api_key(user):
    key = user.post("/auth/api-keys", json={"name": "cli"}).json["key"]
    for headers in ({"X-API-Key": key}, {"Authorization": f"Bearer {key}"}):
        response = user.client.get("/v1/users/me", headers=headers)
        assert response.status_code == 200
        assert response.json["id"] == user.user_id and response.json["auth_method"] == "apikey"
        assert response.json == user.client.get("/auth/me", headers=headers).json


def test_users_me_ignores_forged_identity_headers(guest, new_guest):
    other = new_guest()
    forged = {"X-User-ID": other.user_id, "X-User-Subject": other.user_id, "X-Auth-Method": "apikey",
              "X-Principal-Id": other.user_id, "X-Consumer-Username": other.user_id}
    response = guest.get("/v1/users/me", headers=forged)
    assert response.status_code == 200
    assert response.json["id"] == guest.user_id and response.json["auth_method"] == "jwt"


def test_users_me_needs_credentials(client, snapshot):
    before = snapshot()
    assert_error(client.get("/v1/users/me"), 401, "authentication required")
    assert_error(client.get("/llm/v1/users/me"), 401, "authentication required")
    assert_error(client.get("/v1/users/me", headers={"X-User-ID": "someone"}), 401, "authentication required")
    assert client.get("/v1/users/me", headers={"Authorization": "Bearer nope"}).status_code == 401
    assert snapshot() == before


def test_users_me_only_answers_get_and_delete(guest, snapshot):
    before = snapshot()
    for method in ("POST", "PUT", "PATCH"):
        response = guest._send(method, "/v1/users/me", json={})
        assert_error(response, 405, "method not allowed")
        assert set(response.headers["Allow"].split(", ")) >= {"GET", "DELETE"}
    assert snapshot() == before
