"""Accounts and sessions through HTTP: guest login, refresh-token rotation, logout and revoke, upgrade, password
login, /auth/me, identity headers, roles, and the `make admin` command."""
from __future__ import annotations

import datetime as dt
import os
import re
import subprocess
import sys
import uuid

import pytest
from sqlalchemy import func, select, update

from shared.schema import auth_sessions, users
from tests.conftest import ROOT

ERROR_TYPES = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
               404: "not_found_error", 409: "conflict"}
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
PAIR_KEYS = {"access_token", "refresh_token", "token_type", "expires_in", "expires_at"}


def assert_error(response, status: int, message: str, *, param=None, code=None) -> None:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.json == {"error": {"message": message, "type": ERROR_TYPES[status], "param": param, "code": code},
                             "message": message, "request_id": response.headers["X-Request-Id"]}


@pytest.fixture
def bare(app):
    """A client without a cookie jar, so only what a test sends is sent."""
    return app.test_client(use_cookies=False)


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def refresh(client, refresh_token: str):
    return client.post("/auth/refresh-token", json={"refresh_token": refresh_token})


def set_cookie(response, name: str) -> str:
    return next(value for value in response.headers.getlist("Set-Cookie") if value.startswith(f"{name}="))


# --- guest login and /auth/me ---------------------------------------------------------------------------------


def test_guest_login_returns_201_with_jans_body(bare):
    response = bare.post("/auth/guest-login", data="ignored, not JSON")
    assert response.status_code == 201, response.json
    body = response.json
    assert set(body) == {"user_id", "username", "principal_id"} | PAIR_KEYS
    assert UUID.match(body["user_id"])
    assert body["principal_id"] == body["user_id"]
    assert re.match(r"^guest-[0-9a-f-]{36}$", body["username"])
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 3600
    assert body["refresh_token"].startswith("rt_")
    cookie = set_cookie(response, "refresh_token")
    assert cookie.startswith(f"refresh_token={body['refresh_token']};")
    assert {"HttpOnly", "Secure", "SameSite=Lax"} <= {part.strip() for part in cookie.split(";")}


def test_me_describes_the_caller_at_both_prefixes(guest):
    for path in ("/auth/me", "/llm/auth/me"):
        response = guest.get(path)
        assert response.status_code == 200, response.json
        assert response.json == {"id": guest.user_id, "username": guest.body["username"], "email": None,
                                 "name": guest.body["username"], "subject": guest.user_id, "auth_method": "jwt",
                                 "roles": ["guest"], "is_admin": False, "is_guest": True}


def test_responses_carry_the_request_id_and_the_callers_identity(guest, bare):
    response = guest.get("/auth/me")
    assert UUID.match(response.headers["X-Request-Id"])
    assert response.headers["X-Auth-Method"] == "jwt"
    assert response.headers["X-Principal-Id"] == guest.user_id
    assert response.headers["X-User-ID"] == guest.user_id
    echoed = guest.get("/auth/me", headers={"X-Request-Id": "client-chosen-id.1"})
    assert echoed.headers["X-Request-Id"] == "client-chosen-id.1"
    anonymous = bare.get("/healthz")
    assert "X-User-ID" not in anonymous.headers and "X-Auth-Method" not in anonymous.headers


def test_forged_identity_headers_beside_a_valid_token_are_ignored(new_guest):
    caller, victim = new_guest(), new_guest()
    forged = {"X-User-ID": victim.user_id, "X-Principal-Id": victim.user_id, "X-Auth-Method": "apikey",
              "X-User-Subject": victim.user_id, "X-User-Email": "victim@example.com"}
    response = caller.get("/auth/me", headers=forged)
    assert response.status_code == 200
    assert response.json["id"] == caller.user_id
    assert response.json["auth_method"] == "jwt"
    assert (response.headers["X-User-ID"], response.headers["X-Auth-Method"]) == (caller.user_id, "jwt")


