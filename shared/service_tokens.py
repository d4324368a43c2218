"""Tokens this function presents when it calls another: delegation tokens (acting for a user) and service tokens
(acting as itself, e.g. dispatching a job), minted by the llm issuer and cached until shortly before they expire.

Outside the llm function they are asked for over HTTP (`POST <TOKEN_ISSUER_URL>/internal/delegation-tokens`,
authenticated with this function's SERVICE_CREDENTIAL); the llm function mints them in process.
"""
from __future__ import annotations

import json
import threading
import time
from typing import Callable

from shared.errors import UpstreamError
from shared.settings import PlatformSettings

# (audience, user public id or None for a service token) -> (token, lifetime in seconds)
Mint = Callable[[str, "str | None"], "tuple[str, int]"]
# A cached token is replaced this long before it expires, so a call never starts with a token about to lapse.
REFRESH_MARGIN_SECONDS = 30.0


class ServiceTokens:
    def __init__(self, mint: Mint):
        self._mint = mint
        self._cache: dict[tuple[str, str | None], tuple[str, float]] = {}
        self._lock = threading.Lock()

    def for_user(self, audience: str, user_public_id: str) -> str:
        """A delegation token: this service acting for the user at `audience`."""
        return self._token(audience, user_public_id)

    def as_service(self, audience: str) -> str:
        """A service token: this service calling `audience` as itself."""
        return self._token(audience, None)

    def _token(self, audience: str, user_public_id: str | None) -> str:
        key = (audience, user_public_id)
        cached = self._cache.get(key)
        if cached is not None and cached[1] > time.monotonic():
            return cached[0]
        token, lifetime = self._mint(audience, user_public_id)
        with self._lock:
            if len(self._cache) >= 1024:
                self._cache.clear()
            self._cache[key] = (token, time.monotonic() + max(lifetime - REFRESH_MARGIN_SECONDS, 0.0))
        return token


def issuer_mint(settings: PlatformSettings) -> Mint:
    """Ask the llm issuer over HTTP, presenting this function's service credential."""
    if not settings.service_credential:
        raise RuntimeError("SERVICE_CREDENTIAL is required to obtain delegation or service tokens")
    url = settings.token_issuer_url.rstrip("/") + "/internal/delegation-tokens"

    def mint(audience: str, user_public_id: str | None) -> tuple[str, int]:
        from shared.outbound import send

        body = {"audience": audience}
        if user_public_id is not None:
            body["user_id"] = user_public_id
        try:
            response = send("POST", url, body=json.dumps(body).encode(),
                            headers={"Authorization": f"Bearer {settings.service_credential}",
                                     "Content-Type": "application/json"},
                            read_timeout=settings.outbound_timeout_seconds)
        except Exception as error:
            raise UpstreamError(f"the token issuer could not be reached ({type(error).__name__})") from None
        if response.status != 200:
            raise UpstreamError(f"the token issuer answered {response.status}")
        document = json.loads(response.data)
        return document["access_token"], int(document["expires_in"])

    return mint
