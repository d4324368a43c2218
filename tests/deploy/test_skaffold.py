"""skaffold.yaml against the v4beta14 schema and against the manifests it deploys; broken fixtures must fail."""
from __future__ import annotations

import pytest

from knative import images, render, skaffold
from tests.deploy import skaffold_rules
from tests.deploy.broken import cases


def test_skaffold_yaml_has_no_problems(renders):
    assert skaffold_rules.problems(skaffold.load(), renders) == []


@pytest.mark.parametrize("broken", cases("skaffold"))
def test_broken_skaffold_yaml_fails(renders, broken):
    problems = skaffold_rules.problems(broken.applied_to(skaffold.load()), renders)
    assert any(broken.expect in problem for problem in problems), problems


def test_make_images_builds_what_skaffold_builds_in_production():
    commands = images.build_commands(skaffold.load(), "registry.example", "v1")
    tags = {command[command.index("--tag") + 1]: command for command in commands}
    for function in render.function_names():
        command = tags[f"registry.example/jan-{function}:v1"]
        assert command[command.index("--target") + 1] == "function"
        assert f"FUNCTION={function}" in command
    assert "registry.example/jan-migrate:v1" in tags
    model_server = tags["registry.example/jan-model-server:v1"]
    assert model_server[-1] == "knative/components/cpu/model-server" and "--target" not in model_server
