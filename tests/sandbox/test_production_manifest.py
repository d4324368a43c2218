"""The production sandbox (knative/components/sandbox): composed onto every target it renders, passes Kubernetes'
strict schemas, runs under gVisor, is reachable only from the mcp function, reaches nothing, points python_exec at
itself, and no target turns it on by default."""
from __future__ import annotations

import pytest
import yaml

from knative import render
from tests.deploy import core_schema

COMPONENT = "sandbox"


@pytest.fixture(scope="module", params=render.target_names())
def composed(request) -> tuple[str, list[dict]]:
    return request.param, render.render(request.param, components=(COMPONENT,))


def sandbox_objects(documents: list[dict]) -> list[dict]:
    return [d for d in documents
            if (d["metadata"].get("labels") or {}).get("app.kubernetes.io/component") == "sandbox"]


def test_no_target_includes_the_sandbox_by_default():
    for target in render.target_names():
        own = yaml.safe_load((render.target_dir(target) / "kustomization.yaml").read_text())
        assert not any(path.rstrip("/").endswith(f"components/{COMPONENT}") for path in own.get("components", []))
        assert sandbox_objects(render.render(target)) == []


def test_composed_it_passes_the_strict_schemas_in_the_targets_namespace(composed):
    target, documents = composed
    objects = sandbox_objects(documents)
    assert sorted(d["kind"] for d in objects) == ["Deployment", "NetworkPolicy", "Service"]
    namespaces = {d["metadata"]["namespace"] for d in documents if d["kind"] == "Deployment"}
    for document in objects:
        assert document["metadata"]["namespace"] in namespaces
        assert document["metadata"]["labels"]["app.kubernetes.io/part-of"] == "jan-serverless"
        assert core_schema.problems(document) == [], f"{target}: {document['kind']}"


def test_it_runs_under_gvisor_without_privileges(composed):
    _, documents = composed
    deployment = render.find(documents, "Deployment", "sandbox-fusion")
    pod = deployment["spec"]["template"]["spec"]
    assert pod["runtimeClassName"] == "gvisor"
    assert pod["automountServiceAccountToken"] is False
    (container,) = pod["containers"]
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert container["securityContext"]["capabilities"]["drop"] == ["ALL"]
    assert "SYS_ADMIN" not in container["securityContext"]["capabilities"].get("add", [])
    assert not container["securityContext"].get("privileged")
    assert container["readinessProbe"]["httpGet"]["path"] == "/v1/ping"


def test_python_exec_is_pointed_at_the_sandbox_service(composed):
    _, documents = composed
    config = next(d for d in documents if d["kind"] == "ConfigMap" and d["metadata"]["name"].startswith("jan-config"))
    service = render.find(documents, "Service", "sandbox-fusion")
    deployment = render.find(documents, "Deployment", "sandbox-fusion")
    (port,) = service["spec"]["ports"]
    assert config["data"]["SANDBOX_FUSION_URL"] == f"http://{service['metadata']['name']}:{port['port']}"
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert port["targetPort"] in {p["name"] for p in container["ports"]}
    assert service["spec"]["selector"].items() <= deployment["spec"]["template"]["metadata"]["labels"].items()


def test_only_mcp_reaches_it_and_it_reaches_nothing(composed):
    _, documents = composed
    policy = render.find(documents, "NetworkPolicy", "sandbox-fusion")["spec"]
    deployment = render.find(documents, "Deployment", "sandbox-fusion")
    assert policy["podSelector"]["matchLabels"].items() <= deployment["spec"]["template"]["metadata"]["labels"].items()
    assert sorted(policy["policyTypes"]) == ["Egress", "Ingress"]
    assert policy.get("egress", []) == []
    (rule,) = policy["ingress"]
    assert rule["from"] == [{"podSelector": {"matchLabels": {"serving.knative.dev/service": "mcp"}}}]