def test_identity_headers_alone_do_not_authenticate(bare, guest, snapshot):
    before = snapshot()
    response = bare.get("/auth/me", headers={"X-User-ID": guest.user_id, "X-Auth-Method": "apikey"})
    assert_error(response, 401, "authentication required")
    assert snapshot() == before


# --- refresh-token rotation -----------------------------------------------------------------------------------


def test_refresh_rotates_the_pair_and_the_new_pair_works(bare, guest):
    first = refresh(bare, guest.refresh_token)
    assert first.status_code == 200, first.json
    assert set(first.json) == PAIR_KEYS
    assert first.json["refresh_token"] != guest.refresh_token
    assert bare.get("/auth/me", headers=bearer(first.json["access_token"])).json["id"] == guest.user_id
    second = refresh(bare, first.json["refresh_token"])
    assert second.status_code == 200, second.json
    assert bare.get("/auth/me", headers=bearer(second.json["access_token"])).json["id"] == guest.user_id


def test_a_reused_refresh_token_revokes_its_whole_session(bare, user):
    other_session = bare.post("/auth/login", json={"email": user.email, "password": user.password}).json
    rotated = refresh(bare, user.refresh_token).json
    assert_error(refresh(bare, user.refresh_token), 401, "refresh token reuse detected; session revoked")
    assert_error(refresh(bare, rotated["refresh_token"]), 401, "invalid refresh token")
    assert_error(bare.get("/auth/me", headers=bearer(rotated["access_token"])), 401, "token revoked")
    assert_error(bare.get("/auth/me", headers=bearer(user.token)), 401, "token revoked")
    # Only that login's family: the user's other session is untouched.
    assert bare.get("/auth/me", headers=bearer(other_session["access_token"])).status_code == 200
    assert refresh(bare, other_session["refresh_token"]).status_code == 200


def test_refresh_reads_the_refresh_token_cookie(client, bare):
    login = client.post("/auth/guest-login").json
    response = client.post("/auth/refresh-token")
    assert response.status_code == 200, response.json
    assert set_cookie(response, "refresh_token").startswith(f"refresh_token={response.json['refresh_token']};")
    assert bare.get("/auth/me", headers=bearer(response.json["access_token"])).json["id"] == login["user_id"]
    assert_error(refresh(bare, login["refresh_token"]), 401, "refresh token reuse detected; session revoked")


@pytest.mark.parametrize("path", ["/auth/refresh-token", "/auth/guest-login"])
def test_expires_at_is_an_rfc3339_string_like_jans(bare, guest, path):
    """Jan's refresh response carries Go's time.Time: an RFC 3339 string, the access token's expiry."""
    body = (refresh(bare, guest.refresh_token) if path == "/auth/refresh-token" else bare.post(path)).json
    assert isinstance(body["expires_at"], str)
    expires = dt.datetime.fromisoformat(body["expires_at"].replace("Z", "+00:00"))
    assert body["expires_at"].endswith("Z")
    remaining = (expires - dt.datetime.now(dt.timezone.utc)).total_seconds()
    assert abs(remaining - body["expires_in"]) < 5


def test_refresh_reads_a_refresh_token_sent_as_bearer(bare, guest):
    response = bare.post("/auth/refresh-token", headers=bearer(guest.refresh_token))
    assert response.status_code == 200, response.json
    assert bare.get("/auth/me", headers=bearer(response.json["access_token"])).json["id"] == guest.user_id


@pytest.mark.parametrize("request_kwargs, status, message, param", [
    ({}, 400, "refresh_token required", "refresh_token"),
    ({"json": {"refresh_token": "rt_unknown"}}, 401, "invalid refresh token", None),
    ({"json": {"refresh_token": 42}}, 400, "refresh_token required", "refresh_token"),
], ids=["missing", "unknown", "not a string"])
def test_a_bad_refresh_request_is_rejected_and_changes_nothing(bare, guest, snapshot, request_kwargs, status,
                                                              message, param):
    before = snapshot()
    assert_error(bare.post("/auth/refresh-token", **request_kwargs), status, message, param=param)
    assert snapshot() == before


