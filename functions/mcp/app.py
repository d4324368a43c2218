"""The mcp function's ASGI app: the SDK's streamable HTTP endpoint (stateless, JSON responses) at `/v1/mcp`
(Jan's path) and `/` (where Kong's stripped `/mcp` route lands), Jan's tool admin routes, health, metrics and
OpenAPI, all behind the shared authentication middleware."""
from __future__ import annotations

import functools
import logging

import anyio.to_thread
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from functions.mcp.arguments import ToolFailure
from functions.mcp.catalog import ToolCatalog, parse_update
from functions.mcp.file_search_tools import file_search_tools
from functions.mcp.search import DESCRIPTION as SEARCH_DESCRIPTION, SCHEMA as SEARCH_SCHEMA, SerperSearch
from functions.mcp.scrape import DESCRIPTION as SCRAPE_DESCRIPTION, SCHEMA as SCRAPE_SCHEMA, Scraper
from functions.mcp.server import ToolSpec, ToolsServer
from functions.mcp.settings import McpSettings
from functions.mcp.write_back import ResultWriter
from shared import sandbox
from shared.audit import actor_of
from shared.auth.asgi import AuthenticationMiddleware, principal_of, request_id_of
from shared.auth.principal import PrincipalResolver
from shared.auth.tokens import TokenVerifier
from shared.protocol import UnstorableText, parse_json_value
from shared.db import Database
from shared.errors import ApiError, BadRequest, Forbidden, error_body

log = logging.getLogger("jan.mcp")

MCP_PATHS = ("/v1/mcp", "/")
# Kong's /mcp/healthz and /mcp/readyz arrive unstripped (see gateway/kong.yml): aliases of the health routes.
HEALTH_ALIASES = ("/mcp/healthz", "/mcp/readyz")
OPEN_PATHS = ("/healthz", "/readyz", *HEALTH_ALIASES, "/version", "/metrics", "/openapi.json")


def build_tools(settings: McpSettings, db: Database) -> list[ToolSpec]:
    """The tools whose backing service is configured (a tool without one is not offered at all)."""
    tools = []
    if settings.search_api_url and settings.search_api_key:
        search = SerperSearch(settings.search_api_url, settings.search_api_key,
                              timeout=settings.search_timeout_seconds, attempts=settings.search_attempts,
                              domain_filter=settings.search_domain_filter)
        tools.append(ToolSpec("google_search", SEARCH_DESCRIPTION, SEARCH_SCHEMA,
                              lambda args, config, principal: search.search(args, config)))
    scraper = Scraper(timeout=settings.scrape_timeout_seconds, max_bytes=settings.scrape_max_bytes,
                      max_redirects=settings.scrape_max_redirects,
                      allowed_hosts=tuple(host.lower() for host in settings.scrape_allowed_hosts))
    tools.append(ToolSpec("scrape", SCRAPE_DESCRIPTION, SCRAPE_SCHEMA,
                          lambda args, config, principal: scraper.scrape(args)))
    if sandbox.python_exec_enabled(settings):
        definition = sandbox.python_exec_tool_schema()
        tools.append(ToolSpec(definition["name"], definition["description"], definition["inputSchema"],
                              lambda args, config, principal: _python_exec(args, settings), check_arguments=False))
    tools += file_search_tools(db, settings)
    return tools


def _python_exec(arguments: dict, settings: McpSettings) -> dict:
    try:
        return sandbox.python_exec(arguments, settings)
    except sandbox.SandboxToolError as exc:
        raise ToolFailure(str(exc)) from None


class _Metrics:
    """Prometheus counters of this process (prometheus_client is a core dependency via the Flask exporter)."""

    def __init__(self):
        from prometheus_client import CollectorRegistry, Counter

        self.registry = CollectorRegistry()
        self.tool_calls = Counter("mcp_tool_calls", "MCP tool calls by tool and outcome", ["tool", "outcome"],
                                  registry=self.registry)

    def record_call(self, tool: str, outcome: str) -> None:
        self.tool_calls.labels(tool=tool, outcome=outcome).inc()

    def render(self) -> Response:
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        return Response(generate_latest(self.registry), media_type=CONTENT_TYPE_LATEST)


