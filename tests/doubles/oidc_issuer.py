"""OidcIssuer: a TEST DOUBLE of an external OpenID Connect issuer (Keycloak).

It is not an identity provider. It is a real HTTP server on 127.0.0.1 with its own RSA key that serves the three
endpoints the llm function talks to, so tests can run the external-issuer mode end to end:

- `GET  /jwks`       its public key set (`jwks_status` set to 503 simulates an outage);
- `GET  /authorize`  the browser step of the authorization code flow: signs in as `identity` at once and
                     redirects (302) to `redirect_uri?code=…&state=…`, binding the code to the PKCE challenge;
- `POST /token`      exchanges that code (form body, client secret as HTTP Basic) and, like a real issuer,
                     refuses a wrong or missing PKCE `code_verifier`, a wrong redirect_uri or client, a reused code.

    with OidcIssuer() as issuer:
        issuer.identity = {"sub": "kc-1", "email": "a@example.com"}
        token = issuer.mint("kc-1", realm_access={"roles": ["admin"]})  # a token for any request
        ...  # settings: ISSUER=issuer.issuer JWKS_URL=issuer.jwks_url OIDC_TOKEN_URL=issuer.token_url …
"""
from __future__ import annotations

import base64
import hashlib
import json
import secrets
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, unquote_plus, urlencode, urlsplit

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

from shared.keys import public_jwk


def pkce_challenge(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()


class OidcIssuer:
    def __init__(self, *, client_id: str = "jan-client", client_secret: str = "double-secret",
                 audience: str = "account"):
        self.client_id = client_id
        self.client_secret = client_secret
        self.audience = audience
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.kid = "double-key-1"
        self.identity: dict = {"sub": "kc-user-1", "email": "kc-user-1@example.com",
                               "preferred_username": "kc-user-1", "email_verified": True}
        self.jwks_status = 200
        self.jwks_requests = 0
        self.token_requests: list[dict] = []  # form bodies received at /token
        # When set, /token answers this JSON once (after its checks passed) instead of freshly minted tokens.
        self.next_token_response: dict | None = None
        self._codes: dict[str, dict] = {}
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        self.base_url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self.issuer = f"{self.base_url}/realms/test"
        self.jwks_url = f"{self.base_url}/jwks"
        self.authorization_url = f"{self.base_url}/authorize"
        self.token_url = f"{self.base_url}/token"
        self._thread = threading.Thread(target=self._server.serve_forever, name="oidc-issuer-double", daemon=True)

    def __enter__(self) -> OidcIssuer:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()

    def mint(self, subject: str | None = "kc-user-1", *, audience: str | None = None, issuer: str | None = None,
             kid: str | None = None, key=None, expires_in: int = 300, **claims) -> str:
        """An RS256 token as this issuer signs them; every part can be overridden to make a bad one."""
        now = int(time.time())
        payload = {"iss": issuer or self.issuer, "aud": audience or self.audience, "iat": now,
                   "exp": now + expires_in, **claims}
        if subject is not None:
            payload["sub"] = subject
        return jwt.encode(payload, key or self.key, algorithm="RS256", headers={"kid": kid or self.kid})

    # --- the endpoints -------------------------------------------------------------------------------------

    def _jwks(self) -> tuple[int, dict]:
        self.jwks_requests += 1
        if self.jwks_status != 200:
            return self.jwks_status, {"error": "unavailable"}
        return 200, {"keys": [{**public_jwk(self.key.public_key()), "kid": self.kid}]}

    def _authorize(self, query: dict) -> tuple[int, dict, str | None]:
        if query.get("client_id") != self.client_id or query.get("response_type") != "code":
            return 400, {"error": "invalid_request"}, None
        if query.get("code_challenge_method") != "S256" or not query.get("code_challenge"):
            return 400, {"error": "invalid_request", "error_description": "PKCE S256 required"}, None
        code = secrets.token_urlsafe(16)
        with self._lock:
            self._codes[code] = {"challenge": query["code_challenge"], "redirect_uri": query["redirect_uri"],
                                 "identity": dict(self.identity)}
        location = f"{query['redirect_uri']}?{urlencode({'code': code, 'state': query.get('state', '')})}"
        return 302, {}, location

    def _token(self, form: dict, authorization: str) -> tuple[int, dict]:
        self.token_requests.append(form)
        client_id, client_secret = form.get("client_id"), form.get("client_secret")
        if authorization.startswith("Basic "):
            user, _, password = base64.b64decode(authorization[6:]).decode().partition(":")
            client_id, client_secret = unquote_plus(user), unquote_plus(password)
        if client_id != self.client_id or (self.client_secret and client_secret != self.client_secret):
            return 401, {"error": "invalid_client"}
        with self._lock:
            grant = self._codes.pop(form.get("code", ""), None)
        if form.get("grant_type") != "authorization_code" or grant is None:
            return 400, {"error": "invalid_grant", "error_description": "unknown or used code"}
        if form.get("redirect_uri") != grant["redirect_uri"]:
            return 400, {"error": "invalid_grant", "error_description": "redirect_uri mismatch"}
        if pkce_challenge(form.get("code_verifier", "")) != grant["challenge"]:
            return 400, {"error": "invalid_grant", "error_description": "PKCE verification failed"}
        if self.next_token_response is not None:
            answer, self.next_token_response = self.next_token_response, None
            return 200, answer
        claims = dict(grant["identity"])
        subject = claims.pop("sub")
        return 200, {
            "access_token": self.mint(subject, azp=self.client_id, **claims),
            "id_token": self.mint(subject, audience=self.client_id, **claims),
            "refresh_token": "double-refresh-" + secrets.token_urlsafe(8),
            "token_type": "Bearer",
            "expires_in": 300,
        }


def _handler(issuer: OidcIssuer):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args) -> None:
            pass

        def _send(self, status: int, body: dict, location: str | None = None) -> None:
            raw = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            if location:
                self.send_header("Location", location)
            self.end_headers()
            self.wfile.write(raw)

        def do_GET(self) -> None:
            url = urlsplit(self.path)
            if url.path == "/jwks":
                self._send(*issuer._jwks())
            elif url.path == "/authorize":
                self._send(*issuer._authorize(dict(parse_qsl(url.query))))
            else:
                self._send(404, {"error": "not_found"})

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            form = dict(parse_qsl(self.rfile.read(length).decode()))
            if urlsplit(self.path).path == "/token":
                self._send(*issuer._token(form, self.headers.get("Authorization", "")))
            else:
                self._send(404, {"error": "not_found"})

    return Handler
