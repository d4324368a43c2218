"""Every deploy target renders offline (kubectl kustomize), the migration Job composed in; a broken kustomization
does not render."""
from __future__ import annotations

import re

import pytest

from knative import deploy, render
from tests.deploy.broken import FIXTURES

REQUIRED_TARGETS = {"dev-cpu", "prod-gpu", "prod-cpu"}
PART_OF = "app.kubernetes.io/part-of"


def test_the_required_targets_exist():
    assert REQUIRED_TARGETS <= set(render.target_names())


@pytest.mark.parametrize("target", render.target_names())
def test_target_holds_every_function_once_in_one_labelled_namespace(renders, target):
    documents = renders[target]
    assert sorted(render.knative_services(documents)) == render.function_names()
    namespace = deploy.namespace_of(documents)
    elsewhere = [d for d in documents if d["kind"] != "Namespace" and d["metadata"].get("namespace") != namespace]
    assert elsewhere == []
    unlabelled = [d for d in documents if (d["metadata"].get("labels") or {}).get(PART_OF) != "jan-serverless"]
    assert unlabelled == []
    assert [d for d in documents if deploy.is_migration_job(d)], "the migration Job is missing"


@pytest.mark.parametrize("target", render.target_names())
def test_target_renders_without_the_migration_job_for_skaffold(target):
    assert not [d for d in render.render(target) if d["kind"] == "Job"]


def test_base_revisions_are_unnamed_and_follow_the_latest_revision():
    services = render.knative_services(render.kustomize(render.REPO_ROOT / "knative" / "base"))
    assert sorted(services) == render.function_names()
    for service in services.values():
        assert "name" not in (service["spec"]["template"].get("metadata") or {})
        assert "traffic" not in service["spec"]


@pytest.mark.parametrize("fixture", sorted(path.name for path in (FIXTURES / "renders").iterdir() if path.is_dir()))
def test_broken_kustomization_does_not_render(fixture):
    directory = FIXTURES / "renders" / fixture
    expect = re.search(r"^# expect: (.+)$", (directory / "kustomization.yaml").read_text(), re.M).group(1)
    with pytest.raises(render.RenderError, match=re.escape(expect)):
        render.kustomize(directory)
