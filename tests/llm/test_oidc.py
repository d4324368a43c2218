"""Jan's OAuth login through an external issuer (GET /auth/login + /auth/callback, PKCE S256), run end to end
against the OIDC issuer test double (tests/doubles/oidc_issuer.py): the test plays the browser."""
from __future__ import annotations

import datetime as dt
import socket
import uuid
from urllib.parse import parse_qsl, urlsplit

import jwt
import pytest
import urllib3
from cryptography.hazmat.primitives.asymmetric import rsa
from sqlalchemy import func, select, update

from shared.schema import oauth_states, users
from tests.doubles.oidc_issuer import OidcIssuer, pkce_challenge

ERROR_TYPES = {400: "invalid_request_error", 404: "not_found_error"}
LANDING = "http://localhost:3000/after-login"
CALLBACK = "http://llm.test/auth/callback"


def assert_error(response, status: int, message: str, *, param=None, code=None) -> None:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.json == {"error": {"message": message, "type": ERROR_TYPES[status], "param": param, "code": code},
                             "message": message, "request_id": response.headers["X-Request-Id"]}


def build_app(llm_env: dict, **settings):
    """Another llm app in this process (as another pod would be), with settings overridden."""
    from functions.llm.app import create_app
    from functions.llm.settings import LlmSettings
    from shared.settings import from_env

    return create_app(from_env(LlmSettings, environ=llm_env, **settings))


def oauth_settings(issuer: OidcIssuer) -> dict:
    return dict(issuer=issuer.issuer, jwks_url=issuer.jwks_url, audience=issuer.audience,
                oidc_authorization_url=issuer.authorization_url, oidc_token_url=issuer.token_url,
                oidc_client_id=issuer.client_id, oidc_client_secret=issuer.client_secret,
                oauth_redirect_uri=CALLBACK)


@pytest.fixture(scope="module")
def issuer():
    with OidcIssuer() as double:
        yield double


@pytest.fixture(scope="module")
def oauth_app(llm_env, issuer):
    return build_app(llm_env, **oauth_settings(issuer))


@pytest.fixture
def oauth(oauth_app):
    return oauth_app.test_client(use_cookies=False)


@pytest.fixture
def person(issuer):
    """A fresh identity at the issuer, signed in by the next authorization."""
    subject = f"kc-{uuid.uuid4()}"
    issuer.identity = {"sub": subject, "email": f"{subject}@example.com", "email_verified": True,
                       "preferred_username": subject}
    return subject


def begin(client, redirect_url: str = LANDING) -> dict:
    response = client.get("/auth/login", query_string={"redirect_url": redirect_url})
    assert response.status_code == 200, response.json
    return response.json


def at_issuer(authorization_url: str) -> str:
    """The browser at the issuer: it signs in and is sent back; returns the callback's path and query."""
    response = urllib3.request("GET", authorization_url, redirect=False)
    assert response.status == 302, response.data
    back = urlsplit(response.headers["Location"])
    assert f"{back.scheme}://{back.netloc}{back.path}" == CALLBACK
    return f"{back.path}?{back.query}"


def stored_flow(app, state: str):
    with app.extensions["jan"].db.read() as conn:
        return conn.execute(select(oauth_states, func.now().label("db_now"))
                            .where(oauth_states.c.state == state)).first()


def landed(response) -> tuple[str, dict, dict]:
    """(where the browser goes, its query, its fragment) from a callback response, which is always a 302."""
    assert response.status_code == 302, response.get_data(as_text=True)
    location = urlsplit(response.headers["Location"])
    return (f"{location.scheme}://{location.netloc}{location.path}", dict(parse_qsl(location.query)),
            dict(parse_qsl(location.fragment)))


