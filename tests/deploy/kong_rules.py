"""gateway/kong.yml: `deck validate` (structure, types, references) and our checks of what decK does not look at
(plugin settings), made against the rendered manifests Kong runs with."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from urllib.parse import urlsplit

import yaml

from gateway.kongconfig import ConfigError, parse as parse_kong
from gateway.plugins import PluginConfigError
from gateway.routing import RouteTable
from knative import render

KONG_FILE = render.REPO_ROOT / "gateway" / "kong.yml"
# Per function, the public paths whose responses stream (SSE): every route that can carry them must not buffer.
STREAMING_PATHS = {
    "llm": ("/v1/chat/completions", "/llm/v1/chat/completions"),
    "realtime": (),
}
# Internals every function serves on its port that Kong must not route.
INTERNAL_PATHS = ("/metrics",)
REQUIRED_GLOBAL_PLUGINS = {"rate-limiting", "cors", "request-size-limiting"}
# Functions authenticate every request themselves: Kong neither consumes credentials nor sets identity headers.
FORBIDDEN_PLUGINS = {"key-auth", "jwt", "basic-auth", "hmac-auth", "oauth2", "openid-connect", "ldap-auth", "acl",
                     "request-transformer", "pre-function", "post-function"}
DECK_INSTALL = "apt-get update && apt-get install -y deck"


def load(path: Path = KONG_FILE) -> dict:
    return yaml.safe_load(path.read_text())


def deck_problems(path: Path) -> list[str]:
    if shutil.which("deck") is None:
        raise RuntimeError(f"decK is not installed (make test installs it: {DECK_INSTALL})")
    result = subprocess.run(["deck", "validate", "--state", str(path)], capture_output=True, text=True)
    return [] if result.returncode == 0 else [line for line in (result.stdout + result.stderr).splitlines() if line]


def plugins(config: dict) -> list[tuple[str, dict]]:
    """Every plugin instance with where it sits: global, service <name>, route <name>."""
    found = [("global", plugin) for plugin in config.get("plugins") or []]
    for service in config.get("services") or []:
        found += [(f"service {service['name']}", plugin) for plugin in service.get("plugins") or []]
        for route in service.get("routes") or []:
            found += [(f"route {route.get('name')}", plugin) for plugin in route.get("plugins") or []]
    for route in config.get("routes") or []:
        found += [(f"route {route.get('name')}", plugin) for plugin in route.get("plugins") or []]
    return found


def routes(config: dict) -> list[tuple[str, dict]]:
    """(service name, route) for every route, nested or top-level."""
    found = [(service["name"], route) for service in config.get("services") or [] for route in
             service.get("routes") or []]
    for route in config.get("routes") or []:
        service = route.get("service")
        found.append((service.get("name") if isinstance(service, dict) else service, route))
    return found


def problems(config: dict, renders: dict[str, list[dict]]) -> list[str]:
    found = []
    if config.get("_format_version") != "3.0":
        found.append('format: _format_version must be "3.0" (Kong 3.x DB-less)')
    found += _plugin_problems(config, renders)
    found += _upstream_problems(config, renders)
    found += _streaming_problems(config)
    found += _internal_path_problems(config)
    for target, documents in renders.items():
        found += _deployment_problems(documents, target)
    return found


def _plugin_problems(config: dict, renders: dict[str, list[dict]]) -> list[str]:
    found = []
    instances = plugins(config)
    missing = REQUIRED_GLOBAL_PLUGINS - {plugin["name"] for where, plugin in instances if where == "global"}
    if missing:
        found.append(f"plugins: global {sorted(missing)} missing (rate limits, CORS and body limits apply everywhere)")
    for where, plugin in instances:
        if plugin["name"] in FORBIDDEN_PLUGINS:
            found.append(f"plugins: {plugin['name']} ({where}) touches credentials or identity; functions "
                         "authenticate every request themselves")
        if plugin["name"] != "rate-limiting":
            continue
        settings = plugin.get("config") or {}
        if settings.get("policy") != "redis":
            found.append(f"rate-limiting ({where}): policy must be redis, so every Kong pod shares the counts")
            continue
        redis = settings.get("redis") or {}
        host = redis.get("host") or settings.get("redis_host")
        port = redis.get("port") or settings.get("redis_port") or 6379
        for target, documents in renders.items():
            if not _service_answers(documents, host, port):
                found.append(f"rate-limiting ({where}): redis {host}:{port} is no Service in {target}")
    return found


def _upstream_problems(config: dict, renders: dict[str, list[dict]]) -> list[str]:
    found = []
    targeted = set()
    for service in config.get("services") or []:
        host = urlsplit(service.get("url", "")).hostname or service.get("host", "")
        function = host.split(".")[0]
        targeted.add(function)
        for target, documents in renders.items():
            knative = render.knative_services(documents).get(function)
            namespace = knative["metadata"].get("namespace") if knative else None
            if knative is None or host != f"{function}.{namespace}.svc.cluster.local":
                found.append(f"upstream: service {service['name']} ({host}) is no function's cluster-local "
                             f"hostname in {target}")
                continue
            first_byte = knative["spec"]["template"]["spec"].get("responseStartTimeoutSeconds", 300) * 1000
            for timeout in ("read_timeout", "write_timeout"):
                if service.get(timeout, 60000) < first_byte:
                    found.append(f"timeouts: service {service['name']} {timeout} {service.get(timeout, 60000)} ms "
                                 f"is shorter than the function's responseStartTimeoutSeconds ({first_byte} ms)")
    for function in sorted(set(render.function_names()) - targeted):
        found.append(f"upstream: function {function} has no Kong service")
    return found


def _streaming_problems(config: dict) -> list[str]:
    found = [f"streaming: declare function {function}'s streaming paths in STREAMING_PATHS (none is a choice)"
             for function in sorted(set(render.function_names()) - set(STREAMING_PATHS))]
    for path in (path for paths in STREAMING_PATHS.values() for path in paths):
        for _service, route in routes(config):
            if any(path.startswith(prefix) for prefix in route.get("paths") or []):
                for setting in ("response_buffering", "request_buffering"):
                    if route.get(setting, True) is not False:
                        found.append(f"streaming: route {route.get('name')} can carry {path}; it needs "
                                     f"{setting}: false")
    return found


def _internal_path_problems(config: dict) -> list[str]:
    """Every function's internals (at the root and under each prefix Kong strips) must meet a route that
    terminates the request, by Kong's own route priority."""
    found = []
    try:
        table = RouteTable(parse_kong(config).routes)
    except (ConfigError, PluginConfigError) as error:
        return [f"internal: the dev gateway cannot read kong.yml to match routes as Kong does: {error}"]
    terminating = {
        route.get("name") for _service, route in routes(config)
        if any(plugin["name"] == "request-termination" for plugin in route.get("plugins") or [])
    }
    prefixes = {""} | {
        prefix for _service, route in routes(config) if route.get("strip_path", True)
        for prefix in route.get("paths") or []
    }
    for internal in INTERNAL_PATHS:
        for prefix in sorted(prefixes):
            path = prefix.rstrip("/") + internal
            match = table.match("GET", path)
            if match is not None and match.route.name not in terminating:
                found.append(f"internal: GET {path} reaches route {match.route.name}; it must not be routed")
    return found


