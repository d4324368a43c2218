"""The app factory: every function gets the same health, version, metrics, OpenAPI, errors, request ids,
body limits, CORS and authentication wiring, and adds only its own blueprints."""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Iterable

from flask import Blueprint, Flask, current_app, request

from shared.auth.principal import PrincipalResolver
from shared.auth.tokens import TokenVerifier
from shared.db import Database
from shared.errors import BadRequest
from shared.protocol.flask import error_response, flask_openapi_document, register_error_handlers
from shared.settings import PlatformSettings
from shared.telemetry import configure_logging, install_metrics, install_request_context, install_tracing

log = logging.getLogger("jan.app")


@dataclass
class Platform:
    """Per-process platform objects, reachable from any handler as `platform()`."""

    settings: PlatformSettings
    db: Database
    principals: PrincipalResolver
    services: dict = field(default_factory=dict)


def platform() -> Platform:
    return current_app.extensions["jan"]


def _health_blueprint() -> Blueprint:
    health = Blueprint("health", __name__)

    @health.get("/healthz")
    def healthz():
        """Liveness: the process answers; no I/O."""
        return {"status": "ok"}

    @health.get("/readyz")
    def readyz():
        """Readiness: the database answers."""
        try:
            platform().db.ping()
        except Exception as exc:
            log.warning("readiness check failed: %s", exc)
            return error_response(503, "database unreachable", code="database_unreachable")
        return {"status": "ready"}

    @health.get("/version")
    def version():
        """Build and environment of this function."""
        settings = platform().settings
        return {"service": settings.service_name, "version": settings.version, "environment": settings.environment}

    @health.get("/openapi.json")
    def openapi():
        """This function's OpenAPI document, generated from its routes."""
        return openapi_document(current_app)

    return health


def openapi_document(app: Flask) -> dict:
    settings = app.extensions["jan"].settings
    return flask_openapi_document(app, title=f"Jan Server ({settings.service_name})", version=settings.version)


def _install_cors(app: Flask, origins: tuple[str, ...]) -> None:
    if not origins:
        return
    listed = set(origins) - {"*"}
    any_origin = "*" in origins

    def _granted() -> tuple[str | None, bool]:
        """(Allow-Origin, with credentials): a listed origin is echoed with credentials; with `*`, any other
        origin gets `*` and never credentials (echoing it would let every site read credentialed responses)."""
        origin = request.headers.get("Origin")
        if origin and origin in listed:
            return origin, True
        if origin and any_origin:
            return "*", False
        return None, False

    @app.before_request
    def _preflight():
        if request.method == "OPTIONS" and request.headers.get("Access-Control-Request-Method"):
            return app.make_default_options_response()

    @app.after_request
    def _cors_headers(response):
        origin, credentials = _granted()
        if origin:
            response.headers["Access-Control-Allow-Origin"] = origin
            if credentials:
                response.headers["Access-Control-Allow-Credentials"] = "true"
            response.headers["Access-Control-Expose-Headers"] = "X-Request-Id, X-Auth-Method, X-Principal-Id, X-User-ID"
            response.headers["Vary"] = "Origin"
            if request.method == "OPTIONS":
                response.headers["Access-Control-Allow-Methods"] = "GET, POST, PUT, PATCH, DELETE, OPTIONS, HEAD"
                response.headers["Access-Control-Allow-Headers"] = request.headers.get(
                    "Access-Control-Request-Headers", "Authorization, Content-Type, X-API-Key")
                response.headers["Access-Control-Max-Age"] = "600"
        return response


def _reject_nul_in_url(app: Flask) -> None:
    """PostgreSQL text cannot hold NUL: an id or query value carrying one is bad input (400), not a 500."""

    @app.before_request
    def _no_nul():
        if "\x00" in request.path or b"%00" in request.query_string:
            raise BadRequest("the request URL must not contain NUL characters")


def create_app(settings: PlatformSettings, blueprints: Iterable[Blueprint], *, admin_emails: tuple[str, ...] = (),
               services: dict | None = None) -> Flask:
    configure_logging(settings)
    # No function serves static files (and a name that resolves to some folder must not grow a /static route).
    app = Flask(settings.service_name, static_folder=None)
    app.config["MAX_CONTENT_LENGTH"] = settings.max_request_bytes
    app.json.sort_keys = False
    app.json.compact = True
    app.url_map.strict_slashes = False

    db = Database.from_settings(settings)
    app.extensions["jan"] = Platform(
        settings=settings,
        db=db,
        principals=PrincipalResolver(db, TokenVerifier(settings), admin_emails),
        services=services or {},
    )
    install_request_context(app)
    install_tracing(app, settings)
    _install_cors(app, settings.cors_origins)
    _reject_nul_in_url(app)
    register_error_handlers(app)
    app.register_blueprint(_health_blueprint())
    for blueprint in blueprints:
        app.register_blueprint(blueprint)
    install_metrics(app, settings.service_name)
    return app
