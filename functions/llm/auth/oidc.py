"""Jan's OAuth login through the external issuer (Keycloak): the authorization code flow with PKCE (S256).

`GET /auth/login?redirect_url=` stores the state, the PKCE verifier and the client's redirect in `oauth_states`
for ten minutes, so whichever pod receives `/auth/callback` can finish the flow. The callback exchanges the code at
the issuer's token endpoint, verifies the issuer's token exactly as a request's bearer token is verified, upserts
the user by issuer+subject and redirects to the client with our own tokens in the URL fragment. Every callback
answers with a redirect: failures land on the client's page as `?error=…&error_description=…`.
"""
from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import logging
import re
import secrets
from urllib.parse import quote_plus, urlencode, urlsplit, urlunsplit

import urllib3
from sqlalchemy import delete, insert

from shared.times import utcnow as _now
from shared.auth.principal import PrincipalResolver
from shared.db import Database
from shared.errors import BadRequest, NotFound, Unauthorized
from shared.outbound import send
from shared.schema import oauth_states
from functions.llm.auth.sessions import SessionService
from functions.llm.settings import LlmSettings

log = logging.getLogger("jan.auth.oidc")

STATE_TTL = dt.timedelta(minutes=10)
SCOPE = "openid profile email"
MAX_REDIRECT_URL_LENGTH = 2048
_ERROR_CODE = re.compile(r"^[a-z_]{1,64}$")


class ExchangeFailed(Exception):
    """The issuer did not turn the code into a token we trust."""


def pkce_challenge(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()


def _with_query(url: str, **params: str) -> str:
    parts = urlsplit(url)
    query = "&".join(filter(None, [parts.query, urlencode(params)]))
    return urlunsplit((parts.scheme, parts.netloc, parts.path or "/", query, parts.fragment))


def _with_fragment(url: str, **params) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, parts.path or "/", parts.query, urlencode(params)))


def allowed_redirect(url: str, prefixes: tuple[str, ...]) -> bool:
    """The URL starts with an allowed prefix *and* names that prefix's host: `http://localhost.evil.example` and
    `http://localhost:80@evil.example` start with `http://localhost` but lead elsewhere."""
    if len(url) > MAX_REDIRECT_URL_LENGTH:
        return False
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    if "@" in parts.netloc:
        return False
    for prefix in prefixes:
        allowed = urlsplit(prefix)
        if url.startswith(prefix) and parts.scheme == allowed.scheme and parts.hostname == allowed.hostname:
            return True
    return False


