"""Every function's Knative Service in every target: Knative's CRD schema made strict, Kubernetes' strict PodSpec
for the parts the CRD leaves open, and our rules. Each check has broken fixtures it must reject."""
from __future__ import annotations

import pytest

from knative import render
from tests.deploy import knative_rules, knative_schema
from tests.deploy.broken import cases


def environment(target: str) -> str:
    return target.split("-", 1)[0]


@pytest.mark.parametrize("target", render.target_names())
def test_services_match_the_strict_crd_schema(renders, target):
    for name, service in render.knative_services(renders[target]).items():
        assert knative_schema.problems(service) == [], name


@pytest.mark.parametrize("target", render.target_names())
def test_services_follow_our_rules(renders, target):
    documents = renders[target]
    for name, service in render.knative_services(documents).items():
        assert knative_rules.problems(service, documents, environment(target)) == [], name


def test_keycloak_component_keeps_the_services_valid():
    documents = render.render("prod-gpu", components=("keycloak",))
    for name, service in render.knative_services(documents).items():
        assert knative_schema.problems(service) == [], name
        assert knative_rules.problems(service, documents, "prod") == [], name
    config = next(d for d in documents if d["metadata"]["name"].startswith("jan-config-"))
    assert {"ISSUER", "JWKS_URL", "AUDIENCE"} <= set(config["data"])


def test_every_place_the_crd_leaves_open_is_checked_as_a_kubernetes_pod_spec():
    open_places = knative_schema.open_places()
    assert open_places, "the CRD schema changed: review what knative_schema makes strict"
    assert [place for place in open_places if not place.startswith(".spec.template.spec.")] == []


@pytest.mark.parametrize("broken", cases("knative-schema"))
def test_broken_service_fails_the_schema(prod_render, broken):
    service = broken.applied_to(render.knative_services(prod_render)["llm"])
    problems = knative_schema.problems(service)
    assert any(broken.expect in problem for problem in problems), problems


@pytest.mark.parametrize("broken", cases("knative-rules"))
def test_broken_service_breaks_our_rule(renders, broken):
    target = broken.options.get("target", "prod-gpu")
    service = broken.applied_to(render.knative_services(renders[target])["llm"])
    problems = knative_rules.problems(service, renders[target], environment(target))
    assert any(problem.startswith(broken.expect) for problem in problems), problems