def _deployment_problems(documents: list[dict], target: str) -> list[str]:
    found = []
    kong = render.find(documents, "Deployment", "kong")
    if kong is None:
        return [f"deployment: no Kong Deployment in {target}"]
    container = render.containers(kong)[0]
    environment = {variable["name"]: variable.get("value") for variable in container.get("env") or []}
    expected = {"KONG_DATABASE": "off", "KONG_ROUTER_FLAVOR": "traditional_compatible"}
    for name, value in expected.items():
        if environment.get(name) != value:
            found.append(f"deployment ({target}): Kong needs {name}={value}")
    declarative = Path(environment.get("KONG_DECLARATIVE_CONFIG") or "/")
    volumes = {volume["name"]: volume for volume in render.pod_specs(kong)[0].get("volumes") or []}
    mounted = [mount for mount in container.get("volumeMounts") or [] if mount["mountPath"] == str(declarative.parent)]
    config_map_name = ((volumes.get(mounted[0]["name"]) if mounted else None) or {}).get("configMap", {}).get("name")
    config_map = render.find(documents, "ConfigMap", config_map_name or "")
    if config_map is None or (config_map.get("data") or {}).get(declarative.name) != KONG_FILE.read_text():
        found.append(f"deployment ({target}): KONG_DECLARATIVE_CONFIG must be gateway/kong.yml, mounted from its "
                     "ConfigMap")
    return found


def _service_answers(documents: list[dict], host: str | None, port: int) -> bool:
    parts = (host or "").split(".")
    if len(parts) < 2 or parts[2:] != ["svc", "cluster", "local"]:
        return False
    service = render.find(documents, "Service", parts[0], api_version="v1")
    if service is None or service["metadata"].get("namespace") != parts[1]:
        return False
    if service["spec"].get("type") == "ExternalName":
        return True
    return port in {entry.get("port") for entry in service["spec"].get("ports") or []}