class OAuthLogin:
    def __init__(self, db: Database, settings: LlmSettings, principals: PrincipalResolver, sessions: SessionService):
        self.db = db
        self.principals = principals
        self.sessions = sessions
        self.issuer = settings.issuer
        self.authorization_url = settings.oidc_authorization_url
        self.token_url = settings.oidc_token_url
        self.client_id = settings.oidc_client_id
        self.client_secret = settings.oidc_client_secret
        self.redirect_uri = settings.oauth_redirect_uri
        self.allowed_prefixes = settings.oauth_allowed_redirect_prefixes
        self.timeout = settings.outbound_timeout_seconds
        self.configured = bool(self.issuer and settings.jwks_url and self.authorization_url and self.token_url
                               and self.client_id and self.redirect_uri and self.allowed_prefixes)

    def _require_configured(self) -> None:
        if not self.configured:
            raise NotFound("OAuth login is not available: no external identity provider is configured "
                           "(use POST /auth/login with email and password, or /auth/guest-login)")

    def begin(self, redirect_url: str | None) -> dict:
        """Store a fresh state and PKCE verifier; return where the client sends the browser."""
        self._require_configured()
        if not redirect_url:
            raise BadRequest("redirect_url is required", param="redirect_url")
        if not allowed_redirect(redirect_url, self.allowed_prefixes):
            raise BadRequest("redirect_url is not an allowed redirect", param="redirect_url")
        state = secrets.token_urlsafe(32)
        verifier = secrets.token_urlsafe(64)
        now = _now()
        with self.db.transaction() as conn:
            conn.execute(delete(oauth_states).where(oauth_states.c.expires_at <= now))
            conn.execute(insert(oauth_states).values(state=state, code_verifier=verifier, redirect_url=redirect_url,
                                                     expires_at=now + STATE_TTL))
        query = urlencode({"client_id": self.client_id, "redirect_uri": self.redirect_uri, "response_type": "code",
                           "scope": SCOPE, "state": state, "code_challenge": pkce_challenge(verifier),
                           "code_challenge_method": "S256"})
        separator = "&" if "?" in self.authorization_url else "?"
        return {"authorization_url": f"{self.authorization_url}{separator}{query}", "state": state}

    def finish(self, args) -> str:
        """The URL the callback redirects to: our tokens in the fragment, or an error in the query."""
        self._require_configured()
        with self.db.transaction() as conn:  # a state is good for one callback only
            flow = conn.execute(delete(oauth_states).where(oauth_states.c.state == (args.get("state") or ""))
                                .returning(oauth_states.c.code_verifier, oauth_states.c.redirect_url,
                                           oauth_states.c.expires_at)).first()
        if flow is None:
            # No stored redirect to go back to: the first allowed prefix is the landing page.
            return _with_query(self.allowed_prefixes[0], error="invalid_state",
                               error_description="unknown or already used login state")
        if flow.expires_at <= _now():
            return _with_query(flow.redirect_url, error="invalid_state", error_description="the login took too long")
        if args.get("error"):
            code = args["error"] if _ERROR_CODE.match(args["error"]) else "access_denied"
            return _with_query(flow.redirect_url, error=code,
                               error_description=(args.get("error_description") or "the login was refused")[:200])
        if not args.get("code"):
            return _with_query(flow.redirect_url, error="invalid_request", error_description="code is required")
        try:
            claims = self._exchange(args["code"], flow.code_verifier)
            user = self.principals.external_user(self.issuer, claims)
        except ExchangeFailed as exc:
            log.warning("OAuth token exchange failed: %s", exc)
            return _with_query(flow.redirect_url, error="token_exchange_failed", error_description=str(exc))
        except Unauthorized:  # the account was deleted
            return _with_query(flow.redirect_url, error="access_denied",
                               error_description="this account is no longer available")
        with self.db.transaction() as conn:
            pair = self.sessions.start(conn, user)
        return _with_fragment(flow.redirect_url, access_token=pair.access_token, refresh_token=pair.refresh_token,
                              expires_in=pair.expires_in, token_type="Bearer")

    def _exchange(self, code: str, verifier: str) -> dict:
        """Trade the code (with the PKCE verifier) for the issuer's tokens; return the claims of one we verified."""
        form = {"grant_type": "authorization_code", "code": code, "redirect_uri": self.redirect_uri,
                "client_id": self.client_id, "code_verifier": verifier}
        headers = {"Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json"}
        if self.client_secret:  # client_secret_basic (RFC 6749 §2.3.1): both parts form-encoded first
            credentials = f"{quote_plus(self.client_id)}:{quote_plus(self.client_secret)}"
            headers["Authorization"] = "Basic " + base64.b64encode(credentials.encode()).decode()
        try:
            response = send("POST", self.token_url, body=urlencode(form).encode(), headers=headers,
                            connect_timeout=self.timeout, read_timeout=self.timeout)
        except urllib3.exceptions.HTTPError as exc:
            raise ExchangeFailed(f"the issuer's token endpoint could not be reached ({type(exc).__name__})") from None
        if response.status != 200:
            raise ExchangeFailed(f"the issuer's token endpoint answered {response.status}")
        try:
            document = json.loads(response.data)
        except ValueError:
            raise ExchangeFailed("the issuer's token endpoint did not answer JSON") from None
        for name in ("access_token", "id_token"):
            token = document.get(name) if isinstance(document, dict) else None
            if not isinstance(token, str):
                continue
            try:
                verified = self.principals.verifier.verify(token)
            except Unauthorized:
                continue
            if not verified.own and verified.issuer == self.issuer:
                return verified.claims
        raise ExchangeFailed("the issuer's tokens could not be verified")
