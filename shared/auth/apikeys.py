"""API key format and hashing. Keys are stored only as their SHA-256 hex digest."""
from __future__ import annotations

import hashlib
import secrets

PREFIX = "sk_live"


def generate_api_key() -> str:
    return f"{PREFIX}_{secrets.token_hex(24)}"


def hash_api_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def looks_like_api_key(value: str) -> bool:
    return value.startswith("sk_")
