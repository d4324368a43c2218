"""JWT verification: RS256 only, against our own public JWKS (no network) or a trusted external issuer's JWKS.

Anything else — `alg: none`, HS256 signed with the public key, an unknown kid, a wrong issuer or audience,
an expired token — is rejected before any claim is trusted.

Our issuer signs three kinds of token, told apart by `typ`, each with its own audience: a user's access token
(`typ: access`, audience TOKEN_AUDIENCE, a session id), a delegation token (`typ: delegation`: a service acting
for a user, audience the one function it was minted for, `act.sub` the service) and a service token
(`typ: service`: a service calling as itself, e.g. dispatching a job). A token is accepted only as its own kind,
by the audience it names: a delegation token minted for mcp is refused by llm, and an access token is never a
delegation token.
"""
from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import dataclass

import jwt
from jwt import PyJWK

from shared.errors import Unauthorized
from shared.settings import PlatformSettings

log = logging.getLogger("jan.auth")

ALGORITHMS = ["RS256"]


ACCESS, DELEGATION, SERVICE, EXTERNAL = "access", "delegation", "service", "external"


@dataclass(frozen=True)
class VerifiedToken:
    claims: dict
    issuer: str
    own: bool  # issued by our llm function rather than an external issuer
    kind: str = ACCESS  # access | delegation | service (ours), external (the trusted OIDC issuer's)

    @property
    def actor(self) -> str | None:
        """The service a delegation or service token was minted for."""
        act = self.claims.get("act")
        return act.get("sub") if isinstance(act, dict) else None


def _keys_from_jwks(document: dict) -> dict[str, object]:
    keys = {}
    for entry in document.get("keys", []):
        if entry.get("kty") != "RSA" or "kid" not in entry:
            continue
        if entry.get("alg") not in (None, "RS256") or entry.get("use") not in (None, "sig"):
            continue
        # Public members only: a private one pasted into the set must not make this a signing key.
        public = {field: entry[field] for field in ("kty", "kid", "n", "e") if field in entry}
        keys[entry["kid"]] = PyJWK(public, algorithm="RS256").key
    return keys


class ExternalJwks:
    """The external issuer's key set, fetched on first use and again for an unknown kid (at most every 30 s)."""

    refetch_interval = 30.0

    def __init__(self, url: str, fetch_json):
        self.url = url
        self._fetch_json = fetch_json
        self._keys: dict[str, object] = {}
        self._fetched_at: float | None = None  # never fetched: the first use always fetches
        self._lock = threading.Lock()

    def key(self, kid: str):
        found = self._keys.get(kid)
        if found is not None:
            return found
        with self._lock:
            if kid not in self._keys and (self._fetched_at is None
                                          or time.monotonic() - self._fetched_at >= self.refetch_interval):
                self._fetched_at = time.monotonic()
                try:
                    self._keys = _keys_from_jwks(self._fetch_json(self.url))
                except Exception as exc:  # the issuer being down must be a 401, not a 500
                    log.warning("fetching JWKS from %s failed: %s", self.url, exc)
        return self._keys.get(kid)


class TokenVerifier:
    # Verified tokens are remembered (until they expire) so a client's repeated requests skip the RSA check and
    # the three parses; revocation is still checked per request by the caller (sessions, deleted users).
    cache_size = 4096

    def __init__(self, settings: PlatformSettings, fetch_json=None):
        self._verified: dict[str, VerifiedToken] = {}
        self.own_issuer = settings.token_issuer
        self.own_audience = settings.token_audience
        self.own_keys = _keys_from_jwks(json.loads(settings.jwks)) if settings.jwks else {}
        self.external_issuer = settings.issuer or None
        self.external_audience = settings.audience or None
        self.external_keys = None
        if self.external_issuer and settings.jwks_url:
            if fetch_json is None:
                from shared.outbound import fetch_json as default_fetch
                fetch_json = default_fetch
            self.external_keys = ExternalJwks(settings.jwks_url, fetch_json)
        self.leeway = settings.auth_clock_skew_seconds
        # Delegation and service tokens are accepted only when minted for this function.
        self.service_audience = settings.service_name

    def verify(self, token: str) -> VerifiedToken:
        cached = self._verified.get(token)
        if cached is not None:
            if cached.claims["exp"] + self.leeway > time.time():
                return cached
            self._verified.pop(token, None)
        verified = self._verify(token)
        if len(self._verified) >= self.cache_size:
            self._verified.clear()
        self._verified[token] = verified
        return verified

    def _verify(self, token: str) -> VerifiedToken:
        try:
            header = jwt.get_unverified_header(token)
            unverified = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError:
            raise Unauthorized("invalid token") from None
        if header.get("alg") not in ALGORITHMS:
            raise Unauthorized("invalid token")
        kid = header.get("kid")
        issuer = unverified.get("iss")
        if not isinstance(kid, str) or not isinstance(issuer, str):
            raise Unauthorized("invalid token")
        if issuer == self.own_issuer:
            kind = unverified.get("typ", ACCESS)
            if kind == ACCESS:
                audience = self.own_audience
            elif kind in (DELEGATION, SERVICE):
                audience = self.service_audience
            else:
                raise Unauthorized("invalid token")
            key, own = self.own_keys.get(kid), True
        elif self.external_keys is not None and issuer == self.external_issuer:
            key, audience, own, kind = self.external_keys.key(kid), self.external_audience, False, EXTERNAL
        else:
            raise Unauthorized("invalid token")
        if key is None:
            raise Unauthorized("invalid token")
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=ALGORITHMS,
                issuer=issuer,
                audience=audience,
                leeway=self.leeway,
                options={"require": ["exp", "iss", "sub"], "verify_aud": audience is not None},
            )
        except jwt.ExpiredSignatureError:
            raise Unauthorized("token expired") from None
        except jwt.PyJWTError:
            raise Unauthorized("invalid token") from None
        if kind in (DELEGATION, SERVICE):
            act = claims.get("act")
            if not isinstance(act, dict) or not isinstance(act.get("sub"), str) or not isinstance(claims.get("jti"), str):
                raise Unauthorized("invalid token")
        return VerifiedToken(claims=claims, issuer=issuer, own=own, kind=kind)
