"""The llm function's app: the shared factory plus this function's blueprints and services."""
from __future__ import annotations

from flask import Flask

from shared.app import create_app as create_platform_app
from shared.audit_routes import bp as audit_logs_bp
from shared.jobs import JobRegistry
from shared.jobs_routes import bp as jobs_bp, install_jobs
from functions.llm.auth.internal_routes import bp as internal_auth_bp
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
              shares_bp, audit_logs_bp)
# Root only (not under /llm): the unauthenticated public share read, as in Jan, the well-known URIs, and the
# internal routes other functions call (token minting, job runs), which Kong does not route.
ROOT_ONLY_BLUEPRINTS = (public_shares_bp, well_known_bp, internal_auth_bp, jobs_bp)


def create_app(settings: LlmSettings | None = None) -> Flask:
    settings = settings or load_settings()
    app = create_platform_app(settings, BLUEPRINTS + ROOT_ONLY_BLUEPRINTS, admin_emails=settings.admin_emails)
    # Jan serves its authenticated routes at the root and again under /llm (Kong strips /llm in a cluster;
    # clients that talk to the function directly use either).
    for blueprint in BLUEPRINTS:
        app.register_blueprint(blueprint, url_prefix="/llm" + blueprint.url_prefix, name=f"llm_{blueprint.name}")
    platform = app.extensions["jan"]
    platform.services["llm"] = build_services(settings, platform.db, platform.principals)
    install_jobs(app, JobRegistry("llm"))
    return app
