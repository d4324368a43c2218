"""The issuer's public keys and discovery document (RFC 8615 well-known URIs, served at the root only), so other
services and third parties verify our tokens without the key file."""
from __future__ import annotations

from flask import Blueprint, jsonify, request

from functions.llm.services import services

bp = Blueprint("well_known", __name__, url_prefix="/.well-known")

# Verifiers refetch on an unknown kid; a rotation publishes the next key before signing with it.
MAX_AGE_SECONDS = 300


def _public(body: dict):
    response = jsonify(body)
    response.headers["Cache-Control"] = f"public, max-age={MAX_AGE_SECONDS}"
    return response


@bp.get("/jwks.json")
def jwks():
    """The public keys our access tokens are signed with (current and previous)."""
    return _public(services().jwks)


@bp.get("/openid-configuration")
def openid_configuration():
    """Discovery: our issuer, where its keys are, and how tokens are signed."""
    settings = services().settings
    base = settings.public_base_url.rstrip("/") or request.host_url.rstrip("/")
    return _public({
        "issuer": settings.token_issuer,
        "jwks_uri": f"{base}/.well-known/jwks.json",
        "id_token_signing_alg_values_supported": ["RS256"],
        "subject_types_supported": ["public"],
        "response_types_supported": ["token"],
        "claims_supported": ["iss", "aud", "sub", "sid", "iat", "exp", "jti", "preferred_username", "email", "guest"],
    })
