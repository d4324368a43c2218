"""Jan's /auth routes (also served under /llm/auth)."""
from __future__ import annotations

from flask import Blueprint, jsonify, redirect, request

from shared.auth import authenticated, current_principal
from shared.auth.principal import credential_from
from shared.errors import BadRequest, Forbidden, Unauthorized
from shared.protocol.flask import body, returns
from shared.ratelimit import client_address
from functions.llm.auth.accounts import me_body, valid_email
from functions.llm.auth.protocol import (
    ApiKey,
    ApiKeyList,
    CreateApiKeyRequest,
    LoginRequest,
    LoginResponse,
    Me,
    RefreshTokenBody,
    RevokeRequest,
    TokenResponse,
    UpgradeRequest,
    ValidateApiKeyRequest,
)
from functions.llm.services import services

bp = Blueprint("auth", __name__, url_prefix="/auth")

REFRESH_COOKIE = "refresh_token"


# Lax: Jan's browser clients are same-site with the API, and no other site's page gets the cookie sent along
# with its requests (only top-level GET navigations carry it, and no GET here acts on it).
COOKIE_SAMESITE = "Lax"


def _with_refresh_cookie(response, refresh_token: str, max_age: int):
    response.set_cookie(REFRESH_COOKIE, refresh_token, max_age=max_age, httponly=True, secure=True,
                        samesite=COOKIE_SAMESITE, path="/")
    return response


def _bearer_refresh_token() -> str | None:
    credential = credential_from(request)
    if credential and credential[0] == "bearer" and credential[1].startswith("rt_"):
        return credential[1]
    return None


def _refresh_token_from_request(body: RefreshTokenBody) -> str | None:
    """Jan's order: body, then cookie, then the Authorization header. A token taken from the cookie is only
    accepted from an allowed Origin (or from a client that sends none: browsers send one on every POST)."""
    token = body.refresh_token
    if isinstance(token, str) and token.strip():
        return token.strip()
    token = request.cookies.get(REFRESH_COOKIE)
    if token:
        _require_cookie_origin()
        return token
    return _bearer_refresh_token()


def _require_cookie_origin() -> None:
    origin = request.headers.get("Origin")
    if origin is not None and origin not in services().cookie_origins:
        raise Forbidden("this origin may not use the refresh token cookie", code="origin_not_allowed")


@bp.post("/guest-login")
@returns(LoginResponse, 201)
def guest_login():
    """Create a guest account and return its tokens (201)."""
    public_id, username, pair = services().accounts.create_guest()
    body = {"user_id": public_id, "username": username, "principal_id": public_id, **pair.body()}
    response = jsonify(body)
    response.status_code = 201
    return _with_refresh_cookie(response, pair.refresh_token, services().settings.refresh_token_ttl_seconds)


@bp.post("/refresh-token")
@body(RefreshTokenBody, optional=True)
@returns(TokenResponse)
def refresh_token(body: RefreshTokenBody):
    """Rotate a refresh token; a reused one revokes its whole session."""
    token = _refresh_token_from_request(body)
    if not token:
        raise BadRequest("refresh_token required", param="refresh_token")
    pair = services().sessions.refresh(token)
    response = jsonify(pair.body())
    return _with_refresh_cookie(response, pair.refresh_token, services().settings.refresh_token_ttl_seconds)


@bp.route("/logout", methods=["GET", "POST"])
@body(RefreshTokenBody, optional=True)
def logout(body: RefreshTokenBody):
    """End the session named by the refresh token (body, cookie) or by the bearer access token. GET acts on the
    Authorization header only: a link on another site must not end a session or clear the cookie."""
    if request.method == "GET":
        if credential_from(request) is None:
            return {"status": "logged out"}
        token = _bearer_refresh_token()
    else:
        token = _refresh_token_from_request(body)
    if token:
        services().sessions.revoke_by_refresh_token(token, "logout")
    else:
        credential = credential_from(request)
        if credential and credential[0] == "bearer":
            try:
                verified = services().principals.verifier.verify(credential[1])
            except Unauthorized:
                verified = None
            if verified is not None and verified.own and isinstance(verified.claims.get("sid"), str):
                services().sessions.revoke_session(verified.claims["sid"], "logout")
    response = jsonify(status="logged out")
    response.delete_cookie(REFRESH_COOKIE, path="/", secure=True, httponly=True, samesite=COOKIE_SAMESITE)
    return response


@bp.post("/revoke")
@body(RevokeRequest)
def revoke(body: RevokeRequest):
    """Revoke a refresh token and its session (RFC 7009: unknown tokens are not an error)."""
    services().sessions.revoke_by_refresh_token(body.refresh_token, "revoked")
    return {"message": "Token revoked successfully"}


@bp.post("/upgrade")
@authenticated
@body(UpgradeRequest)
def upgrade(body: UpgradeRequest):
    """Turn the calling guest into a permanent account (email + password); its data stays its own."""
    services().accounts.upgrade(current_principal(), email=valid_email(body.email), password=body.password,
                                username=body.username, full_name=body.full_name)
    return {"status": "upgraded"}


@bp.post("/login")
@body(LoginRequest)
@returns(LoginResponse)
def login(body: LoginRequest):
    """Email and password login for permanent accounts."""
    user, pair = services().accounts.login(body.email, body.password,
                                           client_address(request, services().settings.client_address_header))
    response = jsonify({"user_id": user.public_id, "username": user.username, "principal_id": user.public_id,
                        **pair.body()})
    return _with_refresh_cookie(response, pair.refresh_token, services().settings.refresh_token_ttl_seconds)


@bp.get("/login")
def oauth_login():
    """Start Jan's OAuth login at the external issuer (PKCE); the client opens `authorization_url`."""
    return services().oauth.begin(request.args.get("redirect_url"))


@bp.get("/callback")
def oauth_callback():
    """Finish the OAuth login: a redirect with our tokens in the fragment, or with an error in the query."""
    response = redirect(services().oauth.finish(request.args), 302)
    response.headers["Cache-Control"] = "no-store"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


@bp.get("/me")
@authenticated
@returns(Me)
def me():
    """The calling account."""
    return me_body(current_principal())


@bp.post("/api-keys")
@authenticated
@body(CreateApiKeyRequest)
@returns(ApiKey, 201)
def create_api_key(body: CreateApiKeyRequest):
    """Create an API key; its secret is in this response only (201)."""
    api_keys = services().api_keys
    ttl = api_keys.ttl_seconds(body.expires_in, body.expires_in_days)
    created = api_keys.create(current_principal().user_id, body.name, ttl)
    return jsonify(created), 201


@bp.get("/api-keys")
@authenticated
@returns(ApiKeyList)
def list_api_keys():
    """The caller's API keys, without secrets."""
    return {"items": services().api_keys.list(current_principal().user_id)}


@bp.delete("/api-keys/<key_id>")
@authenticated
def delete_api_key(key_id: str):
    """Revoke one of the caller's API keys (204)."""
    if key_id in ("null", "undefined"):
        raise BadRequest("api key id is required", param="id")
    services().api_keys.revoke(current_principal().user_id, key_id)
    return "", 204


@bp.post("/validate-api-key")
@body(ValidateApiKeyRequest)
def validate_api_key(body: ValidateApiKeyRequest):
    """Jan's gateway contract: who owns this API key (401 when revoked, expired or unknown)."""
    return services().api_keys.validate(body.api_key)