def _error(request: Request, exc: ApiError) -> JSONResponse:
    return JSONResponse(error_body(exc.status, exc.message, code=exc.code, param=exc.param,
                                   request_id=request_id_of(request.scope)), status_code=exc.status)


def _admin(request: Request):
    principal = principal_of(request.scope)
    if not principal.is_admin:
        raise Forbidden("admin access required")
    return principal


def _int_query(request: Request, name: str, default: int, minimum: int) -> int:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise BadRequest(f"{name} must be an integer", param=name) from None
    if value < minimum:
        raise BadRequest(f"{name} must be at least {minimum}", param=name)
    return value


async def _bounded_body(request: Request, limit: int) -> bytes:
    """The request body, refused with 413 past MAX_REQUEST_BYTES as the MCP endpoint and the Flask functions do
    (Starlette itself reads any size)."""
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise ApiError("request body too large", status=413)
        chunks.append(chunk)
    return b"".join(chunks)


def rest_routes(catalog: ToolCatalog, db: Database, settings: McpSettings, metrics: _Metrics) -> list[Route]:
    def handler(view):
        @functools.wraps(view)
        async def endpoint(request: Request):
            try:
                return await view(request)
            except ApiError as exc:
                return _error(request, exc)
        return endpoint

    async def list_active(request: Request):
        """Active MCP tools (Jan: GET /v1/mcp-tools)."""
        return JSONResponse({"data": await anyio.to_thread.run_sync(catalog.active)})

    async def get_active(request: Request):
        """One active MCP tool by its key; 404 when inactive or unknown."""
        key = request.path_params["tool_key"]
        return JSONResponse({"data": await anyio.to_thread.run_sync(catalog.active_by_key, key)})

    async def admin_list(request: Request):
        """Admin: MCP tools, filtered by category, is_active and search, with limit and offset."""
        _admin(request)
        query = request.query_params
        is_active = query.get("is_active")
        page = dict(category=query.get("category") or None, search=query.get("search") or None,
                    is_active=None if not is_active else is_active == "true",
                    limit=min(_int_query(request, "limit", 20, 1), 100), offset=_int_query(request, "offset", 0, 0))
        data, total = await anyio.to_thread.run_sync(lambda: catalog.list(**page))
        return JSONResponse({"data": data, "total": total})

    async def admin_get(request: Request):
        """Admin: one MCP tool by public id."""
        _admin(request)
        return JSONResponse({"data": await anyio.to_thread.run_sync(catalog.get, request.path_params["public_id"])})

    async def admin_update(request: Request):
        """Admin: change an MCP tool's description, category, active flag, metadata or disallowed keywords."""
        principal = _admin(request)
        raw = await _bounded_body(request, settings.max_request_bytes)
        try:
            body = parse_json_value(raw)
        except UnstorableText as exc:
            raise BadRequest(str(exc)) from None
        except ValueError:
            raise BadRequest("request body must be a JSON object") from None
        changes = parse_update(body)
        public_id = request.path_params["public_id"]
        if not changes:
            return JSONResponse({"data": await anyio.to_thread.run_sync(catalog.get, public_id)})
        updated = await anyio.to_thread.run_sync(functools.partial(
            catalog.update, public_id, changes, actor_of(principal), request_id=request_id_of(request.scope)))
        return JSONResponse({"data": updated})

    async def healthz(request: Request):
        """Liveness: the process answers; no I/O."""
        return JSONResponse({"status": "ok", "service": "mcp-tools"})

    async def readyz(request: Request):
        """Readiness: the database answers."""
        try:
            await anyio.to_thread.run_sync(db.ping)
        except Exception as exc:
            log.warning("readiness check failed: %s", exc)
            return _error(request, ApiError("database unreachable", status=503, code="database_unreachable"))
        return JSONResponse({"status": "ready", "service": "mcp-tools"})

    async def version(request: Request):
        """Build and environment of this function."""
        return JSONResponse({"service": settings.service_name, "version": settings.version,
                             "environment": settings.environment})

    async def metrics_view(request: Request):
        """Prometheus metrics of this process."""
        return metrics.render()

    routes = [
        Route("/v1/mcp-tools", handler(list_active), methods=["GET"]),
        Route("/v1/mcp-tools/{tool_key}", handler(get_active), methods=["GET"]),
        Route("/v1/admin/mcp-tools", handler(admin_list), methods=["GET"]),
        Route("/v1/admin/mcp-tools/{public_id}", handler(admin_get), methods=["GET"]),
        Route("/v1/admin/mcp-tools/{public_id}", handler(admin_update), methods=["PATCH"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route(HEALTH_ALIASES[0], healthz, methods=["GET"], name="gateway_healthz"),
        Route(HEALTH_ALIASES[1], readyz, methods=["GET"], name="gateway_readyz"),
        Route("/version", version, methods=["GET"], name="mcp_version"),
        Route("/metrics", metrics_view, methods=["GET"], name="prometheus_metrics"),
    ]

    async def openapi(request: Request):
        """This function's OpenAPI document."""
        return JSONResponse(openapi_document(routes, settings))

    routes.append(Route("/openapi.json", openapi, methods=["GET"], name="mcp_openapi"))
    return routes


def openapi_document(routes: list[Route], settings: McpSettings) -> dict:
    paths: dict[str, dict] = {}
    for route in routes:
        summary = (route.endpoint.__doc__ or route.path).strip().splitlines()[0]
        for method in sorted(route.methods - {"HEAD"}):
            paths.setdefault(route.path, {})[method.lower()] = {"summary": summary, "responses": {"200": {
                "description": "OK"}}}
    paths["/v1/mcp"] = {"post": {"summary": "MCP streamable HTTP endpoint (JSON-RPC 2.0: initialize, tools/list, "
                                            "tools/call; stateless, JSON responses)",
                                 "responses": {"200": {"description": "JSON-RPC response"}}}}
    return {"openapi": "3.1.0", "info": {"title": settings.service_name, "version": settings.version},
            "paths": dict(sorted(paths.items()))}


class _DefaultAccept:
    """Jan's callers POST bare JSON-RPC without an Accept header; the SDK would answer 406. Jan's Go handler forces
    the header too."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and scope["method"] == "POST" and scope["path"] in MCP_PATHS:
            headers = [(name, value) for name, value in scope["headers"] if name != b"accept"]
            accept = b", ".join(value for name, value in scope["headers"] if name == b"accept")
            if b"application/json" not in accept:
                accept = b"application/json, text/event-stream"
            scope = {**scope, "headers": [*headers, (b"accept", accept)]}
        await self.app(scope, receive, send)


def create_app(settings: McpSettings):
    from mcp.server.transport_security import TransportSecuritySettings

    db = Database.from_settings(settings)
    resolver = PrincipalResolver(db, TokenVerifier(settings))
    catalog = ToolCatalog(db, settings.tool_config_ttl_seconds)
    metrics = _Metrics()
    server = ToolsServer(build_tools(settings, db), catalog, metrics.record_call, ResultWriter(db))
    app = server.streamable_http_app(
        streamable_http_path=MCP_PATHS[0], stateless_http=True, json_response=True,
        max_request_body_size=settings.max_request_bytes,
        transport_security=TransportSecuritySettings(allowed_hosts=list(settings.mcp_allowed_hosts),
                                                     allowed_origins=list(settings.mcp_allowed_origins)))
    # The SDK's route answers any method; in stateless JSON mode only POST means anything (GET and DELETE would
    # be 405 from the SDK), so both paths are POST routes and other methods get our 405.
    endpoint = app.router.routes[0].endpoint
    app.router.routes[:1] = [Route(path, endpoint=endpoint, methods=["POST"], name="mcp") for path in MCP_PATHS]
    app.router.routes.extend(rest_routes(catalog, db, settings, metrics))
    app.state.catalog = catalog
    app.state.server = server

    async def server_error(request: Request, exc: Exception):
        log.exception("unhandled error")
        return _error(request, ApiError("internal server error", status=500))

    async def http_error(request: Request, exc: HTTPException):
        messages = {404: "not found", 405: "method not allowed"}
        response = _error(request, ApiError(messages.get(exc.status_code, exc.detail), status=exc.status_code))
        response.headers.update(exc.headers or {})
        return response

    app.add_exception_handler(HTTPException, http_error)
    app.add_exception_handler(Exception, server_error)
    # Outermost first: Accept defaulting, then authentication, then Starlette's own stack and the routes.
    app.add_middleware(AuthenticationMiddleware, resolver=resolver, open_paths=OPEN_PATHS)
    app.add_middleware(_DefaultAccept)
    return app
