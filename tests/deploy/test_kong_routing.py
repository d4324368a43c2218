"""Through the dev gateway serving gateway/kong.yml: every function route (each function's Flask URL map) is
reachable through Kong, internals (/metrics) through no Kong route, and every Kong route reaches a real function
route. Broken fixtures (patches of kong.yml) must fail."""
from __future__ import annotations

import importlib
import os
import socket
from pathlib import Path
from unittest import mock

import pytest
import yaml

from knative import render
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
    for function in render.function_names():
        service = render.knative_services(prod_render)[function]
        environment = cluster_env.environment(service, prod_render, values, tmp_path_factory.mktemp(function))
        with mock.patch.dict(os.environ, environment):
            maps[function] = routing.url_map_of(importlib.import_module(f"functions.{function}.main").app)
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
