"""Every object of every target that is not a Knative Service, against Kubernetes' strict schemas, for the oldest
Kubernetes we claim and the newest kubernetes-validate knows. A kind without a schema fails, so nothing in a render
goes unchecked (Knative Services have their own check)."""
from __future__ import annotations

import pytest

from knative import render
from tests.deploy import core_schema
from tests.deploy.broken import cases


@pytest.mark.parametrize("target", render.target_names())
def test_core_objects_match_strict_kubernetes_schemas(renders, target):
    for document in renders[target]:
        if not render.is_knative_service(document):
            assert core_schema.problems(document) == [], f"{document['kind']}/{document['metadata']['name']}"


@pytest.mark.parametrize("broken", cases("core-kinds"))
def test_broken_core_object_fails(prod_render, broken):
    document = render.find(prod_render, broken.options["kind"], broken.options["name"])
    problems = core_schema.problems(broken.applied_to(document))
    assert any(broken.expect in problem for problem in problems), problems
