"""Deploying a target in order: the platform around the functions, then the migration Job (a name unique to the
rollout) to completion, then the functions.

  python -m knative.deploy apply --target prod-gpu --registry REGISTRY --tag TAG     (make deploy)
  python -m knative.deploy prepare --target dev-cpu --migrate-image-file FILE        (skaffold's before-deploy hook)

`prepare` is the first two steps; skaffold itself applies the functions afterwards. Both create the token signing
key, its public JWKS, the provider-key encryption key and the service credentials when the cluster has none yet,
and never replace them.
KUBECTL selects the kubectl binary for cluster commands.
"""
from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import secrets
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

from knative import render, skaffold

MIGRATION_COMPONENT = "migration"
MIGRATION_JOB = "jan-migrate"
MIGRATION_IMAGE = "jan-migrate"

# Cluster objects the manifests refer to but never contain: created here (keys) or by the operator (database).
KEYS_SECRET = "jan-keys"
SIGNING_KEY_FILE = "token-signing-key.pem"
ENCRYPTION_KEY_FILE = "provider-key-encryption.key"
JWKS_CONFIGMAP = "jan-jwks"
JWKS_FILE = "jwks.json"
DATABASE_SECRET = "jan-database"
DATABASE_URL_KEY = "DATABASE_URL"
# Service identity: each calling service's credential, and their SHA-256 hashes for the llm issuer.
SERVICE_CREDENTIALS_SECRET = "jan-service-credentials"
SWEEPER_CREDENTIAL_KEY = "jobs-sweeper"
CREDENTIAL_HASHES_KEY = "service-credential-hashes"
EXTERNAL_OBJECTS = {
    ("Secret", KEYS_SECRET): {SIGNING_KEY_FILE, ENCRYPTION_KEY_FILE},
    ("ConfigMap", JWKS_CONFIGMAP): {JWKS_FILE},
    ("Secret", DATABASE_SECRET): {DATABASE_URL_KEY},
    ("Secret", SERVICE_CREDENTIALS_SECRET): {SWEEPER_CREDENTIAL_KEY, CREDENTIAL_HASHES_KEY},
    # Kong's rate-limit Redis password (production; development renders its own).
    ("Secret", "jan-redis"): {"password"},
    # The realtime function's LiveKit API key pair (functions/realtime/function.toml secret_env).
    ("Secret", "jan-livekit"): {"api-key", "api-secret"},
    # Only with knative/components/keycloak.
    ("Secret", "jan-oidc"): {"client-secret"},
}

JOB_POLL_SECONDS = 5.0
FUNCTIONS_READY_TIMEOUT = "600s"


class DeployError(RuntimeError):
    pass


class Kubectl:
    def __init__(self, binary: str | None = None):
        self.binary = binary or os.environ.get("KUBECTL", "kubectl")

    def run(self, *args: str, stdin: str | None = None, check: bool = True) -> subprocess.CompletedProcess:
        result = subprocess.run([self.binary, *args], input=stdin, capture_output=True, text=True)
        if check and result.returncode != 0:
            raise DeployError(f"kubectl {' '.join(args)} failed:\n{result.stderr.strip()}")
        return result

    def apply(self, documents: list[dict]) -> None:
        if documents:
            print(self.run("apply", "-f", "-", stdin=render.dump(documents)).stdout, end="")

    def create(self, documents: list[dict]) -> None:
        print(self.run("create", "-f", "-", stdin=render.dump(documents)).stdout, end="")

    def get(self, kind: str, name: str, namespace: str) -> dict | None:
        result = self.run("get", kind, name, "--namespace", namespace, "--output", "json", check=False)
        if result.returncode == 0:
            return json.loads(result.stdout)
        if "NotFound" in result.stderr:
            return None
        raise DeployError(f"kubectl get {kind} {name} failed:\n{result.stderr.strip()}")


def built_images() -> set[str]:
    """The images this repository builds (skaffold.yaml's artifacts, every profile)."""
    return {artifact["image"] for artifact in skaffold.all_artifacts(skaffold.load())}


