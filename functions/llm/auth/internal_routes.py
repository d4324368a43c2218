"""Internal routes of the issuer, for other functions only (Kong does not route /internal)."""
from __future__ import annotations

from flask import Blueprint, request

from shared.body import json_object
from functions.llm.services import services

bp = Blueprint("internal_auth", __name__, url_prefix="/internal")


@bp.post("/delegation-tokens")
def mint_delegation_token():
    """A short-lived delegation token (with `user_id`) or service token (without) for the calling service."""
    scheme, _, credential = request.headers.get("Authorization", "").partition(" ")
    delegation = services().delegation
    caller = delegation.authenticate(credential.strip() if scheme.lower() == "bearer" else None)
    body = json_object()
    token, lifetime = delegation.mint(caller, body.get("audience"), body.get("user_id"))
    return {"access_token": token, "token_type": "Bearer", "expires_in": lifetime, "audience": body["audience"]}
