"""`make deploy` (python -m knative.deploy apply) and skaffold's hook (prepare), against a stand-in kubectl
(tests/deploy/fake_kubectl.py): the platform around the functions first, then the migration Job under a name
unique to the rollout, awaited, and only then the functions; a failed migration leaves the functions alone."""
from __future__ import annotations

import base64
import hashlib
import json
import re
import sys

import pytest

from knative import deploy, render
from shared import keys

DATABASE = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "jan-database", "namespace": "jan"},
            "data": {"DATABASE_URL": base64.b64encode(b"postgresql+psycopg://jan@db/jan").decode()}}


@pytest.fixture
def cluster(tmp_path, monkeypatch):
    """The fake cluster: its state (objects by kind/name) and the log of kubectl calls."""
    script = tmp_path / "kubectl"
    fake = render.REPO_ROOT / "tests" / "deploy" / "fake_kubectl.py"
    script.write_text(f"#!{sys.executable}\nimport runpy\nrunpy.run_path({str(fake)!r}, run_name='__main__')\n")
    script.chmod(0o755)
    state, log = tmp_path / "state.json", tmp_path / "log.jsonl"
    state.write_text(json.dumps({"Secret/jan-database": DATABASE}))
    monkeypatch.setenv("KUBECTL", str(script))
    monkeypatch.setenv("FAKE_KUBECTL_STATE", str(state))
    monkeypatch.setenv("FAKE_KUBECTL_LOG", str(log))
    monkeypatch.setattr(deploy, "JOB_POLL_SECONDS", 0.01)

    class Cluster:
        def calls(self) -> list[dict]:
            return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []

        def objects(self) -> dict:
            return json.loads(state.read_text())

        def forget(self, key: str) -> None:
            current = self.objects()
            del current[key]
            state.write_text(json.dumps(current))

    return Cluster()


def applied_kinds(call: dict) -> set[tuple[str, str]]:
    return {(item["kind"], item["metadata"]["name"]) for item in call["objects"]}


def test_apply_migrates_between_the_platform_and_the_functions(cluster):
    assert deploy.main(["apply", "--target", "prod-gpu", "--registry", "registry.example", "--tag", "v1"]) == 0
    calls = cluster.calls()
    commands = [call["argv"][0] for call in calls]
    first_apply = calls[commands.index("apply")]
    assert ("Deployment", "kong") in applied_kinds(first_apply) and ("Deployment", "vllm") in applied_kinds(first_apply)
    assert not [k for k in applied_kinds(first_apply) if k[0] == "Job" or
                (k[0] == "Service" and k[1] in render.function_names())]

    job_call = next(call for call in calls if call["argv"][0] == "create" and call["objects"][0]["kind"] == "Job")
    job = job_call["objects"][0]
    assert re.fullmatch(r"jan-migrate-\d{8}-\d{6}-[0-9a-f]{4}", job["metadata"]["name"])
    assert render.containers(job)[0]["image"] == "registry.example/jan-migrate:v1"
    functions_apply = [i for i, call in enumerate(calls) if call["argv"][0] == "apply" and
                       any(render.is_knative_service(item) for item in call["objects"])]
    assert len(functions_apply) == 1 and functions_apply[0] > calls.index(job_call)
    services = {item["metadata"]["name"]: item for item in calls[functions_apply[0]]["objects"]
                if render.is_knative_service(item)}
    assert sorted(services) == render.function_names()
    for name, service in services.items():
        assert render.containers(service)[0]["image"] == f"registry.example/jan-{name}:v1"
    waits = [call["argv"][:2] for call in calls[functions_apply[0] + 1:]]
    assert waits == [["wait", f"ksvc/{name}"] for name in render.function_names()]


def test_keys_are_created_once_and_the_jwks_matches_the_signing_key(cluster):
    assert deploy.main(["prepare", "--target", "prod-gpu", "--migrate-image", "m:1"]) == 0
    objects = cluster.objects()
    pem = base64.b64decode(objects["Secret/jan-keys"]["data"][deploy.SIGNING_KEY_FILE]).decode()
    jwks = json.loads(objects["ConfigMap/jan-jwks"]["data"][deploy.JWKS_FILE])
    assert jwks == keys.jwks_for_private_pem(pem)
    assert deploy.main(["prepare", "--target", "prod-gpu", "--migrate-image", "m:2"]) == 0
    assert cluster.objects()["Secret/jan-keys"] == objects["Secret/jan-keys"]
    credentials = objects["Secret/jan-service-credentials"]["data"]
    sweeper = base64.b64decode(credentials[deploy.SWEEPER_CREDENTIAL_KEY]).decode()
    assert base64.b64decode(credentials[deploy.CREDENTIAL_HASHES_KEY]).decode() == \
        f"jobs-sweeper:{hashlib.sha256(sweeper.encode()).hexdigest()}"
    assert cluster.objects()["Secret/jan-service-credentials"] == objects["Secret/jan-service-credentials"]
    creates = [call for call in cluster.calls() if call["argv"][0] == "create"]
    assert [item["kind"] for call in creates for item in call["objects"]] == [
        "Secret", "Secret", "ConfigMap", "Job", "Job"]


def test_every_rollout_gets_its_own_migration_job(cluster):
    for image in ("m:1", "m:2"):
        assert deploy.main(["prepare", "--target", "prod-cpu", "--migrate-image", image]) == 0
    names = [key for key in cluster.objects() if key.startswith("Job/")]
    assert len(names) == 2


def test_failed_migration_leaves_the_functions_alone(cluster, monkeypatch, capsys):
    monkeypatch.setenv("FAKE_JOB_RESULT", "Failed")
    assert deploy.main(["apply", "--target", "prod-gpu", "--tag", "v1"]) == 1
    error = capsys.readouterr().err
    assert "failed; the functions were not changed" in error and "fake log" in error
    assert not [call for call in cluster.calls() if call["argv"][0] == "apply"
                and any(render.is_knative_service(item) for item in call["objects"])]


def test_production_needs_its_database_secret_first(cluster, capsys):
    cluster.forget("Secret/jan-database")
    assert deploy.main(["prepare", "--target", "prod-gpu", "--migrate-image", "m:1"]) == 1
    assert "kubectl create secret generic jan-database" in capsys.readouterr().err
    assert not [key for key in cluster.objects() if key.startswith("Job/")]


def test_development_brings_its_own_database_secret(cluster):
    cluster.forget("Secret/jan-database")
    assert deploy.main(["prepare", "--target", "dev-cpu", "--migrate-image", "m:1"]) == 0
    applied = {k for call in cluster.calls() if call["argv"][0] == "apply" for k in applied_kinds(call)}
    assert ("Secret", "jan-database") in applied and ("StatefulSet", "postgres") in applied
    assert ("Deployment", "model-server") not in applied, "it waits for skaffold to build its image"


def test_skaffold_hook_without_the_migration_image_explains(cluster, tmp_path, capsys):
    assert deploy.main(["prepare", "--target", "dev-cpu", "--migrate-image-file", str(tmp_path / "none")]) == 1
    assert "--cache-artifacts=false" in capsys.readouterr().err