def uses_built_image(document: dict, images: set[str]) -> bool:
    return any(container.get("image") in images for container in render.containers(document))


def is_migration_job(document: dict) -> bool:
    return document.get("kind") == "Job" and document["metadata"]["name"] == MIGRATION_JOB


def platform_around_functions(documents: list[dict], images: set[str]) -> list[dict]:
    """What must exist before the migration runs: everything but the functions, the migration Job and the
    workloads that run images built here (those wait for their build)."""
    return [
        document
        for document in documents
        if not render.is_knative_service(document)
        and not is_migration_job(document)
        and not uses_built_image(document, images)
    ]


def with_registry(documents: list[dict], images: set[str], registry: str, tag: str) -> list[dict]:
    """The documents with every built image (`jan-llm`) replaced by its pushed reference (`REGISTRY/jan-llm:TAG`).
    Images pinned elsewhere, such as a rollout's candidate, are left as they are."""
    prefix = f"{registry.rstrip('/')}/" if registry else ""
    for document in documents:
        for container in render.containers(document):
            if container.get("image") in images:
                container["image"] = f"{prefix}{container['image']}:{tag}"
    return documents


def rollout_id() -> str:
    return f"{datetime.now(timezone.utc):%Y%m%d-%H%M%S}-{secrets.token_hex(2)}"


def migration_job(documents: list[dict], image: str, rollout: str) -> dict:
    jobs = [document for document in documents if is_migration_job(document)]
    if len(jobs) != 1:
        raise DeployError(f"expected one {MIGRATION_JOB} Job in the render, found {len(jobs)}")
    job = jobs[0]
    job["metadata"]["name"] = f"{MIGRATION_JOB}-{rollout}"
    for container in render.containers(job):
        if container.get("image") == MIGRATION_IMAGE:
            container["image"] = image
    return job


def namespace_of(documents: list[dict]) -> str:
    namespaces = {document["metadata"]["name"] for document in documents if document.get("kind") == "Namespace"}
    if len(namespaces) != 1:
        raise DeployError(f"the render must hold exactly one Namespace, found {sorted(namespaces)}")
    return namespaces.pop()


def ensure_keys(kubectl: Kubectl, namespace: str) -> None:
    """Create the signing key, encryption key, public JWKS and service credentials once; existing ones are kept
    (replacing the signing key would invalidate every issued token)."""
    from shared import keys

    if kubectl.get("secret", KEYS_SECRET, namespace) is None:
        print(f"creating Secret {KEYS_SECRET}: a new token signing key and provider-key encryption key")
        kubectl.create([_secret(KEYS_SECRET, namespace, {
            SIGNING_KEY_FILE: keys.generate_signing_key_pem(),
            ENCRYPTION_KEY_FILE: keys.generate_encryption_key(),
        })])
    if kubectl.get("secret", SERVICE_CREDENTIALS_SECRET, namespace) is None:
        print(f"creating Secret {SERVICE_CREDENTIALS_SECRET}: the job sweep's service credential and its hash")
        credential = secrets.token_urlsafe(32)
        digest = hashlib.sha256(credential.encode()).hexdigest()
        kubectl.create([_secret(SERVICE_CREDENTIALS_SECRET, namespace, {
            SWEEPER_CREDENTIAL_KEY: credential,
            CREDENTIAL_HASHES_KEY: f"{SWEEPER_CREDENTIAL_KEY}:{digest}",
        })])
    if kubectl.get("configmap", JWKS_CONFIGMAP, namespace) is None:
        secret = kubectl.get("secret", KEYS_SECRET, namespace) or {}
        pem = base64.b64decode(secret.get("data", {}).get(SIGNING_KEY_FILE, "")).decode()
        if not pem:
            raise DeployError(f"Secret {KEYS_SECRET} has no {SIGNING_KEY_FILE}")
        print(f"creating ConfigMap {JWKS_CONFIGMAP}: the public key set of the token signing key")
        kubectl.create([{
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": JWKS_CONFIGMAP, "namespace": namespace},
            "data": {JWKS_FILE: json.dumps(keys.jwks_for_private_pem(pem))},
        }])


