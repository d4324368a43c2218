"""/v1/users/me: the caller's account, settings and preferences (Jan §2.3), export and deletion."""
from __future__ import annotations

from flask import Blueprint, Response, jsonify

from shared.auth import authenticated, current_principal
from shared.protocol.flask import body, returns
from functions.llm.auth.accounts import me_body
from functions.llm.auth.routes import COOKIE_SAMESITE, REFRESH_COOKIE
from functions.llm.auth.protocol import Me
from functions.llm.services import services
from functions.llm.users.protocol import UpdatePreferencesRequest, UpdateSettingsRequest
from functions.llm.users.user_settings import SettingsPatch, validate_preferences

bp = Blueprint("users", __name__, url_prefix="/v1/users")


@bp.get("/me")
@authenticated
@returns(Me)
def me():
    """The calling account (the same body as /auth/me)."""
    return me_body(current_principal())


@bp.get("/me/settings")
@authenticated
def get_settings():
    """The caller's settings, created with Jan's defaults on first use."""
    principal = current_principal()
    return services().user_settings.get(principal.user_id, principal.public_id)


@bp.patch("/me/settings")
@authenticated
@body(UpdateSettingsRequest)
def update_settings(body: UpdateSettingsRequest):
    """Replace the settings objects sent; merge `preferences` key by key."""
    patch = SettingsPatch(body.raw)
    principal = current_principal()
    return services().user_settings.update(principal.user_id, principal.public_id, patch)


@bp.get("/me/settings/preferences")
@authenticated
def get_preferences():
    """The caller's preferences: `{"preferences": {…}}`."""
    return services().user_settings.get_preferences(current_principal().user_id)


@bp.patch("/me/settings/preferences")
@authenticated
@body(UpdatePreferencesRequest)
def update_preferences(body: UpdatePreferencesRequest):
    """Merge `{"preferences": {…}}` into the stored preferences key by key."""
    patch = validate_preferences(body.preferences)
    return services().user_settings.update_preferences(current_principal().user_id, patch)


@bp.get("/me/export")
@authenticated
def export():
    """Everything the caller owns as one JSON document, streamed as a download (jan-export.json)."""
    principal = current_principal()
    account = services().account
    head = account.export_head(principal)
    response = Response(account.export_stream(principal.user_id, head), mimetype="application/json")
    response.headers["Content-Disposition"] = "attachment; filename=jan-export.json"
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


@bp.delete("/me")
@authenticated
def delete_me():
    """Delete the calling account and everything it owns; its tokens and API keys stop working at once."""
    response = jsonify(services().account.delete(current_principal()))
    response.delete_cookie(REFRESH_COOKIE, path="/", secure=True, httponly=True, samesite=COOKIE_SAMESITE)
    return response