def test_a_refresh_token_of_an_expired_session_is_rejected(bare, guest, app, snapshot):
    """A session ends at its expiry even though its latest refresh token would live on."""
    owner = select(users.c.id).where(users.c.public_id == guest.user_id).scalar_subquery()
    with app.extensions["jan"].db.transaction() as conn:
        conn.execute(update(auth_sessions).where(auth_sessions.c.user_id == owner)
                     .values(expires_at=func.now() - dt.timedelta(hours=1)))
    before = snapshot()
    assert_error(refresh(bare, guest.refresh_token), 401, "invalid refresh token")
    assert snapshot() == before


# --- logout and revoke ----------------------------------------------------------------------------------------


def assert_session_ended(client, account) -> None:
    assert_error(client.get("/auth/me", headers=bearer(account.token)), 401, "token revoked")
    assert_error(refresh(client, account.refresh_token), 401, "invalid refresh token")


def assert_logged_out(response) -> None:
    assert response.status_code == 200, response.json
    assert response.json == {"status": "logged out"}
    cookie = set_cookie(response, "refresh_token")
    assert cookie.startswith("refresh_token=;") and "Expires=Thu, 01 Jan 1970" in cookie


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_logout_with_the_bearer_access_token_ends_the_session(bare, guest, method):
    assert_logged_out(bare.open("/auth/logout", method=method, headers=guest.headers))
    assert_session_ended(bare, guest)


def test_logout_with_the_refresh_token_in_the_body_ends_the_session(bare, guest):
    assert_logged_out(bare.post("/auth/logout", json={"refresh_token": guest.refresh_token}))
    assert_session_ended(bare, guest)


@pytest.mark.parametrize("headers", [{}, {"Origin": "http://localhost:3000"}], ids=["no origin", "allowed origin"])
def test_logout_with_the_refresh_token_cookie_ends_the_session(client, bare, headers):
    login = client.post("/auth/guest-login").json
    assert_logged_out(client.post("/auth/logout", headers=headers))
    assert_error(bare.get("/auth/me", headers=bearer(login["access_token"])), 401, "token revoked")
    assert client.get_cookie("refresh_token") is None


def test_get_logout_never_acts_on_the_cookie(client, bare, snapshot):
    """A cross-site link or image (which a Lax cookie accompanies) cannot end a session or clear the cookie."""
    login = client.post("/auth/guest-login").json
    before = snapshot()
    response = client.get("/auth/logout", headers={"Origin": "https://evil.example"})
    assert response.status_code == 200 and response.json == {"status": "logged out"}
    assert not response.headers.getlist("Set-Cookie")
    assert snapshot() == before
    assert bare.get("/auth/me", headers=bearer(login["access_token"])).status_code == 200


@pytest.mark.parametrize("origin", ["https://evil.example", "null", "http://localhost:3000.evil.example"])
@pytest.mark.parametrize("path", ["/auth/refresh-token", "/auth/logout", "/llm/auth/refresh-token"])
def test_a_cookie_authenticated_request_from_a_foreign_origin_is_refused(client, snapshot, origin, path):
    client.post("/auth/guest-login")
    before = snapshot()
    response = client.post(path, headers={"Origin": origin})
    assert_error(response, 403, "this origin may not use the refresh token cookie", code="origin_not_allowed")
    assert snapshot() == before


def test_a_refresh_token_in_the_body_works_from_any_origin(bare, guest):
    """Not a cookie: a foreign page can only send what it already holds."""
    response = bare.post("/auth/refresh-token", json={"refresh_token": guest.refresh_token},
                         headers={"Origin": "https://elsewhere.example"})
    assert response.status_code == 200, response.json


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer not-a-token"}], ids=["nothing", "garbage"])
def test_logout_without_a_session_succeeds_and_changes_nothing(bare, guest, snapshot, headers):
    before = snapshot()
    assert_logged_out(bare.post("/auth/logout", headers=headers))
    assert snapshot() == before


