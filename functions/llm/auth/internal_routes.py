"""Internal routes of the issuer, for other functions only (Kong does not route /internal)."""
from __future__ import annotations

import functools

from flask import Blueprint, request

from shared.protocol.flask import body
from functions.llm.auth.protocol import DelegationTokenRequest
from functions.llm.services import services

bp = Blueprint("internal_auth", __name__, url_prefix="/internal")


def calling_service(view):
    """Authenticate the calling service by its credential before anything else is read; passes `caller=`."""
    @functools.wraps(view)
    def wrapper(*args, **kwargs):
        scheme, _, credential = request.headers.get("Authorization", "").partition(" ")
        kwargs["caller"] = services().delegation.authenticate(
            credential.strip() if scheme.lower() == "bearer" else None)
        return view(*args, **kwargs)

    return wrapper


@bp.post("/delegation-tokens")
@calling_service
@body(DelegationTokenRequest)
def mint_delegation_token(caller: str, body: DelegationTokenRequest):
    """A short-lived delegation token (with `user_id`) or service token (without) for the calling service."""
    token, lifetime = services().delegation.mint(caller, body.audience, body.user_id)
    return {"access_token": token, "token_type": "Bearer", "expires_in": lifetime, "audience": body.audience}
