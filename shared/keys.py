"""Key material: RS256 signing keys, their public JWKS, and the provider-key encryption key.

In a cluster these come from Secrets and ConfigMaps. Only the embedded default (`make run`, tests) generates
them, into its own data folder, through `ensure_dev_keys`.
"""
from __future__ import annotations

import base64
import hashlib
import json
import os
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa


def _b64url_uint(value: int) -> str:
    raw = value.to_bytes((value.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def generate_signing_key_pem() -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


def key_id(public_key: rsa.RSAPublicKey) -> str:
    """A stable kid derived from the public key (RFC 7638-style thumbprint of n and e)."""
    numbers = public_key.public_numbers()
    thumb = json.dumps({"e": _b64url_uint(numbers.e), "kty": "RSA", "n": _b64url_uint(numbers.n)},
                       separators=(",", ":"), sort_keys=True)
    return base64.urlsafe_b64encode(hashlib.sha256(thumb.encode()).digest()).rstrip(b"=").decode()[:16]


def public_jwk(public_key: rsa.RSAPublicKey) -> dict:
    numbers = public_key.public_numbers()
    return {
        "kty": "RSA",
        "use": "sig",
        "alg": "RS256",
        "kid": key_id(public_key),
        "n": _b64url_uint(numbers.n),
        "e": _b64url_uint(numbers.e),
    }


def jwks_for_private_pem(pem: str) -> dict:
    private_key = serialization.load_pem_private_key(pem.encode(), password=None)
    return {"keys": [public_jwk(private_key.public_key())]}


def generate_encryption_key() -> str:
    """A 256-bit AES-GCM key, base64url encoded."""
    return base64.urlsafe_b64encode(os.urandom(32)).decode()


def _write_secret(path: Path, content: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(content)


def ensure_dev_keys(data_dir: Path) -> dict[str, str]:
    """Create the embedded default's keys once under `data_dir`; return the env vars that point at them."""
    data_dir = Path(data_dir)
    signing = data_dir / "token-signing-key.pem"
    jwks = data_dir / "jwks.json"
    encryption = data_dir / "provider-key-encryption.key"
    if not signing.exists():
        _write_secret(signing, generate_signing_key_pem())
    if not jwks.exists():
        jwks.write_text(json.dumps(jwks_for_private_pem(signing.read_text())))
    if not encryption.exists():
        _write_secret(encryption, generate_encryption_key())
    return {
        "TOKEN_SIGNING_KEY_FILE": str(signing.resolve()),
        "JWKS_FILE": str(jwks.resolve()),
        "PROVIDER_KEY_ENCRYPTION_KEY_FILE": str(encryption.resolve()),
    }
