"""Bearer tokens: what our own issuer's tokens must survive (forgeries, expiry, revoked users), and the external
issuer mode (a Keycloak stand-in with its own key, served by tests/doubles/oidc_issuer.py)."""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import socket
import time
import uuid
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from sqlalchemy import func, select, update

from shared.auth.tokens import ExternalJwks
from shared.keys import key_id
from shared.schema import users
from tests.doubles.oidc_issuer import OidcIssuer

ERROR_TYPES = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error"}


def assert_error(response, status: int, message: str, *, param=None, code=None) -> None:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.json == {"error": {"message": message, "type": ERROR_TYPES[status], "param": param, "code": code},
                             "message": message, "request_id": response.headers["X-Request-Id"]}


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unsigned(header: dict, claims: dict) -> str:
    return f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}"


@pytest.fixture(scope="module")
def signing_key(keys_env):
    return serialization.load_pem_private_key(Path(keys_env["TOKEN_SIGNING_KEY_FILE"]).read_bytes(), password=None)


@pytest.fixture(scope="module")
def other_key():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def claims_of(token: str) -> dict:
    return jwt.decode(token, options={"verify_signature": False})


def sign(claims: dict, key, kid: str) -> str:
    return jwt.encode(claims, key, algorithm="RS256", headers={"kid": kid})


def hs256_with_public_key(claims: dict, signing_key, kid: str) -> str:
    public_pem = signing_key.public_key().public_bytes(serialization.Encoding.PEM,
                                                       serialization.PublicFormat.SubjectPublicKeyInfo)
    head = unsigned({"alg": "HS256", "typ": "JWT", "kid": kid}, claims)
    return f"{head}.{b64(hmac.new(public_pem, head.encode(), hashlib.sha256).digest())}"


def tampered(token: str, **changes) -> str:
    header, payload, signature = token.split(".")
    claims = {**claims_of(token), **changes}
    return f"{header}.{b64(json.dumps(claims).encode())}.{signature}"


def without(claims: dict, name: str) -> dict:
    return {key: value for key, value in claims.items() if key != name}


# Each case turns (a guest's real token, its claims, our key, our kid, a stranger's key) into a bad token.
BAD_TOKENS = {
    "expired": (lambda t, c, k, kid, o: sign({**c, "iat": int(time.time()) - 7200, "exp": int(time.time()) - 3600},
                                             k, kid), "token expired"),
    "tampered payload": (lambda t, c, k, kid, o: tampered(t, preferred_username="someone-else"), "invalid token"),
    "alg none": (lambda t, c, k, kid, o: unsigned({"alg": "none", "typ": "JWT", "kid": kid}, c) + ".",
                 "invalid token"),
    "HS256 signed with the public key": (lambda t, c, k, kid, o: hs256_with_public_key(c, k, kid), "invalid token"),
    "unknown kid": (lambda t, c, k, kid, o: sign(c, o, "not-our-kid"), "invalid token"),
    "our kid, another key": (lambda t, c, k, kid, o: sign(c, o, kid), "invalid token"),
    "wrong issuer": (lambda t, c, k, kid, o: sign({**c, "iss": "https://evil.example"}, k, kid), "invalid token"),
    "wrong audience": (lambda t, c, k, kid, o: sign({**c, "aud": "someone-else"}, k, kid), "invalid token"),
    "missing sub": (lambda t, c, k, kid, o: sign(without(c, "sub"), k, kid), "invalid token"),
    "missing exp": (lambda t, c, k, kid, o: sign(without(c, "exp"), k, kid), "invalid token"),
    "missing session": (lambda t, c, k, kid, o: sign(without(c, "sid"), k, kid), "invalid token"),
    "unknown session": (lambda t, c, k, kid, o: sign({**c, "sid": str(uuid.uuid4())}, k, kid), "token revoked"),
    "garbage": (lambda t, c, k, kid, o: "garbage", "invalid token"),
    "three garbage segments": (lambda t, c, k, kid, o: "abc.def.ghi", "invalid token"),
}


def test_a_token_rebuilt_with_our_key_is_accepted(client, guest, signing_key):
    """The control for the cases below: the same builder with nothing wrong yields a working token."""
    rebuilt = sign(claims_of(guest.token), signing_key, key_id(signing_key.public_key()))
    response = client.get("/auth/me", headers={"Authorization": f"Bearer {rebuilt}"})
    assert response.status_code == 200, response.json
    assert response.json["id"] == guest.user_id


