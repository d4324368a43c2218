"""gateway/kong.yml: `deck validate`, and our checks of its plugin settings against the rendered manifests. Broken
fixtures (patches of the real kong.yml) must fail each."""
from __future__ import annotations

import dataclasses

import pytest
import yaml

from shared import function_manifest
from tests.deploy import kong_rules
from tests.deploy.broken import cases


def test_deck_validates_kong_yml():
    assert kong_rules.deck_problems(kong_rules.KONG_FILE) == []


def test_kong_yml_plugin_settings(renders):
    assert kong_rules.problems(kong_rules.load(), renders) == []


@pytest.mark.parametrize("broken", cases("kong-deck"))
def test_broken_kong_yml_fails_deck(tmp_path, broken):
    path = tmp_path / "kong.yml"
    path.write_text(yaml.safe_dump(broken.applied_to(kong_rules.load()), sort_keys=False))
    problems = kong_rules.deck_problems(path)
    assert any(broken.expect in problem for problem in problems), problems


@pytest.mark.parametrize("broken", cases("kong-rules"))
def test_broken_kong_yml_fails_our_checks(renders, broken):
    problems = kong_rules.problems(broken.applied_to(kong_rules.load()), renders)
    assert any(problem.startswith(broken.expect) for problem in problems), problems


def test_an_internal_function_with_kong_routes_is_caught(renders, monkeypatch):
    """A function its manifest declares internal (cluster-local only, as Jan's memory) must have no Kong service."""
    manifests = function_manifest.all_manifests()
    internal = {**manifests, "llm": dataclasses.replace(manifests["llm"], visibility="internal")}
    monkeypatch.setattr(kong_rules.function_manifest, "all_manifests", lambda root=None: internal)
    problems = kong_rules.problems(kong_rules.load(), renders)
    assert "upstream: service llm routes to llm, which its function.toml declares internal (cluster-local only, " \
           "no Kong route)" in problems, problems