def test_oauth_login_is_404_without_an_external_issuer(client, snapshot):
    before = snapshot()
    message = ("OAuth login is not available: no external identity provider is configured "
               "(use POST /auth/login with email and password, or /auth/guest-login)")
    assert_error(client.get("/auth/login", query_string={"redirect_url": LANDING}), 404, message)
    assert_error(client.get("/auth/callback", query_string={"code": "c", "state": "s"}), 404, message)
    assert snapshot() == before


def test_login_returns_an_authorization_url_with_pkce_and_stores_the_flow(oauth, oauth_app, issuer):
    body = begin(oauth)
    assert set(body) == {"authorization_url", "state"}
    url = urlsplit(body["authorization_url"])
    assert f"{url.scheme}://{url.netloc}{url.path}" == issuer.authorization_url
    flow = stored_flow(oauth_app, body["state"])
    assert dict(parse_qsl(url.query)) == {
        "client_id": issuer.client_id, "redirect_uri": CALLBACK, "response_type": "code",
        "scope": "openid profile email", "state": body["state"], "code_challenge": pkce_challenge(flow.code_verifier),
        "code_challenge_method": "S256"}
    assert 43 <= len(flow.code_verifier) <= 128
    assert flow.redirect_url == LANDING
    assert flow.expires_at - flow.db_now == pytest.approx(dt.timedelta(minutes=10), abs=dt.timedelta(seconds=5))


def test_a_completed_login_lands_with_our_tokens_for_the_issuers_user(oauth, oauth_app, issuer, person,
                                                                      llm_settings):
    state = begin(oauth)
    verifier = stored_flow(oauth_app, state["state"]).code_verifier
    response = oauth.get(at_issuer(state["authorization_url"]))
    page, query, tokens = landed(response)
    assert (page, query) == (LANDING, {})
    assert set(tokens) == {"access_token", "refresh_token", "expires_in", "token_type"}
    assert (tokens["expires_in"], tokens["token_type"]) == ("3600", "Bearer")
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["Referrer-Policy"] == "no-referrer"
    assert issuer.token_requests[-1]["code_verifier"] == verifier
    assert stored_flow(oauth_app, state["state"]) is None  # used up
    assert jwt.decode(tokens["access_token"], options={"verify_signature": False})["iss"] == llm_settings.token_issuer
    me = oauth.get("/auth/me", headers={"Authorization": f"Bearer {tokens['access_token']}"})
    assert me.status_code == 200, me.json
    assert (me.json["subject"], me.json["email"], me.json["roles"]) == (person, f"{person}@example.com", ["user"])
    with oauth_app.extensions["jan"].db.read() as conn:
        assert conn.execute(select(users.c.public_id, users.c.issuer).where(users.c.subject == person)).all() == [
            (me.json["id"], issuer.issuer)]
    refreshed = oauth.post("/auth/refresh-token", json={"refresh_token": tokens["refresh_token"]})
    assert refreshed.status_code == 200, refreshed.json


def login_tokens(client, **begin_kwargs) -> dict:
    return landed(client.get(at_issuer(begin(client, **begin_kwargs)["authorization_url"])))[2]


def me(client, tokens: dict) -> dict:
    return client.get("/auth/me", headers={"Authorization": f"Bearer {tokens['access_token']}"}).json


def test_logging_in_again_is_the_same_user(oauth, person):
    assert me(oauth, login_tokens(oauth))["id"] == me(oauth, login_tokens(oauth))["id"]


def test_a_deleted_account_cannot_log_in_again(oauth, oauth_app, person, snapshot):
    login_tokens(oauth)
    with oauth_app.extensions["jan"].db.transaction() as conn:
        conn.execute(update(users).where(users.c.subject == person).values(deleted_at=func.now()))
    before = snapshot()
    assert landed(oauth.get(at_issuer(begin(oauth)["authorization_url"]))) == (
        LANDING, {"error": "access_denied", "error_description": "this account is no longer available"}, {})
    assert snapshot() == before


