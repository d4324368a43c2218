"""Through the dev gateway serving gateway/kong.yml: every route of every public function (each function's URL map)
is reachable through Kong, internals (/metrics) through no Kong route under any prefix, and every Kong route
reaches a real function route. Broken fixtures (patches of kong.yml) must fail."""
from __future__ import annotations

import importlib
import os
import socket
from pathlib import Path
from unittest import mock

import pytest
import yaml

from knative import render
from shared import function_manifest
from tests.deploy import cluster_env, kong_rules, routing
from tests.deploy.broken import cases

DATABASE_URL = os.environ.get("TEST_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def url_maps(prod_render, tmp_path_factory) -> dict:
    """Each function's URL map, from its app built with the environment its Knative Service gives it."""
    values = cluster_env.outside_values(DATABASE_URL)
    maps = {}
    for function, manifest in function_manifest.all_manifests().items():
        service = render.knative_services(prod_render)[function]
        environment = cluster_env.environment(service, prod_render, values, tmp_path_factory.mktemp(function))
        module, _, attribute = manifest.app.partition(":")
        with mock.patch.dict(os.environ, environment):
            maps[function] = routing.url_map_of(getattr(importlib.import_module(module), attribute))
    return maps


def check(config: dict, tmp_path: Path, url_maps: dict) -> list[str]:
    path = tmp_path / "kong.yml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return routing.problems(config, path, url_maps, free_port())


def test_kong_routes_and_function_routes_meet(tmp_path, url_maps):
    assert check(kong_rules.load(), tmp_path, url_maps) == []


@pytest.mark.parametrize("broken", cases("routing"))
def test_broken_routing_is_caught(tmp_path, url_maps, broken):
    problems = check(broken.applied_to(kong_rules.load()), tmp_path, url_maps)
    assert any(problem.startswith(broken.expect) for problem in problems), problems


def test_an_asgi_functions_starlette_routes_become_its_url_map():
    """The routing check reads an ASGI function's routes from its Starlette app, through middleware."""
    from starlette.applications import Starlette
    from starlette.middleware.cors import CORSMiddleware
    from starlette.responses import JSONResponse
    from starlette.routing import Mount, Route

    async def endpoint(request):
        return JSONResponse({})

    async def raw_app(scope, receive, send):
        pass

    app = CORSMiddleware(Starlette(routes=[
        Route("/healthz", endpoint, name="healthz"),
        Route("/v1/things/{thing_id}", endpoint, methods=["GET", "DELETE"], name="thing"),
        Mount("/v1/files", routes=[Route("/{path:path}", endpoint, methods=["PUT"], name="file")]),
        Mount("/mcp", app=raw_app, name="mcp"),
    ]), allow_origins=["*"])
    adapter = routing.url_map_of(app).bind("function.local")
    assert adapter.match("/healthz", "GET")[0] == "healthz /healthz"
    assert adapter.match("/v1/things/t1", "DELETE") == ("thing /v1/things/<thing_id>", {"thing_id": "t1"})
    assert adapter.match("/v1/files/a/b.txt", "PUT") == ("file /v1/files/<path:path>", {"path": "a/b.txt"})
    assert adapter.match("/mcp/session", "POST")[0] == "mcp /mcp"
    paths = [route.path for route in routing.function_routes("demo", routing.url_map_of(app))]
    assert paths[:2] == ["/healthz", "/v1/things/sample"]