def require_database(kubectl: Kubectl, namespace: str) -> None:
    if kubectl.get("secret", DATABASE_SECRET, namespace) is None:
        raise DeployError(
            f"Secret {DATABASE_SECRET} is missing in namespace {namespace}. Create it with the database URL:\n"
            f"  kubectl create secret generic {DATABASE_SECRET} --namespace {namespace} "
            f"--from-literal={DATABASE_URL_KEY}='postgresql+psycopg://USER:PASSWORD@HOST:5432/DB'"
        )


def run_migration(kubectl: Kubectl, job: dict) -> None:
    name, namespace = job["metadata"]["name"], job["metadata"]["namespace"]
    kubectl.create([job])
    deadline = time.monotonic() + job["spec"].get("activeDeadlineSeconds", 900) + 60
    while time.monotonic() < deadline:
        status = (kubectl.get("job", name, namespace) or {}).get("status", {})
        conditions = {c["type"]: c["status"] for c in status.get("conditions") or []}
        if conditions.get("Complete") == "True":
            print(f"job/{name} completed")
            return
        if conditions.get("Failed") == "True":
            logs = kubectl.run("logs", f"job/{name}", "--namespace", namespace, "--tail=200", check=False)
            raise DeployError(f"job/{name} failed; the functions were not changed.\n{logs.stdout}{logs.stderr}")
        time.sleep(JOB_POLL_SECONDS)
    raise DeployError(f"job/{name} did not finish in time; the functions were not changed")


def prepare(target: str, migrate_image: str, kubectl: Kubectl, images: set[str]) -> None:
    documents = render.render(target, components=(MIGRATION_COMPONENT,))
    namespace = namespace_of(documents)
    kubectl.apply(platform_around_functions(documents, images))
    ensure_keys(kubectl, namespace)
    require_database(kubectl, namespace)
    run_migration(kubectl, migration_job(documents, migrate_image, rollout_id()))


def apply(target: str, registry: str, tag: str, kubectl: Kubectl) -> None:
    images = built_images()
    prefix = f"{registry.rstrip('/')}/" if registry else ""
    prepare(target, f"{prefix}{MIGRATION_IMAGE}:{tag}", kubectl, images)
    documents = with_registry(render.render(target), images, registry, tag)
    kubectl.apply(documents)
    namespace = namespace_of(documents)
    for name in render.knative_services(documents):
        kubectl.run("wait", f"ksvc/{name}", "--namespace", namespace, "--for=condition=Ready",
                    f"--timeout={FUNCTIONS_READY_TIMEOUT}")
        print(f"ksvc/{name} ready")


def _secret(name: str, namespace: str, string_data: dict[str, str]) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": namespace},
        "type": "Opaque",
        "stringData": string_data,
    }


def _migrate_image(args: argparse.Namespace) -> str:
    if args.migrate_image:
        return args.migrate_image
    path = Path(args.migrate_image_file)
    image = path.read_text().strip() if path.is_file() else ""
    if not image:
        raise DeployError(
            f"{path} names no migration image: skaffold writes it after building jan-migrate, which it skips when "
            "the image is cached; run once with --cache-artifacts=false"
        )
    return image


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m knative.deploy", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    prepare_parser = commands.add_parser("prepare", help="platform around the functions, then the migration Job")
    prepare_parser.add_argument("--target", required=True, choices=render.target_names())
    source = prepare_parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--migrate-image", help="the migration image reference")
    source.add_argument("--migrate-image-file", help="a file holding the migration image reference")
    apply_parser = commands.add_parser("apply", help="prepare, then the functions, then wait until they are ready")
    apply_parser.add_argument("--target", required=True, choices=render.target_names())
    apply_parser.add_argument("--registry", default="", help="where `make images` pushed, e.g. ghcr.io/acme")
    apply_parser.add_argument("--tag", required=True)
    args = parser.parse_args(argv)
    kubectl = Kubectl()
    try:
        if args.command == "prepare":
            prepare(args.target, _migrate_image(args), kubectl, built_images())
        else:
            apply(args.target, args.registry, args.tag, kubectl)
    except (DeployError, render.RenderError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
