"""Kong's routes against the functions' real routes, through the dev gateway (which serves gateway/kong.yml as Kong
does): for each function, a stand-in upstream matches every request against the function's URL map (Flask's, or
one built from a Starlette app's routes for an ASGI function) and answers with the endpoint it reached, so a
request shows exactly which function route a public path lands on."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from werkzeug.exceptions import HTTPException
from werkzeug.routing import Map, RequestRedirect, Rule
from werkzeug.serving import WSGIRequestHandler, make_server

from gateway.kongconfig import parse as parse_kong
from gateway.routing import RouteTable
from knative import render
from shared import function_manifest
from tests.deploy import kong_rules

# Knative's probes reach every function's /healthz and /readyz on the pod itself; through Kong only the llm
# function's answer at the root (others offer /<name>/healthz aliases), so these may be unreachable.
PROBE_PATHS = ("/healthz", "/readyz")
SAMPLE_VALUES = {"int": "1", "float": "1.5", "uuid": str(uuid.UUID(int=1)), "path": "sample/id"}
_ARGUMENT = re.compile(r"<(?:(\w+)(?:\([^)]*\))?:)?\w+>")


_STARLETTE_PARAMETER = re.compile(r"{(\w+)(?::(\w+))?}")
_CONVERTERS = {None: "", "str": "", "path": "path:", "int": "int:", "float": "float:", "uuid": "uuid:"}
_ANY_METHOD = ["GET", "POST", "PUT", "PATCH", "DELETE"]


def url_map_of(app) -> Map:
    """The app's routes as a werkzeug URL map: Flask's own, or a Starlette app's (through any middleware that
    keeps the wrapped app as `.app`) translated rule by rule."""
    for _depth in range(10):
        if hasattr(app, "url_map"):
            return app.url_map
        if hasattr(app, "routes"):
            return Map(list(_starlette_rules(app.routes, "")), strict_slashes=False)
        app = getattr(app, "app", None)
    raise TypeError("the app is neither Flask nor Starlette: its routes cannot be listed for the routing check")


def _starlette_rules(routes, prefix: str):
    for route in routes:
        path = prefix + _STARLETTE_PARAMETER.sub(
            lambda m: f"<{_CONVERTERS.get(m.group(2), '')}{m.group(1)}>", getattr(route, "path", ""))
        # Starlette names a route after its endpoint function, which several routes may share: add the path.
        name = f"{getattr(route, 'name', None) or ''} {path}".strip()
        if getattr(route, "routes", None):  # a Mount of routes
            yield from _starlette_rules(route.routes, path)
        elif hasattr(route, "app") and not hasattr(route, "endpoint"):  # a Mount of a whole app
            yield Rule(path or "/", endpoint=name, methods=_ANY_METHOD)
            yield Rule(f"{path}/<path:rest>", endpoint=name, methods=_ANY_METHOD)
        elif getattr(route, "methods", None):
            yield Rule(path, endpoint=name, methods=sorted(route.methods))


@dataclass(frozen=True)
class FunctionRoute:
    function: str
    endpoint: str
    method: str
    path: str


def function_routes(function: str, url_map) -> list[FunctionRoute]:
    """One request per rule: its first method (GET preferred) and its path with sample arguments."""
    found = []
    for rule in url_map.iter_rules():
        methods = sorted(rule.methods - {"HEAD", "OPTIONS"})
        method = "GET" if "GET" in methods else methods[0]
        path = _ARGUMENT.sub(lambda match: SAMPLE_VALUES.get(match.group(1) or "", "sample"), rule.rule)
        found.append(FunctionRoute(function, rule.endpoint, method, path))
    return found


def public_paths(upstream_path: str, service: str, kong_routes: list[tuple[str, dict]]) -> list[tuple[str, str]]:
    """(Kong route, public path) pairs that could carry a request to `upstream_path` of `service`."""
    found = []
    for service_name, route in kong_routes:
        if service_name != service:
            continue
        for prefix in route.get("paths") or []:
            if route.get("strip_path", True):
                found.append((route.get("name"), prefix.rstrip("/") + upstream_path))
            elif upstream_path.startswith(prefix):
                found.append((route.get("name"), upstream_path))
    return found


class _QuietHandler(WSGIRequestHandler):
    def log_request(self, *args) -> None:
        pass


class RecordingUpstream:
    """A function's stand-in: routes like the function (its URL map), answers with the endpoint reached."""

    def __init__(self, function: str, url_map):
        self.function = function
        self.url_map = url_map
        self.server = make_server("127.0.0.1", 0, self, threaded=True, request_handler=_QuietHandler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}"

    def __call__(self, environ, start_response):
        adapter = self.url_map.bind_to_environ(environ)
        try:
            endpoint, _arguments = adapter.match()
            status, body = "200 OK", {"function": self.function, "endpoint": endpoint}
        except RequestRedirect as redirect:
            status, body = "308 Permanent Redirect", {"function": self.function, "redirect": redirect.new_url}
        except HTTPException as error:
            status, body = f"{error.code} {error.name}", {"function": self.function, "endpoint": None}
        payload = json.dumps(body).encode()
        start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(payload)))])
        return [payload]

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()


