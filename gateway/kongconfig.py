"""Reads a Kong DB-less declarative file (`_format_version: "3.0"`) into the dev gateway's route table.

Route features the dev gateway does not emulate (hosts, headers, snis, regex paths, path_handling v1, plugins other
than cors / request-size-limiting / request-termination / rate-limiting) are rejected at start, so local routing
never silently differs from Kong's.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from urllib.parse import urlsplit

import yaml

from gateway.plugins import NOT_EMULATED, PluginConfigError, build_route_plugins
from gateway.routing import Route

FORMAT_VERSION = "3.0"
KONG_DEFAULT_TIMEOUT_MS = 60000
_UNSUPPORTED_MATCH_FIELDS = ("hosts", "headers", "snis", "sources", "destinations")
# Kong 3.x entity fields: anything else is a typo that Kong (and decK) would refuse.
_SERVICE_FIELDS = frozenset({
    "id", "name", "url", "protocol", "host", "port", "path", "retries", "connect_timeout", "write_timeout",
    "read_timeout", "tags", "client_certificate", "tls_verify", "tls_verify_depth", "ca_certificates", "enabled",
    "routes", "plugins"})
_ROUTE_FIELDS = frozenset({
    "id", "name", "protocols", "methods", "hosts", "paths", "headers", "https_redirect_status_code",
    "regex_priority", "strip_path", "path_handling", "preserve_host", "request_buffering", "response_buffering",
    "snis", "sources", "destinations", "tags", "service", "plugins"})
_PLUGIN_FIELDS = frozenset({
    "id", "name", "instance_name", "config", "enabled", "protocols", "tags", "route", "service", "consumer",
    "ordering"})


class ConfigError(ValueError):
    pass


@dataclass(frozen=True)
class Service:
    name: str
    path: str | None
    connect_timeout: float
    read_timeout: float


@dataclass(frozen=True)
class GatewayConfig:
    services: dict[str, Service]
    routes: list[Route]
    not_emulated_plugins: frozenset[str]


def load(path: str | Path) -> GatewayConfig:
    with open(path, encoding="utf-8") as file:
        document = yaml.safe_load(file)
    return parse(document)


def parse(document: object) -> GatewayConfig:
    if not isinstance(document, dict):
        raise ConfigError("a Kong declarative config is a mapping")
    if document.get("_format_version") != FORMAT_VERSION:
        raise ConfigError(f"_format_version must be {FORMAT_VERSION!r}, not {document.get('_format_version')!r}")

    services: dict[str, Service] = {}
    raw_routes: list[tuple[dict, str]] = []
    scoped = _PluginScopes()
    for raw_service in document.get("services") or []:
        service = _service(raw_service)
        if service.name in services:
            raise ConfigError(f"service {service.name!r} is defined twice")
        services[service.name] = service
        for plugin in raw_service.get("plugins") or []:
            scoped.add(plugin, service=service.name)
        raw_routes += [(_check_fields("route", route, _ROUTE_FIELDS), service.name)
                       for route in raw_service.get("routes") or []]
    for route in document.get("routes") or []:
        service_name = _name_of(_check_fields("route", route, _ROUTE_FIELDS).get("service"))
        if service_name is None:
            raise ConfigError(f"route {route.get('name')!r} names no service")
        raw_routes.append((route, service_name))
    for plugin in document.get("plugins") or []:
        scoped.add(plugin, service=_name_of(plugin.get("service")), route=_name_of(plugin.get("route")))

    routes: list[Route] = []
    for index, (raw_route, service_name) in enumerate(raw_routes):
        if service_name not in services:
            raise ConfigError(f"route {raw_route.get('name')!r} refers to unknown service {service_name!r}")
        name = raw_route.get("name") or f"{service_name}-route-{index}"
        if any(route.name == name for route in routes):
            raise ConfigError(f"route {name!r} is defined twice")
        for plugin in raw_route.get("plugins") or []:
            scoped.add(plugin, route=name)
        routes.append(_route(raw_route, name, service_name))

    unknown_routes = scoped.route_names() - {route.name for route in routes}
    unknown_services = scoped.service_names() - set(services)
    if unknown_routes or unknown_services:
        raise ConfigError(f"plugins refer to unknown routes {sorted(unknown_routes)} "
                          f"or services {sorted(unknown_services)}")
    try:
        routes = [replace(route, plugins=build_route_plugins(scoped.effective(route))) for route in routes]
    except PluginConfigError as error:
        raise ConfigError(str(error)) from None
    return GatewayConfig(services, routes, frozenset(scoped.names() & NOT_EMULATED))


def _name_of(reference: object) -> str | None:
    """A reference to another entity: its name, or `{name: ...}`."""
    if isinstance(reference, dict):
        reference = reference.get("name")
    return None if reference is None else str(reference)


def _check_fields(kind: str, raw: object, known: frozenset[str]) -> dict:
    if not isinstance(raw, dict):
        raise ConfigError(f"a {kind} is a mapping, not {raw!r}")
    unknown = set(raw) - known
    if unknown:
        raise ConfigError(f"{kind} {raw.get('name')!r}: unknown field(s) {sorted(unknown)}")
    return raw


def _service(raw: dict) -> Service:
    _check_fields("service", raw, _SERVICE_FIELDS)
    name = raw.get("name")
    if not name:
        raise ConfigError("every service needs a name (the dev gateway maps service names to local URLs)")
    path = (urlsplit(raw["url"]).path or None) if raw.get("url") else raw.get("path")
    return Service(
        name=name,
        path=path,
        connect_timeout=raw.get("connect_timeout", KONG_DEFAULT_TIMEOUT_MS) / 1000,
        read_timeout=raw.get("read_timeout", KONG_DEFAULT_TIMEOUT_MS) / 1000,
    )


def _route(raw: dict, name: str, service: str) -> Route:
    for field in _UNSUPPORTED_MATCH_FIELDS:
        if raw.get(field):
            raise ConfigError(f"route {name!r}: matching on {field} is not emulated by the dev gateway")
    if raw.get("path_handling", "v0") != "v0":
        raise ConfigError(f"route {name!r}: only path_handling v0 (Kong's default) is emulated")
    paths = raw.get("paths") or []
    if not isinstance(paths, list) or not all(isinstance(path, str) for path in paths):
        raise ConfigError(f"route {name!r}: paths must be a list of strings")
    paths = tuple(paths)
    if not paths:
        raise ConfigError(f"route {name!r} has no paths; the dev gateway routes on paths")
    for path in paths:
        if path.startswith("~"):
            raise ConfigError(f"route {name!r}: regex path {path!r} is not emulated by the dev gateway")
        if not path.startswith("/"):
            raise ConfigError(f"route {name!r}: path {path!r} must start with '/'")
    methods = raw.get("methods")
    return Route(
        name=name,
        service=service,
        paths=paths,
        methods=frozenset(method.upper() for method in methods) if methods else None,
        strip_path=raw.get("strip_path", True),
        preserve_host=raw.get("preserve_host", False),
    )


class _PluginScopes:
    """Plugin configs by scope; Kong applies one instance per plugin name, the most specific one."""

    def __init__(self) -> None:
        self._global: dict[str, dict] = {}
        self._service: dict[str, dict[str, dict]] = {}
        self._route: dict[str, dict[str, dict]] = {}

    def add(self, raw: dict, service: str | None = None, route: str | None = None) -> None:
        _check_fields("plugin", raw, _PLUGIN_FIELDS)
        name = raw.get("name")
        if not name:
            raise ConfigError("every plugin needs a name")
        if raw.get("consumer"):
            raise ConfigError(f"plugin {name!r}: consumer-scoped plugins are not emulated by the dev gateway")
        if raw.get("enabled", True) is False:
            return
        if route is not None:
            scope = self._route.setdefault(route, {})
        elif service is not None:
            scope = self._service.setdefault(service, {})
        else:
            scope = self._global
        if name in scope:
            raise ConfigError(f"plugin {name!r} is configured twice in the same scope")
        scope[name] = raw.get("config") or {}

    def effective(self, route: Route) -> dict[str, dict]:
        return {**self._global, **self._service.get(route.service, {}), **self._route.get(route.name, {})}

    def route_names(self) -> set[str]:
        return set(self._route)

    def service_names(self) -> set[str]:
        return set(self._service)

    def names(self) -> set[str]:
        scopes = [self._global, *self._service.values(), *self._route.values()]
        return {name for scope in scopes for name in scope}