@pytest.mark.parametrize("case", BAD_TOKENS, ids=list(BAD_TOKENS))
def test_a_bad_token_is_rejected_with_401(case, client, guest, signing_key, other_key, snapshot):
    make, message = BAD_TOKENS[case]
    token = make(guest.token, claims_of(guest.token), signing_key, key_id(signing_key.public_key()), other_key)
    before = snapshot()
    response = client.get("/auth/me", headers={"Authorization": f"Bearer {token}"})
    assert_error(response, 401, message)
    assert "X-User-ID" not in response.headers
    assert snapshot() == before


def test_a_token_of_a_deleted_user_is_rejected(client, guest, app, snapshot):
    with app.extensions["jan"].db.transaction() as conn:
        conn.execute(update(users).where(users.c.public_id == guest.user_id).values(deleted_at=func.now()))
    before = snapshot()
    assert_error(guest.get("/auth/me"), 401, "token revoked")
    assert_error(client.post("/auth/refresh-token", json={"refresh_token": guest.refresh_token}), 401,
                 "invalid refresh token")
    assert snapshot() == before


def test_a_request_without_credentials_is_rejected(client):
    assert_error(client.get("/auth/me"), 401, "authentication required")
    assert_error(client.get("/auth/me", headers={"Authorization": "Basic dXNlcjpwYXNz"}), 401,
                 "authentication required")


# --- the external issuer mode --------------------------------------------------------------------------------


def build_app(llm_env: dict, **settings):
    """Another llm app in this process (as another pod would be), with settings overridden."""
    from functions.llm.app import create_app
    from functions.llm.settings import LlmSettings
    from shared.settings import from_env

    return create_app(from_env(LlmSettings, environ=llm_env, **settings))


@pytest.fixture(scope="module")
def issuer():
    with OidcIssuer() as double:
        yield double


EXTERNAL_ADMIN_EMAIL = "kc-admin@example.com"


@pytest.fixture(scope="module")
def external_app(llm_env, issuer):
    return build_app(llm_env, issuer=issuer.issuer, jwks_url=issuer.jwks_url, audience=issuer.audience,
                     admin_emails=(EXTERNAL_ADMIN_EMAIL,))


@pytest.fixture
def external(external_app):
    return external_app.test_client()


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def external_rows(app, subject: str) -> list:
    with app.extensions["jan"].db.read() as conn:
        return conn.execute(select(users.c.public_id, users.c.issuer, users.c.email, users.c.role)
                            .where(users.c.subject == subject)).all()


def test_an_external_token_is_accepted_and_its_user_created_once(external, external_app, issuer):
    subject = f"kc-{uuid.uuid4()}"
    token = issuer.mint(subject, email=f"{subject}@example.com", email_verified=True,
                        preferred_username="kc-person", name="K. Person")
    first = external.get("/auth/me", headers=bearer(token))
    assert first.status_code == 200, first.json
    assert first.json == {"id": first.json["id"], "username": "kc-person", "email": f"{subject}@example.com",
                          "name": "K. Person", "subject": subject, "auth_method": "jwt", "roles": ["user"],
                          "is_admin": False, "is_guest": False}
    assert first.headers["X-User-ID"] == first.json["id"]
    second = external.get("/llm/auth/me", headers=bearer(token))
    assert second.json["id"] == first.json["id"]
    assert external_rows(external_app, subject) == [(first.json["id"], issuer.issuer, f"{subject}@example.com",
                                                     "user")]


def test_an_external_token_of_a_deleted_user_is_rejected(external, external_app, issuer, snapshot):
    subject = f"kc-{uuid.uuid4()}"
    token = issuer.mint(subject)
    assert external.get("/auth/me", headers=bearer(token)).status_code == 200
    with external_app.extensions["jan"].db.transaction() as conn:
        conn.execute(update(users).where(users.c.subject == subject).values(deleted_at=func.now()))
    before = snapshot()
    assert_error(external.get("/auth/me", headers=bearer(token)), 401, "token revoked")
    assert snapshot() == before


def test_our_own_tokens_still_work_when_an_external_issuer_is_trusted(external, guest):
    response = external.get("/auth/me", headers=guest.headers)
    assert response.status_code == 200, response.json
    assert response.json["id"] == guest.user_id


def test_an_external_realm_admin_role_makes_an_admin(external, issuer):
    admin_token = issuer.mint(f"kc-{uuid.uuid4()}", realm_access={"roles": ["admin", "offline_access"]})
    plain_token = issuer.mint(f"kc-{uuid.uuid4()}", realm_access={"roles": ["offline_access"]})
    assert external.get("/v1/admin/providers", headers=bearer(admin_token)).status_code == 200
    assert external.get("/auth/me", headers=bearer(admin_token)).json["roles"] == ["admin"]
    assert_error(external.get("/v1/admin/providers", headers=bearer(plain_token)), 403, "admin access required")