def test_revoke_ends_the_session_of_a_refresh_token(bare, guest):
    response = bare.post("/auth/revoke", json={"refresh_token": guest.refresh_token})
    assert response.status_code == 200
    assert response.json == {"message": "Token revoked successfully"}
    assert_session_ended(bare, guest)


@pytest.mark.parametrize("body, status, message, param", [
    ({"refresh_token": "rt_unknown"}, 200, None, None),
    ({}, 400, "refresh_token is required", "refresh_token"),
    ({"refresh_token": ["rt_x"]}, 400, "refresh_token must be a string", "refresh_token"),
], ids=["unknown token (RFC 7009: not an error)", "missing", "not a string"])
def test_revoke_of_nothing_changes_nothing(bare, guest, snapshot, body, status, message, param):
    before = snapshot()
    response = bare.post("/auth/revoke", json=body)
    if message is None:
        assert response.status_code == status
    else:
        assert_error(response, status, message, param=param)
    assert snapshot() == before


# --- upgrade and password login -------------------------------------------------------------------------------


def test_upgrade_keeps_the_same_user_and_its_data(guest, bare):
    conversation = guest.post("/v1/conversations", json={"title": "made as a guest"}).json
    email = f"upgraded-{uuid.uuid4().hex[:8]}@example.com"
    response = guest.post("/auth/upgrade", json={"email": email, "password": "long enough pw",
                                                 "username": "upgraded", "full_name": "Up Graded"})
    assert response.status_code == 200, response.json
    assert response.json == {"status": "upgraded"}
    me = guest.get("/auth/me").json
    assert (me["id"], me["email"], me["username"], me["name"], me["roles"], me["is_guest"]) == (
        guest.user_id, email, "upgraded", "Up Graded", ["user"], False)
    login = bare.post("/auth/login", json={"email": email, "password": "long enough pw"}).json
    assert login["user_id"] == guest.user_id
    owned = bare.get(f"/v1/conversations/{conversation['id']}", headers=bearer(login["access_token"]))
    assert owned.status_code == 200, owned.json
    assert owned.json["title"] == "made as a guest"
    assert bare.get(f"/v1/conversations/{conversation['id']}/items",
                    headers=bearer(login["access_token"])).status_code == 200


@pytest.mark.parametrize("body, message, param", [
    ({"email": "short@example.com", "password": "short"}, "password must be at least 8 characters", "password"),
    ({"email": "nopassword@example.com"}, "password is required", "password"),
    ({"email": "not-an-email", "password": "long enough pw"}, "email is not a valid address", "email"),
    ({"password": "long enough pw"}, "email is required", "email"),
], ids=["short password", "no password", "bad email", "no email"])
def test_a_bad_upgrade_is_400_and_changes_nothing(guest, snapshot, body, message, param):
    before = snapshot()
    assert_error(guest.post("/auth/upgrade", json=body), 400, message, param=param)
    assert snapshot() == before
    assert guest.get("/auth/me").json["is_guest"] is True


def test_upgrade_to_an_email_in_use_is_409_whatever_its_case(user, guest, snapshot):
    before = snapshot()
    response = guest.post("/auth/upgrade", json={"email": user.email.upper(), "password": "long enough pw"})
    assert_error(response, 409, "an account with this email already exists", param="email")
    assert snapshot() == before


def test_upgrading_a_permanent_account_is_409(user, snapshot):
    before = snapshot()
    response = user.post("/auth/upgrade", json={"email": f"again-{uuid.uuid4().hex[:8]}@example.com",
                                                "password": "long enough pw"})
    assert_error(response, 409, "account is already a permanent account")
    assert snapshot() == before


def test_upgrade_needs_credentials(bare):
    assert_error(bare.post("/auth/upgrade", json={"email": "a@example.com", "password": "long enough pw"}), 401,
                 "authentication required")


def test_login_with_email_and_password(bare, user):
    response = bare.post("/auth/login", json={"email": user.email.upper(), "password": user.password})
    assert response.status_code == 200, response.json
    assert set(response.json) == {"user_id", "username", "principal_id"} | PAIR_KEYS
    assert response.json["user_id"] == response.json["principal_id"] == user.user_id
    me = bare.get("/llm/auth/me", headers=bearer(response.json["access_token"]))
    assert (me.json["id"], me.json["email"]) == (user.user_id, user.email)