def test_an_issuer_admin_logs_in_as_admin(oauth, issuer, person):
    issuer.identity["realm_access"] = {"roles": ["admin"]}
    tokens = login_tokens(oauth)
    response = oauth.get("/v1/admin/providers", headers={"Authorization": f"Bearer {tokens['access_token']}"})
    assert response.status_code == 200, response.json


def test_any_pod_can_finish_a_login_another_began(oauth, llm_env, issuer, person):
    other_pod = build_app(llm_env, **oauth_settings(issuer)).test_client()
    callback = at_issuer(begin(oauth)["authorization_url"])
    assert me(other_pod, landed(other_pod.get(callback))[2])["subject"] == person


def test_a_replayed_callback_is_an_invalid_state(oauth, person, snapshot):
    callback = at_issuer(begin(oauth)["authorization_url"])
    landed(oauth.get(callback))
    before = snapshot()
    page, query, tokens = landed(oauth.get(callback))
    assert (page, query, tokens) == ("http://localhost/", {"error": "invalid_state",
                                                          "error_description": "unknown or already used login state"},
                                     {})
    assert snapshot() == before


@pytest.mark.parametrize("query", [{"code": "c", "state": "never-issued"}, {"code": "c"}, {}],
                         ids=["unknown state", "no state", "nothing"])
def test_a_callback_without_a_known_state_lands_on_the_first_allowed_prefix(oauth, snapshot, query):
    before = snapshot()
    assert landed(oauth.get("/auth/callback", query_string=query)) == (
        "http://localhost/", {"error": "invalid_state", "error_description": "unknown or already used login state"},
        {})
    assert snapshot() == before


def test_an_expired_login_lands_with_invalid_state(oauth, oauth_app, issuer, person, snapshot):
    before = snapshot()
    state = begin(oauth)
    with oauth_app.extensions["jan"].db.transaction() as conn:
        conn.execute(update(oauth_states).where(oauth_states.c.state == state["state"])
                     .values(expires_at=func.now() - dt.timedelta(seconds=1)))
    requests = len(issuer.token_requests)
    assert landed(oauth.get(at_issuer(state["authorization_url"]))) == (
        LANDING, {"error": "invalid_state", "error_description": "the login took too long"}, {})
    assert len(issuer.token_requests) == requests  # the code was never exchanged
    assert snapshot() == before


@pytest.mark.parametrize("query, landing_query", [
    ({"error": "access_denied", "error_description": "User cancelled"},
     {"error": "access_denied", "error_description": "User cancelled"}),
    ({"error": "<script>"}, {"error": "access_denied", "error_description": "the login was refused"}),
    ({}, {"error": "invalid_request", "error_description": "code is required"}),
], ids=["refused by the issuer", "unreadable error", "no code"])
def test_a_callback_without_a_code_lands_with_an_error(oauth, issuer, snapshot, query, landing_query):
    before = snapshot()
    state = begin(oauth)["state"]
    requests = len(issuer.token_requests)
    response = oauth.get("/auth/callback", query_string={**query, "state": state})
    assert landed(response) == (LANDING, landing_query, {})
    assert len(issuer.token_requests) == requests
    assert snapshot() == before


def test_a_wrong_pkce_verifier_fails_the_exchange(oauth, oauth_app, person, snapshot):
    """The verifier comes from the stored flow: a different one is refused by the issuer."""
    before = snapshot()
    state = begin(oauth)
    with oauth_app.extensions["jan"].db.transaction() as conn:
        conn.execute(update(oauth_states).where(oauth_states.c.state == state["state"])
                     .values(code_verifier="x" * 64))
    assert landed(oauth.get(at_issuer(state["authorization_url"]))) == (
        LANDING, {"error": "token_exchange_failed", "error_description": "the issuer's token endpoint answered 400"},
        {})
    assert snapshot() == before


def test_an_unknown_code_fails_the_exchange(oauth, snapshot):
    before = snapshot()
    state = begin(oauth)["state"]
    response = oauth.get("/auth/callback", query_string={"code": "forged", "state": state})
    assert landed(response) == (
        LANDING, {"error": "token_exchange_failed", "error_description": "the issuer's token endpoint answered 400"},
        {})
    assert snapshot() == before


