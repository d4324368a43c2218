"""Realtime session routes (Jan's /v1/realtime shapes and status codes; another user's session is 404)."""
from __future__ import annotations

from flask import Blueprint, current_app

from shared.auth import authenticated, current_principal
from shared.errors import NotFound
from shared.pagination import list_body
from functions.realtime.service import SessionService

bp = Blueprint("realtime", __name__, url_prefix="/v1/realtime")


def sessions() -> SessionService:
    return current_app.extensions["jan"].services["realtime"]


@bp.post("/sessions")
@authenticated
def create_session():
    """Create a session: a LiveKit room id and a token to join it (`client_secret`, shown only here).
    The request body is ignored, as in Jan."""
    principal = current_principal()
    return sessions().create(principal.user_id, principal.public_id), 201


@bp.get("/sessions")
@authenticated
def list_sessions():
    """The caller's live sessions, newest first (no client secrets)."""
    principal = current_principal()
    return list_body(sessions().list(principal.user_id, principal.public_id), has_more=False)


@bp.get("/sessions/<session_id>")
@authenticated
def get_session(session_id: str):
    """One of the caller's sessions, with its `status` (`created` or `connected`)."""
    principal = current_principal()
    return sessions().get(principal.user_id, principal.public_id, session_id)


@bp.delete("/sessions/<session_id>")
@authenticated
def delete_session(session_id: str):
    """End a session and remove its LiveKit room."""
    return sessions().delete(current_principal().user_id, session_id)


@bp.route("/client_secrets", methods=["GET", "POST"])
def client_secrets():
    """Not offered: OpenAI's GA Realtime API is not served here; use POST /v1/realtime/sessions (LiveKit)."""
    raise NotFound("/v1/realtime/client_secrets is not offered: this server hands out LiveKit sessions; "
                   "use POST /v1/realtime/sessions", code="unsupported_endpoint")