def test_wrong_password_and_unknown_email_get_the_same_401(bare, user, snapshot):
    before = snapshot()
    wrong_password = bare.post("/auth/login", json={"email": user.email, "password": "not the password"})
    unknown_email = bare.post("/auth/login", json={"email": "nobody@example.com", "password": user.password})
    assert_error(wrong_password, 401, "invalid email or password")
    assert_error(unknown_email, 401, "invalid email or password")
    after = snapshot()
    # Only the attempt counters moved (tests/llm/test_login_limits.py).
    assert {**after, "rate_limit_counters": None} == {**before, "rate_limit_counters": None}


@pytest.mark.parametrize("data, message, param", [
    ("{not json", "invalid JSON in request body", None),
    ('["a list"]', "request body must be a JSON object", None),
    ('{"email": "a@example.com", "password": 12345678}', "password is required", "password"),
], ids=["malformed JSON", "not an object", "password not a string"])
def test_a_malformed_login_is_400(bare, snapshot, data, message, param):
    before = snapshot()
    response = bare.post("/auth/login", data=data, content_type="application/json")
    assert_error(response, 400, message, param=param)
    assert snapshot() == before


# --- roles ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("account", ["guest", "user"])
def test_non_admins_get_403_on_admin_routes(request, snapshot, account):
    caller = request.getfixturevalue(account)
    before = snapshot()
    assert_error(caller.get("/v1/admin/providers"), 403, "admin access required")
    assert_error(caller.post("/v1/admin/providers", json={"name": "x", "base_url": "http://127.0.0.1:1/v1"}), 403,
                 "admin access required")
    assert snapshot() == before


def test_admins_reach_admin_routes(admin):
    response = admin.get("/v1/admin/providers")
    assert response.status_code == 200, response.json
    assert admin.get("/auth/me").json["is_admin"] is True


def test_admin_routes_without_credentials_are_401(bare):
    assert_error(bare.get("/v1/admin/providers"), 401, "authentication required")


def test_upgrading_with_an_admin_email_does_not_make_an_admin(guest, llm_settings):
    # Nothing verifies the address a guest upgrades with: ADMIN_EMAILS only trusts verified external identities.
    email = llm_settings.admin_emails[0].title()
    assert guest.post("/auth/upgrade", json={"email": email, "password": "long enough pw"}).status_code == 200
    assert guest.get("/auth/me").json["roles"] == ["user"]
    assert guest.get("/v1/admin/providers").status_code == 403


def run_make_admin(llm_env: dict, email: str) -> str:
    result = subprocess.run([sys.executable, "-m", "functions.llm.manage", "admin", email], cwd=ROOT,
                            env={**os.environ, **llm_env}, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout


def one_time_key(output: str) -> str:
    return re.search(r"one-time admin API key \(shown only now\): (sk_live_[0-9a-f]{48})$", output, re.M).group(1)


def test_make_admin_creates_an_admin_with_a_working_api_key(llm_env, bare):
    email = f"ops-{uuid.uuid4().hex[:8]}@example.com"
    output = run_make_admin(llm_env, email)
    assert re.search(rf"^created admin {re.escape(email)} \([0-9a-f-]{{36}}\)$", output, re.M), output
    key = one_time_key(output)
    response = bare.get("/v1/admin/providers", headers={"X-API-Key": key})
    assert response.status_code == 200, response.json
    me = bare.get("/auth/me", headers={"X-API-Key": key}).json
    assert (me["email"], me["roles"], me["auth_method"]) == (email, ["admin"], "apikey")


def test_make_admin_promotes_an_existing_account(llm_env, user):
    assert user.get("/v1/admin/providers").status_code == 403
    output = run_make_admin(llm_env, user.email)
    assert f"promoted admin {user.email} ({user.user_id})" in output
    one_time_key(output)
    assert user.get("/v1/admin/providers").status_code == 200
