"""Usage reports (routes Jan lists but never built): the caller's totals and days, a project's totals, and the
admin's view over every user. Shapes are documented in docs/api.md ("Usage")."""
from __future__ import annotations

from flask import Blueprint, request

from shared.auth import admin_required, authenticated, current_principal
from shared.protocol.flask import offset_params
from functions.llm.services import services
from functions.llm.usage.queries import parse_window

bp = Blueprint("usage", __name__, url_prefix="/v1")

MAX_ADMIN_LIMIT = 1000


@bp.get("/usage/me")
@authenticated
def my_usage():
    """The caller's requests and tokens in a time window (`from`, `to`; default the last 30 days), by model."""
    window = parse_window(request.args)
    principal = current_principal()
    return services().usage_queries.for_user(principal.user_id, principal.public_id, window)


@bp.get("/usage/me/daily")
@authenticated
def my_daily_usage():
    """The caller's usage per UTC day (days with usage only), each with its by-model split."""
    window = parse_window(request.args)
    return services().usage_queries.daily_for_user(current_principal().user_id, window)


@bp.get("/usage/projects/<project_id>")
@authenticated
def project_usage(project_id: str):
    """Usage of the caller's requests made in one of the caller's projects (404 for anyone else's)."""
    window = parse_window(request.args)
    return services().usage_queries.for_project(current_principal().user_id, project_id, window)


@bp.get("/admin/usage")
@admin_required
def admin_usage():
    """Every user's usage (busiest first, `limit`/`offset`), with totals and a split by model."""
    window = parse_window(request.args)
    limit, offset = offset_params(max_limit=MAX_ADMIN_LIMIT)
    return services().usage_queries.for_everyone(window, limit, offset)
