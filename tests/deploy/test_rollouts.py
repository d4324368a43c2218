"""Per-function rollouts (knative/rollout.py) on a copy of the repository: each command writes only that function's
traffic patch, and every target rendered before and after differs in that function's Service alone."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import yaml

from knative import render
from tests.deploy import knative_rules, knative_schema
from tests.deploy.broken import cases

IMAGE_V2 = "registry.example/jan-llm:v2"
IMAGE_V3 = "registry.example/jan-llm:v3"


@pytest.fixture
def repo(tmp_path) -> Path:
    copy = tmp_path / "repo"
    copy.mkdir()
    for name in ("knative", "gateway", "functions", "skaffold.yaml"):
        source = render.REPO_ROOT / name
        if source.is_dir():
            shutil.copytree(source, copy / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(source, copy / name)
    return copy


def rollout(repo: Path, *args: str) -> subprocess.CompletedProcess:
    # No kubectl context: the tool prints what it would apply.
    environment = {**os.environ, "KUBECONFIG": str(repo / "no-kubeconfig")}
    return subprocess.run([sys.executable, "-m", "knative.rollout", *args], cwd=repo, env=environment,
                          capture_output=True, text=True)


def platform(repo: Path) -> dict[str, dict[tuple, dict]]:
    """Every target of the copy, as {target: {(apiVersion, kind, namespace, name): object}}."""
    targets = render.target_names(repo)
    with ThreadPoolExecutor() as pool:
        rendered = pool.map(lambda target: render.render(target, repo=repo), targets)
    return {
        target: {(d["apiVersion"], d["kind"], d["metadata"].get("namespace"), d["metadata"]["name"]): d
                 for d in documents}
        for target, documents in zip(targets, rendered)
    }


def files(repo: Path) -> dict[str, str]:
    return {str(path.relative_to(repo)): path.read_text() for path in (repo / "knative").rglob("*") if path.is_file()}


def changes_beyond(before: dict, after: dict, function: str) -> list[str]:
    """Every object added, removed or changed in any target, except the function's own Knative Service."""
    found = []
    for target in before:
        for key in sorted(set(before[target]) | set(after[target]), key=str):
            if key[:2] == (render.KNATIVE_SERVICE_API, "Service") and key[3] == function:
                continue
            if before[target].get(key) != after[target].get(key):
                found.append(f"{target}: {key[1]} {key[2]}/{key[3]} changed")
    return found


def service(platform_render: dict, target: str, function: str) -> dict:
    return platform_render[target][(render.KNATIVE_SERVICE_API, "Service", "jan", function)]


def test_canary_changes_only_that_functions_service(repo):
    before = platform(repo)
    result = rollout(repo, "canary", "llm", "10", "--image", IMAGE_V2, "--current", "llm-00001")
    assert result.returncode == 0, result.stderr
    assert "No kubectl context configured" in result.stdout
    after = platform(repo)
    assert changes_beyond(before, after, "llm") == []
    assert service(after, "dev-cpu", "llm") == service(before, "dev-cpu", "llm")
    for target in ("prod-gpu", "prod-cpu"):
        changed = service(after, target, "llm")
        assert changed["spec"]["template"]["metadata"]["name"] == "llm-v2"
        assert changed["spec"]["template"]["spec"]["containers"][0]["image"] == IMAGE_V2
        assert changed["spec"]["traffic"] == [
            {"tag": "current", "revisionName": "llm-00001", "percent": 90},
            {"tag": "candidate", "latestRevision": True, "percent": 10},
        ]
        documents = list(after[target].values())
        assert knative_schema.problems(changed) == []
        assert knative_rules.problems(changed, documents, "prod") == []
    assert sorted(p.name for p in (repo / "knative/overlays/prod/rollouts").iterdir()) == [
        "kustomization.yaml", "llm.yaml"]


def test_promote_then_next_canary_then_rollback(repo):
    assert rollout(repo, "canary", "llm", "10", "--image", IMAGE_V2, "--current", "llm-00001").returncode == 0
    assert rollout(repo, "promote", "llm").returncode == 0
    promoted = service(platform(repo), "prod-gpu", "llm")
    assert promoted["spec"]["traffic"] == [
        {"tag": "current", "revisionName": "llm-v2", "percent": 100},
        {"tag": "candidate", "latestRevision": True, "percent": 0},
    ]
    before = platform(repo)
    assert rollout(repo, "canary", "llm", "25", "--image", IMAGE_V3, "--rollout-duration", "300s").returncode == 0
    canary = service(platform(repo), "prod-gpu", "llm")
    assert canary["spec"]["traffic"][0] == {"tag": "current", "revisionName": "llm-v2", "percent": 75}
    assert canary["metadata"]["annotations"]["serving.knative.dev/rollout-duration"] == "300s"
    assert rollout(repo, "rollback", "llm").returncode == 0
    after = platform(repo)
    assert changes_beyond(before, after, "llm") == []
    assert service(after, "prod-gpu", "llm")["spec"]["traffic"] == [
        {"tag": "current", "revisionName": "llm-v2", "percent": 100},
        {"tag": "candidate", "latestRevision": True, "percent": 0},
    ]


@pytest.mark.parametrize("args, message", [
    (("canary", "llm", "10", "--image", IMAGE_V2), "pass --current"),
    (("canary", "llm", "100", "--image", IMAGE_V2, "--current", "llm-00001"), "between 1 and 99"),
    (("canary", "llm", "10", "--image", "registry.example/jan-llm", "--current", "llm-00001"), "no tag or digest"),
    (("canary", "nope", "10", "--image", IMAGE_V2, "--current", "nope-1"), "no function 'nope'"),
    (("promote", "llm"), "no canary to promote"),
    (("rollback", "llm"), "no rollout to roll back"),
])
def test_refused_rollouts_change_nothing(repo, args, message):
    before = files(repo)
    result = rollout(repo, *args)
    assert result.returncode == 1 and message in result.stderr, result.stderr
    assert files(repo) == before


@pytest.mark.parametrize("broken", cases("rollout"))
def test_a_rollout_touching_more_than_its_function_is_caught(repo, broken):
    before = platform(repo)
    assert rollout(repo, "canary", "llm", "10", "--image", IMAGE_V2, "--current", "llm-00001").returncode == 0
    component = repo / "knative/overlays/prod/rollouts/kustomization.yaml"
    document = yaml.safe_load(component.read_text())
    document["patches"].append(broken.options["extra_patch"])
    component.write_text(yaml.safe_dump(document, sort_keys=False))
    problems = changes_beyond(before, platform(repo), "llm")
    assert any(broken.expect in problem for problem in problems), problems
