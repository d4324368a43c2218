"""The llm function's app: the shared factory plus this function's blueprints and services."""
from __future__ import annotations

from flask import Flask

from shared.app import create_app as create_platform_app
from functions.llm.auth.routes import bp as auth_bp
from functions.llm.auth.well_known import bp as well_known_bp
from functions.llm.chat.routes import bp as chat_bp
from functions.llm.conversations.routes import bp as conversations_bp
from functions.llm.models.admin_routes import bp as admin_models_bp
from functions.llm.models.routes import bp as models_bp
from functions.llm.projects.routes import bp as projects_bp
from functions.llm.services import build_services
from functions.llm.shares.routes import bp as shares_bp, public_bp as public_shares_bp
from functions.llm.usage.routes import bp as usage_bp
from functions.llm.users.routes import bp as users_bp
from functions.llm.settings import LlmSettings, load_settings

BLUEPRINTS = (auth_bp, models_bp, chat_bp, conversations_bp, admin_models_bp, users_bp, usage_bp, projects_bp,
              shares_bp)
# Root only (not under /llm): the unauthenticated public share read, as in Jan, and the well-known URIs.
ROOT_ONLY_BLUEPRINTS = (public_shares_bp, well_known_bp)


def create_app(settings: LlmSettings | None = None) -> Flask:
    settings = settings or load_settings()
    app = create_platform_app(settings, BLUEPRINTS + ROOT_ONLY_BLUEPRINTS, admin_emails=settings.admin_emails)
    # Jan serves its authenticated routes at the root and again under /llm (Kong strips /llm in a cluster;
    # clients that talk to the function directly use either).
    for blueprint in BLUEPRINTS:
        app.register_blueprint(blueprint, url_prefix="/llm" + blueprint.url_prefix, name=f"llm_{blueprint.name}")
    platform = app.extensions["jan"]
    platform.services["llm"] = build_services(settings, platform.db, platform.principals)
    return app
