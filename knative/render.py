"""Rendering the kustomize tree: the one way the tests, `make deploy`, the rollout tool and skaffold's hook see
manifests (skaffold renders the same targets with its own kustomize)."""
from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path

import yaml

from shared import function_manifest

REPO_ROOT = Path(__file__).resolve().parent.parent
KNATIVE_SERVICE_API = "serving.knative.dev/v1"


class RenderError(RuntimeError):
    pass


def function_names(repo: Path = REPO_ROOT) -> list[str]:
    """Every function of the platform: the folders functions/<name>/ with a function.toml."""
    return sorted(function_manifest.all_manifests(repo))


def target_names(repo: Path = REPO_ROOT) -> list[str]:
    """What can be deployed: knative/targets/<environment>-<inference>."""
    return sorted(path.parent.name for path in (repo / "knative" / "targets").glob("*/kustomization.yaml"))


def target_dir(target: str, repo: Path = REPO_ROOT) -> Path:
    path = repo / "knative" / "targets" / target
    if not (path / "kustomization.yaml").is_file():
        raise RenderError(f"no target {target!r}: expected {path}/kustomization.yaml (targets: {target_names(repo)})")
    return path


def kustomize(directory: Path) -> list[dict]:
    """`kubectl kustomize <directory>` as a list of objects."""
    result = subprocess.run(["kubectl", "kustomize", str(directory)], capture_output=True, text=True)
    if result.returncode != 0:
        raise RenderError(f"kubectl kustomize {directory} failed:\n{result.stderr.strip()}")
    return [document for document in yaml.safe_load_all(result.stdout) if document]


def render(target: str, components: tuple[str, ...] = (), repo: Path = REPO_ROOT) -> list[dict]:
    """Render a target, optionally with extra components (e.g. `migration`) composed on top of it.

    The extra components get the target's namespace and labels, as if the target listed them itself."""
    directory = target_dir(target, repo)
    if not components:
        return kustomize(directory)
    own = yaml.safe_load((directory / "kustomization.yaml").read_text())
    with tempfile.TemporaryDirectory(prefix="jan-render-") as scratch:
        # kustomize accepts only relative paths to other kustomizations.
        composed = {
            "apiVersion": "kustomize.config.k8s.io/v1beta1",
            "kind": "Kustomization",
            **{key: own[key] for key in ("namespace", "labels") if key in own},
            "resources": [os.path.relpath(directory, scratch)],
            "components": [os.path.relpath(repo / "knative" / "components" / name, scratch) for name in components],
        }
        Path(scratch, "kustomization.yaml").write_text(yaml.safe_dump(composed, sort_keys=False))
        return kustomize(Path(scratch))


def dump(documents: list[dict]) -> str:
    return yaml.safe_dump_all(documents, sort_keys=False)


def is_knative_service(document: dict) -> bool:
    return document.get("apiVersion") == KNATIVE_SERVICE_API and document.get("kind") == "Service"


def knative_services(documents: list[dict]) -> dict[str, dict]:
    return {document["metadata"]["name"]: document for document in documents if is_knative_service(document)}


def find(documents: list[dict], kind: str, name: str, api_version: str | None = None) -> dict | None:
    for document in documents:
        if document.get("kind") == kind and document["metadata"].get("name") == name:
            if api_version is None or document.get("apiVersion") == api_version:
                return document
    return None


def pod_specs(document: dict) -> list[dict]:
    """The pod spec of a workload (Deployment, StatefulSet, Job, CronJob, Knative Service), if it is one."""
    spec = document.get("spec") or {}
    if document.get("kind") == "CronJob":
        spec = (spec.get("jobTemplate") or {}).get("spec") or {}
    template = spec.get("template") or {}
    return [template["spec"]] if isinstance(template.get("spec"), dict) else []


def containers(document: dict) -> list[dict]:
    return [
        container
        for pod in pod_specs(document)
        for container in (pod.get("initContainers") or []) + (pod.get("containers") or [])
    ]
