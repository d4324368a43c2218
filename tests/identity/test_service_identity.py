"""Service identity: delegation tokens minted by the llm issuer for one callee, verified by the shared code."""
from __future__ import annotations

import time
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from sqlalchemy import func, update

from shared.keys import key_id
from shared.schema import users
from tests.identity.conftest import bearer


def claims_of(token: str) -> dict:
    return jwt.decode(token, options={"verify_signature": False})


@pytest.fixture(scope="module")
def signing_key(keys_env):
    return serialization.load_pem_private_key(Path(keys_env["TOKEN_SIGNING_KEY_FILE"]).read_bytes(), password=None)


def test_a_granted_service_gets_a_short_lived_token_for_one_callee(mint, user, callee, llm_settings):
    response = mint("mcp", user.user_id)
    assert response.status_code == 200, response.json
    body = response.json
    assert body["token_type"] == "Bearer" and body["audience"] == "mcp"
    assert body["expires_in"] == llm_settings.delegation_token_ttl_seconds == 300
    claims = claims_of(body["access_token"])
    assert claims["sub"] == user.user_id and claims["act"] == {"sub": "responses"} and claims["aud"] == "mcp"
    assert claims["typ"] == "delegation" and claims["exp"] - claims["iat"] == 300 and claims["jti"]
    assert "sid" not in claims and "email" not in claims  # nothing beyond who acts for whom

    reached = callee.get("/v1/delegated", headers=bearer(body["access_token"]))
    assert reached.status_code == 200, reached.json
    assert reached.json == {"user_id": user.user_id, "acting_service": "responses", "auth_method": "delegation",
                            "is_admin": False}


def test_each_token_is_new(mint, user):
    first, second = (claims_of(mint("mcp", user.user_id).json["access_token"])["jti"] for _ in range(2))
    assert first != second


def test_replay_to_another_audience_is_rejected(mint, user, callee):
    for_llm = mint("llm", user.user_id).json["access_token"]
    response = callee.get("/v1/delegated", headers=bearer(for_llm))
    assert response.status_code == 401 and response.json["message"] == "invalid token"


def test_a_token_for_this_callee_is_refused_by_the_issuer_function(mint, user):
    for_mcp = mint("mcp", user.user_id).json["access_token"]
    assert user.client.get("/v1/users/me", headers=bearer(for_mcp)).status_code == 401


def test_an_expired_delegation_token_is_rejected(user, callee, signing_key, llm_settings):
    now = int(time.time())
    token = jwt.encode({"iss": llm_settings.token_issuer, "aud": "mcp", "sub": user.user_id,
                        "act": {"sub": "responses"}, "typ": "delegation", "jti": "j1", "iat": now - 900,
                        "exp": now - 600}, signing_key, algorithm="RS256",
                       headers={"kid": key_id(signing_key.public_key())})
    response = callee.get("/v1/delegated", headers=bearer(token))
    assert response.status_code == 401 and response.json["message"] == "token expired"


def test_a_deleted_user_ends_their_delegations(mint, user, callee, app):
    token = mint("mcp", user.user_id).json["access_token"]
    assert callee.get("/v1/delegated", headers=bearer(token)).status_code == 200
    with app.extensions["jan"].db.transaction() as conn:
        conn.execute(update(users).where(users.c.public_id == user.user_id).values(deleted_at=func.now()))
    response = callee.get("/v1/delegated", headers=bearer(token))
    assert response.status_code == 401 and response.json["message"] == "token revoked"
    refused = mint("mcp", user.user_id)
    assert refused.status_code == 404 and refused.json["message"] == "user not found"


def test_a_delegation_token_is_not_a_login(mint, user, callee):
    """Routes accept delegation only where they opt in; the user's own token works on both."""
    token = mint("mcp", user.user_id).json["access_token"]
    refused = callee.get("/v1/own", headers=bearer(token))
    assert refused.status_code == 403 and refused.json["message"] == "this route does not accept delegation tokens"
    for path in ("/v1/own", "/v1/delegated"):
        own = callee.get(path, headers=user.headers)
        assert own.status_code == 200 and own.json["user_id"] == user.user_id


def test_a_delegation_token_cannot_reach_the_issuers_own_routes(mint, user, client):
    token = mint("llm", user.user_id).json["access_token"]
    assert client.get("/v1/users/me", headers=bearer(token)).status_code == 403
    assert client.post("/auth/api-keys", json={"name": "x"}, headers=bearer(token)).status_code == 403
    assert client.post("/auth/upgrade", json={"email": "x@example.com", "password": "long enough pw"},
                       headers=bearer(token)).status_code == 403
    # Nor does it mint further tokens: only a service credential does.
    again = client.post("/internal/delegation-tokens", json={"audience": "llm", "user_id": user.user_id},
                        headers=bearer(token))
    assert again.status_code == 401


def test_acting_for_an_admin_grants_no_admin_rights(mint, admin, callee, client):
    token = mint("llm", admin.user_id).json["access_token"]
    assert client.get("/v1/admin/providers", headers=bearer(token)).status_code == 403
    assert admin.get("/v1/admin/providers").status_code == 200
    delegated = callee.get("/v1/delegated", headers=bearer(mint("mcp", admin.user_id).json["access_token"]))
    assert delegated.json["is_admin"] is False


def test_a_user_credential_cannot_mint(client, user, new_guest):
    for headers, message in ((user.headers, "invalid service credential"), ({}, "authentication required")):
        response = client.post("/internal/delegation-tokens", json={"audience": "mcp", "user_id": user.user_id},
                               headers=headers)
        assert response.status_code == 401 and response.json["message"] == message


def test_grants_bound_what_a_service_may_obtain(mint, user):
    refused = mint("memory", user.user_id)
    assert refused.status_code == 403 and refused.json["message"] == "responses may not act for users at memory"
    # The sweep dispatches jobs anywhere, but never acts for a user.
    assert mint("memory", service="jobs-sweeper").status_code == 200
    assert mint("llm", user.user_id, service="jobs-sweeper").status_code == 403
    assert mint("mcp", user.user_id, credential="jsc-wrong").status_code == 401


def test_a_service_token_identifies_no_user(mint, callee):
    token = mint("mcp").json["access_token"]
    claims = claims_of(token)
    assert claims["typ"] == "service" and claims["sub"] == "responses" and claims["act"] == {"sub": "responses"}
    response = callee.get("/v1/delegated", headers=bearer(token))
    assert response.status_code == 401 and response.json["message"] == "a service token does not identify a user"


def test_bad_mint_requests_are_400(mint, client):
    from tests.conftest import SERVICE_CREDENTIALS

    headers = bearer(SERVICE_CREDENTIALS["responses"])
    for body, message in (([], "request body must be a JSON object"), ({"audience": 5}, "audience must name a function"),
                          ({"audience": "llm", "user_id": 7}, "user_id must be a user id")):
        response = client.post("/internal/delegation-tokens", json=body, headers=headers)
        assert response.status_code == 400 and response.json["message"] == message, response.json