def test_an_admin_email_counts_only_when_the_issuer_verified_it(external, issuer):
    """Anyone may register any address at an issuer with open sign-up; only a verified one may make an admin."""
    unverified = issuer.mint(f"kc-{uuid.uuid4()}", email=EXTERNAL_ADMIN_EMAIL.upper(), email_verified=False)
    assert_error(external.get("/v1/admin/providers", headers=bearer(unverified)), 403, "admin access required")
    verified = issuer.mint(f"kc-{uuid.uuid4()}", email=EXTERNAL_ADMIN_EMAIL, email_verified=True)
    assert external.get("/v1/admin/providers", headers=bearer(verified)).status_code == 200


def test_an_external_user_whose_email_a_local_account_has_still_signs_in(external, external_app, issuer, user):
    subject = f"kc-{uuid.uuid4()}"
    response = external.get("/auth/me", headers=bearer(issuer.mint(subject, email=user.email, email_verified=True)))
    assert response.status_code == 200, response.json
    assert response.json["id"] != user.user_id
    assert response.json["email"] is None  # the address stays with the account that holds it
    assert user.get("/auth/me").json["email"] == user.email


EXTERNAL_BAD_TOKENS = {
    "wrong audience": (lambda i, o: i.mint("kc-x", audience="someone-else"), "invalid token"),
    "unknown kid": (lambda i, o: i.mint("kc-x", kid="rotated-away", key=o), "invalid token"),
    "issuer's kid, another key": (lambda i, o: i.mint("kc-x", key=o), "invalid token"),
    "expired": (lambda i, o: i.mint("kc-x", expires_in=-3600), "token expired"),
    "missing sub": (lambda i, o: i.mint(None), "invalid token"),
    "untrusted issuer": (lambda i, o: i.mint("kc-x", issuer="https://other-keycloak.example/realms/jan"),
                         "invalid token"),
}


@pytest.mark.parametrize("case", EXTERNAL_BAD_TOKENS, ids=list(EXTERNAL_BAD_TOKENS))
def test_a_bad_external_token_is_rejected_and_creates_no_user(case, external, issuer, other_key, snapshot):
    make, message = EXTERNAL_BAD_TOKENS[case]
    before = snapshot()
    assert_error(external.get("/auth/me", headers=bearer(make(issuer, other_key))), 401, message)
    assert snapshot() == before


def test_external_tokens_are_rejected_where_no_external_issuer_is_trusted(client, issuer, snapshot):
    before = snapshot()
    assert_error(client.get("/auth/me", headers=bearer(issuer.mint("kc-x"))), 401, "invalid token")
    assert snapshot() == before


def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/jwks"


def test_the_issuers_jwks_answering_an_error_gives_401_not_500(llm_env, issuer, snapshot):
    app = build_app(llm_env, issuer=issuer.issuer, jwks_url=issuer.jwks_url, audience=issuer.audience)
    issuer.jwks_status = 503
    fetches = issuer.jwks_requests
    try:
        before = snapshot()
        response = app.test_client().get("/auth/me", headers=bearer(issuer.mint("kc-down")))
    finally:
        issuer.jwks_status = 200
    assert_error(response, 401, "invalid token")
    assert issuer.jwks_requests > fetches  # the key set was asked for, and its failure handled
    assert snapshot() == before


def test_an_unreachable_jwks_gives_401_not_500(llm_env, issuer):
    app = build_app(llm_env, issuer=issuer.issuer, jwks_url=closed_port_url(), audience=issuer.audience)
    assert_error(app.test_client().get("/auth/me", headers=bearer(issuer.mint("kc-down"))), 401, "invalid token")


def test_the_first_external_token_fetches_the_jwks_however_long_the_refetch_interval(llm_env, issuer, monkeypatch):
    """The interval limits refetches; it must not delay the first fetch (e.g. on a host booted seconds ago)."""
    monkeypatch.setattr(ExternalJwks, "refetch_interval", time.monotonic() + 3600)
    app = build_app(llm_env, issuer=issuer.issuer, jwks_url=issuer.jwks_url, audience=issuer.audience)
    response = app.test_client().get("/auth/me", headers=bearer(issuer.mint(f"kc-{uuid.uuid4()}")))
    assert response.status_code == 200, response.json
