"""Knative Services against Knative's own CRD schema, made strict, and their pod part against Kubernetes' strict
PodSpec.

The CRD (schemas/, Knative Serving ~1.23) lists the fields Knative accepts but leaves every object open to
unknown fields. Made strict here:
- every object that lists its properties rejects others, including the revision template's metadata (whose CRD
  schema lists the only fields Knative uses: name, namespace, labels, annotations, finalizers);
- the Service's own metadata, a bare `type: object` in the CRD, gets a strict ObjectMeta of the fields a manifest
  may set (no status, uid or resourceVersion);
- label values must be valid Kubernetes label values;
- maps (annotations, labels, nodeSelector, resource quantities) keep their free keys; their values are checked.
What stays open in the CRD are fields Knative passes through to Kubernetes untyped (affinity, tolerations,
emptyDir, ...). Those are checked by the second schema: the template's pod spec, without Knative's own fields,
against Kubernetes' strict PodSpec from kubernetes-validate (after Knative's defaulting of probe ports).
"""
from __future__ import annotations

import copy
import json
from functools import lru_cache
from pathlib import Path

import jsonschema
import yaml
from referencing import Registry, Resource

CRD_FILE = Path(__file__).resolve().parent / "schemas" / "knative-serving-service-crd.yaml"
PRESERVE = "x-kubernetes-preserve-unknown-fields"
# Knative's additions to a Kubernetes PodSpec in a revision template.
KNATIVE_POD_FIELDS = ("containerConcurrency", "timeoutSeconds", "responseStartTimeoutSeconds", "idleTimeoutSeconds")

LABEL_VALUE = {"type": "string", "maxLength": 63, "pattern": r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$"}
STRING_MAP = {"type": "object", "additionalProperties": {"type": "string"}}
OBJECT_META = {
    "type": "object",
    "required": ["name"],
    "additionalProperties": False,
    "properties": {
        # A Knative Service name becomes a DNS label (and a prefix of revision names).
        "name": {"type": "string", "maxLength": 63, "pattern": r"^[a-z]([-a-z0-9]*[a-z0-9])?$"},
        "namespace": {"type": "string"},
        "labels": {"type": "object", "additionalProperties": LABEL_VALUE},
        "annotations": STRING_MAP,
    },
}


@lru_cache(maxsize=1)
def crd_schema() -> dict:
    """The CRD's schema (cached: callers read it and never change it)."""
    crd = yaml.safe_load(CRD_FILE.read_text())
    return crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]


def make_strict(node: dict) -> dict:
    node = {key: value for key, value in node.items() if key != "description"}
    if "properties" in node:
        node["properties"] = {name: make_strict(child) for name, child in node["properties"].items()}
        node.setdefault("additionalProperties", False)
        node.pop(PRESERVE, None)
        if "labels" in node["properties"] and node["properties"]["labels"].get("type") == "object":
            node["properties"]["labels"] = {"type": "object", "additionalProperties": LABEL_VALUE}
    elif isinstance(node.get("additionalProperties"), dict):
        node["additionalProperties"] = make_strict(node["additionalProperties"])
    if isinstance(node.get("items"), dict):
        node["items"] = make_strict(node["items"])
    return node


@lru_cache(maxsize=1)
def strict_service_schema() -> dict:
    schema = make_strict(crd_schema())
    schema["properties"]["metadata"] = OBJECT_META
    # A manifest declares; the cluster reports status.
    del schema["properties"]["status"]
    schema["required"] = ["apiVersion", "kind", "metadata", "spec"]
    schema["properties"]["apiVersion"] = {"const": "serving.knative.dev/v1"}
    schema["properties"]["kind"] = {"const": "Service"}
    return schema


def open_places(node: dict | None = None, path: str = "") -> list[str]:
    """Where the CRD leaves objects free-form (for the record, and for the test that keeps this list honest)."""
    node = crd_schema() if node is None else node
    found = [path] if node.get(PRESERVE) and "properties" not in node else []
    for name, child in (node.get("properties") or {}).items():
        found += open_places(child, f"{path}.{name}")
    if isinstance(node.get("items"), dict):
        found += open_places(node["items"], f"{path}[]")
    return found


def problems(service: dict) -> list[str]:
    """Every violation, as `path: message` lines (empty when valid)."""
    validator = jsonschema.Draft7Validator(strict_service_schema())
    found = [f"{_path(error)}: {error.message}" for error in validator.iter_errors(service)]
    pod = (((service.get("spec") or {}).get("template") or {}).get("spec"))
    if isinstance(pod, dict):
        found += [f"spec.template.spec (as a Kubernetes PodSpec) {line}" for line in pod_spec_problems(pod)]
    return found


def pod_spec_problems(pod: dict, kubernetes_version: str | None = None) -> list[str]:
    pod = {key: value for key, value in copy.deepcopy(pod).items() if key not in KNATIVE_POD_FIELDS}
    _default_probe_ports(pod)
    validator = _pod_spec_validator(kubernetes_version or _latest_kubernetes())
    return [f"{_path(error)}: {error.message}" for error in validator.iter_errors(pod)]


def _default_probe_ports(pod: dict) -> None:
    """Knative's defaulting: a probe without a port probes the container's port."""
    for container in pod.get("containers") or []:
        ports = container.get("ports") or [{}]
        for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
            for handler in ("httpGet", "tcpSocket", "grpc"):
                action = (container.get(probe) or {}).get(handler)
                if isinstance(action, dict) and "port" not in action and "containerPort" in ports[0]:
                    action["port"] = ports[0]["containerPort"]


def _latest_kubernetes() -> str:
    from kubernetes_validate.utils import latest_version

    return latest_version()


@lru_cache(maxsize=4)
def _pod_spec_validator(version: str) -> jsonschema.protocols.Validator:
    import kubernetes_validate

    definitions_file = (Path(kubernetes_validate.__file__).parent / "kubernetes-json-schema"
                        / f"v{version}-local-strict" / "_definitions.json")
    definitions = json.loads(definitions_file.read_text())
    registry = Resource.from_contents(definitions) @ Registry()
    schema = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$ref": f"{definitions['$id']}#/$defs/io.k8s.api.core.v1.PodSpec",
    }
    return jsonschema.Draft202012Validator(schema, registry=registry)


def _path(error: jsonschema.ValidationError) -> str:
    return "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in error.absolute_path) or "(root)"
