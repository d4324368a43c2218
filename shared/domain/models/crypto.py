"""Provider API keys are sent upstream, so they are encrypted at rest (AES-256-GCM), not hashed."""
from __future__ import annotations

import base64
import os

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from shared.errors import ApiError

_VERSION = "v1:"


class SecretBox:
    def __init__(self, key_b64: str):
        self._aead = None
        if key_b64:
            key = base64.urlsafe_b64decode(key_b64 + "=" * (-len(key_b64) % 4))
            if len(key) != 32:
                raise RuntimeError("PROVIDER_KEY_ENCRYPTION_KEY must be 32 bytes, base64url encoded")
            self._aead = AESGCM(key)

    def _require(self) -> AESGCM:
        if self._aead is None:
            raise ApiError("provider key encryption is not configured (PROVIDER_KEY_ENCRYPTION_KEY)", status=503)
        return self._aead

    def encrypt(self, plaintext: str) -> str:
        nonce = os.urandom(12)
        sealed = self._require().encrypt(nonce, plaintext.encode(), b"provider-api-key")
        return _VERSION + base64.b64encode(nonce + sealed).decode()

    def decrypt(self, token: str) -> str:
        raw = base64.b64decode(token[len(_VERSION):])
        return self._require().decrypt(raw[:12], raw[12:], b"provider-api-key").decode()


def key_hint(api_key: str) -> str:
    return f"…{api_key[-4:]}" if len(api_key) >= 8 else "…"