@contextmanager
def dev_gateway(config: Path, upstreams: dict[str, str], port: int):
    command = [sys.executable, "-m", "gateway.devgateway", "--config", str(config), "--port", str(port),
               "--no-access-log", *[f"--upstream={name}={url}" for name, url in upstreams.items()]]
    process = subprocess.Popen(command, cwd=render.REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True, env={**os.environ, "PYTHONPATH": str(render.REPO_ROOT)})
    try:
        deadline = time.monotonic() + 30
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"the dev gateway exited:\n{process.stdout.read()}")
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=1)
                break
            except urllib.error.HTTPError:
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=10)


def send(gateway: str, method: str, path: str) -> tuple[int, dict]:
    request = urllib.request.Request(gateway + path, method=method, data=b"{}" if method in {"POST", "PUT", "PATCH"}
                                     else None, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, _json(response.read())
    except urllib.error.HTTPError as error:
        return error.code, _json(error.read())


def _json(raw: bytes) -> dict:
    try:
        body = json.loads(raw or b"{}")
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def problems(config: dict, config_path: Path, url_maps: dict, port: int) -> list[str]:
    """Unreachable function routes, reachable internals, and Kong routes that reach no function route."""
    kong_routes = kong_rules.routes(config)
    table = RouteTable(parse_kong(config).routes)
    function_of_service = {
        service["name"]: (service.get("url", "").split("//", 1)[-1].split(".", 1)[0])
        for service in config.get("services") or []
    }
    service_of_function = {function: service for service, function in function_of_service.items()}
    terminating = {route.get("name") for _service, route in kong_routes
                   if any(plugin["name"] == "request-termination" for plugin in route.get("plugins") or [])}
    found: list[str] = []
    reached: set[str] = set()
    upstreams = {function: RecordingUpstream(function, url_map) for function, url_map in url_maps.items()}
    for upstream in upstreams.values():
        upstream.__enter__()
    manifests = function_manifest.all_manifests(render.REPO_ROOT)
    try:
        with dev_gateway(config_path, {service_of_function.get(f, f): u.url for f, u in upstreams.items()},
                         port) as gateway:
            for function, url_map in url_maps.items():
                if not manifests[function].public:
                    continue  # no Kong route reaches it (kong_rules checks that none is declared)
                for route in function_routes(function, url_map):
                    candidates = public_paths(route.path, service_of_function.get(function, ""), kong_routes)
                    hits = []
                    for _intended, public in candidates:
                        _status, body = send(gateway, route.method, public)
                        if body.get("function") == function and body.get("endpoint") == route.endpoint:
                            hits.append(public)
                            match = table.match(route.method, public)
                            if match is not None:
                                reached.add(match.route.name)
                    if kong_rules.is_internal(route.path):
                        found += [f"internal: {route.method} {public} reaches {function} {route.endpoint}"
                                  for public in hits]
                    elif not hits and route.path not in PROBE_PATHS:
                        found.append(f"unreachable: {route.method} {route.path} ({function} {route.endpoint}) "
                                     "through any Kong route")
    finally:
        for upstream in upstreams.values():
            upstream.__exit__()
    for _service, route in kong_routes:
        if route.get("name") not in reached | terminating:
            found.append(f"dead route: Kong route {route.get('name')} {route.get('paths')} reaches no function route")
    return found