@pytest.mark.parametrize("answer", [
    lambda issuer, guest: {"access_token": issuer.mint("kc-forged", key=rsa.generate_private_key(65537, 2048)),
                           "token_type": "Bearer"},
    lambda issuer, guest: {"access_token": issuer.mint("kc-forged", audience="someone-else"),
                           "id_token": issuer.mint("kc-forged", issuer="https://other.example/realms/x")},
    lambda issuer, guest: {"access_token": guest.token, "token_type": "Bearer"},
    lambda issuer, guest: {"token_type": "Bearer"},
], ids=["signed by another key", "wrong audience and issuer", "a token of our own", "no token"])
def test_an_unverifiable_answer_from_the_token_endpoint_fails_the_exchange(oauth, issuer, guest, snapshot, answer):
    issuer.next_token_response = answer(issuer, guest)
    before = snapshot()
    assert landed(oauth.get(at_issuer(begin(oauth)["authorization_url"]))) == (
        LANDING, {"error": "token_exchange_failed", "error_description": "the issuer's tokens could not be verified"},
        {})
    assert snapshot() == before


def test_an_unreachable_token_endpoint_fails_the_exchange(llm_env, issuer):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{sock.getsockname()[1]}/token"
    client = build_app(llm_env, **{**oauth_settings(issuer), "oidc_token_url": closed}).test_client()
    page, query, tokens = landed(client.get(at_issuer(begin(client)["authorization_url"])))
    assert (page, query["error"], tokens) == (LANDING, "token_exchange_failed", {})
    assert query["error_description"].startswith("the issuer's token endpoint could not be reached")


@pytest.mark.parametrize("redirect_url", [
    "https://evil.example/callback",
    "http://localhost.evil.example/callback",
    "http://localhost:3000@evil.example/",
    "http://127.0.0.1.nip.io/",
    "http://localhost\\@evil.example/",
    "//evil.example/callback",
    "http://localhost\t.evil.example/",
    "javascript:alert(1)//http://localhost",
    "http://localhost/" + "a" * 2048,
    "http://localhost]/",
], ids=["other host", "prefix as subdomain", "userinfo", "IP as subdomain", "backslash userinfo",
        "scheme-relative", "tab", "javascript", "too long", "unparsable"])
def test_a_redirect_outside_the_allowed_prefixes_is_400(oauth, snapshot, redirect_url):
    before = snapshot()
    response = oauth.get("/auth/login", query_string={"redirect_url": redirect_url})
    assert_error(response, 400, "redirect_url is not an allowed redirect", param="redirect_url")
    assert snapshot() == before


@pytest.mark.parametrize("query", [{}, {"redirect_url": ""}], ids=["missing", "empty"])
def test_a_login_without_a_redirect_is_400(oauth, snapshot, query):
    before = snapshot()
    assert_error(oauth.get("/auth/login", query_string=query), 400, "redirect_url is required", param="redirect_url")
    assert snapshot() == before


@pytest.mark.parametrize("redirect_url", ["http://localhost", "http://localhost:3000/cb?tab=chat",
                                          "http://127.0.0.1:5173/"])
def test_local_redirects_are_allowed_by_default(oauth, redirect_url):
    begin(oauth, redirect_url)


def test_the_allowed_prefixes_come_from_the_settings(llm_env, issuer):
    env = {**llm_env, "OAUTH_ALLOWED_REDIRECT_PREFIXES": "https://app.example.com/auth/, https://admin.example.com"}
    client = build_app(env, **oauth_settings(issuer)).test_client()
    begin(client, "https://app.example.com/auth/done")
    begin(client, "https://admin.example.com:8443/")
    for rejected in ("https://app.example.com/other", "http://localhost:3000/"):
        assert client.get("/auth/login", query_string={"redirect_url": rejected}).status_code == 400
