"""Public identifiers: prefixed and random, never a sequential database integer (Jan's formats)."""
from __future__ import annotations

import os
import secrets
import time
import uuid

_BASE36 = "0123456789abcdefghijklmnopqrstuvwxyz"
_BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_CROCKFORD = "0123456789abcdefghjkmnpqrstvwxyz"


def _random_string(alphabet: str, length: int) -> str:
    return "".join(secrets.choice(alphabet) for _ in range(length))


def public_id(prefix: str, length: int = 16) -> str:
    """`conv_`, `msg_`, `proj_`, `prov_`, `pmdl_` ids: prefix + 16 chars of [0-9a-z]."""
    return f"{prefix}_{_random_string(_BASE36, length)}"


def share_id() -> str:
    return f"shr_{_random_string(_BASE62, 16)}"


def share_slug() -> str:
    return _random_string(_BASE62, 22)


def user_id() -> str:
    """Users are identified by a UUID, as Keycloak subjects are in Jan."""
    return str(uuid.uuid4())


def media_id() -> str:
    """`jan_` + lower-case ULID: 48-bit millisecond time + 80 random bits, Crockford base32."""
    value = (int(time.time() * 1000) << 80) | int.from_bytes(os.urandom(10), "big")
    chars = []
    for _ in range(26):
        chars.append(_CROCKFORD[value & 31])
        value >>= 5
    return "jan_" + "".join(reversed(chars))
