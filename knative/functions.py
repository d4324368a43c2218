"""What follows from the function manifests (functions/*/function.toml) for the deploy tree, written as committed
files so kustomize and skaffold read plain YAML:

* knative/base/functions/<name>.yaml, each function's Knative Service, and that folder's kustomization.yaml;
* skaffold.yaml's function artifacts and the dev profile's per-artifact patches (the blocks between the
  `BEGIN functions` / `END functions` markers; everything else in skaffold.yaml is hand-written).

  python -m knative.functions write    rewrite them from the manifests (make new-function runs it)
  python -m knative.functions check    list what is out of date (the deploy checks fail on the same list)
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import yaml

from knative.render import REPO_ROOT
from shared import function_manifest
from shared.function_manifest import FunctionManifest

SERVICES_DIR = Path("knative") / "base" / "functions"
SKAFFOLD = Path("skaffold.yaml")
HEADER = ("# Written by `python -m knative.functions write` from functions/{name}/function.toml; do not edit by "
          "hand.\n")
KEYS_MOUNT = "/var/run/secrets/jan"
BEGIN, END = "# BEGIN functions", "# END functions"
# The request timeout jan-config's UPSTREAM_TIMEOUT_SECONDS and the default JOB_MAX_DURATION_SECONDS are sized for.
PLATFORM_TIMEOUT_SECONDS = 600
UPSTREAM_MARGIN_SECONDS, JOB_MARGIN_SECONDS = 30, 60


def knative_service(manifest: FunctionManifest) -> dict:
    """The function's Knative Service: cluster-local (only Kong is public), scale to zero, the image jan-<name>,
    the shared configuration, the database, the public keys, and only the private keys the manifest names."""
    env = [
        {"name": "DATABASE_URL", "valueFrom": {"secretKeyRef": {"name": "jan-database", "key": "DATABASE_URL"}}},
        {"name": "JWKS", "valueFrom": {"configMapKeyRef": {"name": "jan-jwks", "key": "jwks.json"}}},
    ]
    # Private keys are files in a read-only volume, never variables (they would show in /proc and crash reports).
    key_files = [function_manifest.KEY_FILES[key] for key in manifest.keys]
    env += [{"name": variable, "value": f"{KEYS_MOUNT}/{filename}"} for filename, variable in key_files]
    env += [{"name": variable, "valueFrom": {"secretKeyRef": {"name": secret, "key": key}}}
            for variable, secret, key in manifest.secrets]
    if manifest.issuer:
        # Who may ask the issuer for delegation and service tokens (docs/architecture.md "Service identity").
        env.append({"name": "SERVICE_CREDENTIAL_HASHES", "valueFrom": {"secretKeyRef": {
            "name": "jan-service-credentials", "key": "service-credential-hashes"}}})
    if manifest.timeout_seconds < PLATFORM_TIMEOUT_SECONDS:
        # Shorter than the platform's defaults (jan-config): an upstream call ends in the function's own 504 and a
        # job (which runs inside one request, shared/jobs.py) ends before Knative cuts the request.
        env += [{"name": "UPSTREAM_TIMEOUT_SECONDS", "value": str(manifest.timeout_seconds - UPSTREAM_MARGIN_SECONDS)},
                {"name": "JOB_MAX_DURATION_SECONDS", "value": str(manifest.timeout_seconds - JOB_MARGIN_SECONDS)}]
    # Behind the queue-proxy every peer is 127.0.0.1; Kong sets X-Real-IP to the connection's address (replacing
    # whatever the client sent), so per-address limits count clients, not one bucket.
    env.append({"name": "CLIENT_ADDRESS_HEADER", "value": "X-Real-IP"})
    mounts = [{"name": "keys", "mountPath": KEYS_MOUNT, "readOnly": True}] if key_files else []
    volumes = [{"name": "keys", "secret": {"secretName": "jan-keys",
                                           "items": [{"key": f, "path": f} for f, _variable in key_files]}}]
    volumes = volumes if key_files else []
    container = {
        "name": manifest.name,
        "image": manifest.image,
        "ports": [{"name": "http1", "containerPort": 8080}],
        "envFrom": [{"configMapRef": {"name": "jan-config"}}],
        "env": env,
        "readinessProbe": {"httpGet": {"path": "/readyz"}},
        "livenessProbe": {"httpGet": {"path": "/healthz"}, "periodSeconds": 10, "timeoutSeconds": 2,
                          "failureThreshold": 3},
        "resources": {"requests": {"cpu": manifest.cpu_request, "memory": manifest.memory_request},
                      "limits": {"memory": manifest.memory_limit}},
        "securityContext": {"runAsNonRoot": True, "runAsUser": 10001, "runAsGroup": 10001,
                            "allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                            "capabilities": {"drop": ["ALL"]}, "seccompProfile": {"type": "RuntimeDefault"}},
        # The root filesystem is read-only; request bodies that spill to disk go to /tmp.
        "volumeMounts": [*mounts, {"name": "tmp", "mountPath": "/tmp"}],
    }
    return {
        "apiVersion": "serving.knative.dev/v1",
        "kind": "Service",
        "metadata": {
            "name": manifest.name,
            "labels": {"networking.knative.dev/visibility": "cluster-local", "app.kubernetes.io/name": manifest.name,
                       "app.kubernetes.io/component": "function",
                       **({"jan.ai/always-on": "true"} if manifest.always_on else {})},
        },
        "spec": {"template": {
            # No revision name: named revisions are written per rollout by knative/rollout.py.
            "metadata": {"annotations": {
                "autoscaling.knative.dev/min-scale": str(manifest.min_scale),
                "autoscaling.knative.dev/max-scale": str(manifest.max_scale),
                "autoscaling.knative.dev/metric": "concurrency",
                "autoscaling.knative.dev/target": str(manifest.concurrency_target),
            }},
            "spec": {
                "containerConcurrency": manifest.container_concurrency,
                "timeoutSeconds": manifest.timeout_seconds,
                "responseStartTimeoutSeconds": manifest.response_start_timeout_seconds,
                "automountServiceAccountToken": False,
                "enableServiceLinks": False,
                "containers": [container],
                "volumes": [*volumes, {"name": "tmp", "emptyDir": {"sizeLimit": "256Mi"}}],
            },
        }},
    }


def artifact(manifest: FunctionManifest) -> dict:
    return {"image": manifest.image,
            "docker": {"dockerfile": "Dockerfile", "target": "function", "buildArgs": manifest.build_args}}


def dev_patches(index: int, manifest: FunctionManifest) -> list[dict]:
    """skaffold dev: the writable, auto-reloading image and the files synced into it."""
    return [
        {"op": "replace", "path": f"/build/artifacts/{index}/docker/target", "value": "function-dev"},
        {"op": "add", "path": f"/build/artifacts/{index}/sync", "value": {"manual": [
            {"src": "shared/**/*.py", "dest": "."},
            {"src": f"functions/{manifest.name}/**/*.py", "dest": "."},
        ]}},
    ]


def _block(items: list[dict], indent: int) -> str:
    text = yaml.safe_dump(items, sort_keys=False, default_flow_style=False)
    return "".join(" " * indent + line + "\n" for line in text.splitlines())


def skaffold_text(current: str, manifests: list[FunctionManifest]) -> str:
    """skaffold.yaml with its two generated blocks (artifacts first, then the dev patches) rewritten."""
    blocks = [
        [artifact(manifest) for manifest in manifests],
        [patch for index, manifest in enumerate(manifests) for patch in dev_patches(index, manifest)],
    ]
    parts = current.split(BEGIN)
    if len(parts) != len(blocks) + 1:
        raise ValueError(f"skaffold.yaml must hold {len(blocks)} `{BEGIN}` markers, found {len(parts) - 1}")
    text = parts[0]
    for items, part in zip(blocks, parts[1:]):
        marker_line, _, rest = part.partition("\n")
        if END not in rest:
            raise ValueError(f"skaffold.yaml: a `{BEGIN}` block has no `{END}`")
        end_indent = rest[:rest.index(END)].rsplit("\n", 1)[-1]
        indent = len(end_indent)
        text += BEGIN + marker_line + "\n" + _block(items, indent) + end_indent + END + rest.split(END, 1)[1]
    return text


def expected_files(repo: Path = REPO_ROOT) -> dict[Path, str]:
    """Every generated file (relative to the repository) with the content the manifests give it."""
    manifests = list(function_manifest.all_manifests(repo).values())
    files = {}
    for manifest in manifests:
        files[SERVICES_DIR / f"{manifest.name}.yaml"] = (
            HEADER.format(name=manifest.name) + yaml.safe_dump(knative_service(manifest), sort_keys=False))
    kustomization = {"apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization",
                     "resources": [f"{manifest.name}.yaml" for manifest in manifests]}
    files[SERVICES_DIR / "kustomization.yaml"] = (HEADER.format(name="*") +
                                                  yaml.safe_dump(kustomization, sort_keys=False))
    files[SKAFFOLD] = skaffold_text((repo / SKAFFOLD).read_text(), manifests)
    return files


def out_of_date(repo: Path = REPO_ROOT) -> list[str]:
    """Generated files that differ from what the manifests give, and Service files no manifest declares."""
    expected = expected_files(repo)
    found = [f"{path} is out of date with the function manifests (python -m knative.functions write)"
             for path, text in expected.items()
             if not (repo / path).is_file() or (repo / path).read_text() != text]
    found += [f"{path.relative_to(repo)} belongs to no function manifest (remove it, or add the manifest)"
              for path in sorted((repo / SERVICES_DIR).glob("*.yaml")) if path.relative_to(repo) not in expected]
    return found


def write(repo: Path = REPO_ROOT) -> list[Path]:
    written = []
    for path, text in expected_files(repo).items():
        target = repo / path
        if not target.is_file() or target.read_text() != text:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text)
            written.append(path)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m knative.functions", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=("write", "check"))
    args = parser.parse_args(argv)
    if args.command == "write":
        for path in write():
            print(f"wrote {path}")
        return 0
    problems = out_of_date()
    for problem in problems:
        print(problem, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
