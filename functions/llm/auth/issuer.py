"""Signing our tokens (RS256): users' access tokens, and the short-lived delegation and service tokens other
functions present to each other. Every function verifies them with the public JWKS alone (shared.auth.tokens)."""
from __future__ import annotations

import time
import uuid

import jwt
from cryptography.hazmat.primitives import serialization

from shared.keys import key_id, public_jwk
from functions.llm.settings import LlmSettings


class TokenIssuer:
    def __init__(self, settings: LlmSettings):
        if not settings.token_signing_key:
            raise RuntimeError("TOKEN_SIGNING_KEY (or TOKEN_SIGNING_KEY_FILE) is required by the llm function")
        self._private_key = serialization.load_pem_private_key(settings.token_signing_key.encode(), password=None)
        self._kid = key_id(self._private_key.public_key())
        self.public_jwk = public_jwk(self._private_key.public_key())
        self.issuer = settings.token_issuer
        self.audience = settings.token_audience
        self.ttl = settings.access_token_ttl_seconds
        self.delegation_ttl = settings.delegation_token_ttl_seconds

    def access_token(self, *, subject: str, session_id: str, username: str | None, email: str | None,
                     role: str) -> str:
        now = int(time.time())
        claims = {
            "iss": self.issuer,
            "aud": self.audience,
            "sub": subject,
            "sid": session_id,
            "iat": now,
            "exp": now + self.ttl,
            "jti": str(uuid.uuid4()),
            "typ": "access",
            "preferred_username": username,
            "guest": role == "guest",
        }
        if email:
            claims["email"] = email
        return jwt.encode(claims, self._private_key, algorithm="RS256", headers={"kid": self._kid})

    def delegation_token(self, *, user_public_id: str, actor: str, audience: str) -> str:
        """`actor` (a service) acting for the user at `audience` (one function) for a few minutes."""
        return self._service_claims(subject=user_public_id, actor=actor, audience=audience, kind="delegation")

    def service_token(self, *, actor: str, audience: str) -> str:
        """`actor` calling `audience` as itself, for no user (job dispatch)."""
        return self._service_claims(subject=actor, actor=actor, audience=audience, kind="service")

    def _service_claims(self, *, subject: str, actor: str, audience: str, kind: str) -> str:
        now = int(time.time())
        claims = {"iss": self.issuer, "aud": audience, "sub": subject, "act": {"sub": actor}, "iat": now,
                  "exp": now + self.delegation_ttl, "jti": str(uuid.uuid4()), "typ": kind}
        return jwt.encode(claims, self._private_key, algorithm="RS256", headers={"kid": self._kid})
