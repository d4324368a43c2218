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
    return {"keys": [public_jwk_for_private_pem(pem)]}


def public_jwk_for_private_pem(pem: str) -> dict:
    return public_jwk(serialization.load_pem_private_key(pem.encode(), password=None).public_key())


# Everything a verifier needs; a private member (d, p, q, dp, dq, qi, oth) or a symmetric key (k) is never copied.
PUBLIC_JWK_FIELDS = ("kty", "use", "alg", "kid", "n", "e")


def public_jwks(document: dict) -> dict:
    """The RSA signing keys of a key set with their public members only, first occurrence of each kid."""
    keys, seen = [], set()
    for entry in document.get("keys") or []:
        if entry.get("kty") != "RSA" or not entry.get("kid") or entry["kid"] in seen or not entry.get("n"):
            continue
        seen.add(entry["kid"])
        keys.append({field: entry[field] for field in PUBLIC_JWK_FIELDS if field in entry})
    return {"keys": keys}


def published_jwks(configured: str, signing_jwk: dict) -> dict:
    """The issuer's public document: the configured verification set (JWKS: current and previous key), public
    members only, and always the key tokens are being signed with."""
    document = public_jwks(json.loads(configured) if configured else {})
    if signing_jwk["kid"] not in {entry["kid"] for entry in document["keys"]}:
        document["keys"].insert(0, signing_jwk)
    return document


def rotated_jwks(new_pem: str, current_pem: str, document: dict) -> dict:
    """The key set after a rotation: the new key, then the current one (its tokens stay verifiable until they
    expire); any older key is dropped. Refuses a set that does not hold the current key: the running verifiers
    would not be using it."""
    current = public_jwk_for_private_pem(current_pem)
    published = public_jwks(document)["keys"]
    if current["kid"] not in {entry["kid"] for entry in published}:
        raise ValueError(f"the key set does not hold the current signing key (kid {current['kid']})")
    return {"keys": [public_jwk_for_private_pem(new_pem), current]}


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
