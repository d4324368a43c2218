"""skaffold.yaml checked without skaffold: the v4beta14 JSON schema, for the file and for the configuration each
documented profile combination resolves to (profile patches carry values the schema cannot see in place), and our
rules tying its artifacts, targets, hooks and port-forward to the manifests."""
from __future__ import annotations

import json
from pathlib import Path

import jsonschema

from knative import deploy, render, skaffold
from shared import function_manifest

SCHEMA_FILE = Path(__file__).resolve().parent / "schemas" / "skaffold-v4beta14.json"
API_VERSION = "skaffold/v4beta14"
MIGRATION_IMAGE_FILE = ".skaffold/jan-migrate.image"
# (profiles, skaffold command) -> the target it must deploy; the combinations skaffold.yaml documents.
COMBINATIONS = {
    ((), "dev"): "dev-cpu",
    ((), "run"): "prod-gpu",
    (("prod", "gpu"), "run"): "prod-gpu",
    (("prod", "cpu"), "run"): "prod-cpu",
}


def schema_problems(config: dict, where: str) -> list[str]:
    validator = jsonschema.Draft7Validator(json.loads(SCHEMA_FILE.read_text()))
    found = []
    for error in validator.iter_errors(config):
        for leaf in _deepest(error):
            path = ".".join(str(part) for part in leaf.absolute_path) or "(root)"
            found.append(f"schema ({where}): {path}: {leaf.message}")
    return sorted(set(found))


def _deepest(error: jsonschema.ValidationError) -> list[jsonschema.ValidationError]:
    """The schema's `anyOf` alternatives (one per builder, deployer, ...) each fail somewhere; the ones that got
    furthest into the document say what is wrong."""
    if not error.context:
        return [error]
    depth = max(len(child.absolute_path) for child in error.context)
    return [leaf for child in error.context if len(child.absolute_path) == depth for leaf in _deepest(child)]


def problems(config: dict, renders: dict[str, list[dict]]) -> list[str]:
    found = schema_problems(config, "skaffold.yaml")
    if config.get("apiVersion") != API_VERSION:
        found.append(f"apiVersion must be {API_VERSION}")
    for (profiles, command), target in COMBINATIONS.items():
        where = f"skaffold {command} -p {','.join(profiles)}" if profiles else f"skaffold {command}"
        try:
            resolved = skaffold.resolve(config, list(profiles), command)
        except (skaffold.ProfileError, ValueError) as error:
            found.append(f"profiles ({where}): {error}")
            continue
        found += schema_problems(resolved, where)
        found += _combination_problems(resolved, target, renders[target], where, command == "dev")
    return found


def _combination_problems(resolved: dict, target: str, documents: list[dict], where: str, dev: bool) -> list[str]:
    found = []
    if skaffold.manifest_paths(resolved) != [f"knative/targets/{target}"]:
        found.append(f"target ({where}): deploys {skaffold.manifest_paths(resolved)}, "
                     f"expected knative/targets/{target}")
    hooks = (((resolved.get("deploy") or {}).get("kubectl") or {}).get("hooks") or {}).get("before") or []
    commands = [hook.get("host", {}).get("command", []) for hook in hooks]
    expected_hook = ["python3", "-m", "knative.deploy", "prepare", "--target", target,
                     "--migrate-image-file", MIGRATION_IMAGE_FILE]
    if commands != [expected_hook]:
        found.append(f"migration hook ({where}): before-deploy must run {' '.join(expected_hook)}, found {commands}")

    artifacts = {artifact["image"]: artifact for artifact in skaffold.artifacts(resolved)}
    used = {container.get("image") for document in documents for container in render.containers(document)}
    for image in sorted(set(artifacts) - used):
        found.append(f"artifact ({where}): {image} is not used by any manifest of {target}")
    for image in sorted(image for image in used if image and image.startswith("jan-") and image not in artifacts):
        found.append(f"artifact ({where}): {image} is used by {target} but no artifact builds it")
    for function, manifest in function_manifest.all_manifests(render.REPO_ROOT).items():
        artifact = artifacts.get(manifest.image)
        if artifact is None:
            found.append(f"artifact ({where}): function {function} has no artifact jan-{function}")
            continue
        docker = artifact.get("docker") or {}
        if docker.get("target") != ("function-dev" if dev else "function") or \
                (docker.get("buildArgs") or {}).get("FUNCTION") != function:
            found.append(f"artifact ({where}): jan-{function} must build Dockerfile target "
                         f"{'function-dev' if dev else 'function'} with FUNCTION={function}")
        if (docker.get("buildArgs") or {}).get("EXTRAS") != manifest.build_args["EXTRAS"]:
            found.append(f"artifact ({where}): jan-{function} must install EXTRAS={manifest.build_args['EXTRAS']} "
                         f"(its function.toml), found {(docker.get('buildArgs') or {}).get('EXTRAS')}")
        if dev:
            sources = {rule.get("src") for rule in ((artifact.get("sync") or {}).get("manual") or [])}
            if not {"shared/**/*.py", f"functions/{function}/**/*.py"} <= sources:
                found.append(f"file sync ({where}): jan-{function} must sync shared/ and functions/{function}/")
    migrate = artifacts.get(deploy.MIGRATION_IMAGE, {})
    writes = [" ".join(hook.get("command", [])) for hook in (migrate.get("hooks") or {}).get("after") or []]
    if not any(MIGRATION_IMAGE_FILE in command and "$SKAFFOLD_IMAGE" in command for command in writes):
        found.append(f"migration hook ({where}): jan-migrate must write $SKAFFOLD_IMAGE to {MIGRATION_IMAGE_FILE}")
    if dev:
        forwards = resolved.get("portForward") or []
        kong = [f for f in forwards if f.get("resourceName") == "kong-proxy" and f.get("localPort") == 8000]
        service = render.find(documents, "Service", "kong-proxy", api_version="v1") or {"spec": {}}
        ports = {port.get("port") for port in service["spec"].get("ports") or []}
        if not kong or kong[0].get("port") not in ports or kong[0].get("namespace") != deploy.namespace_of(documents):
            found.append(f"port-forward ({where}): Kong (service kong-proxy) must be forwarded to localhost:8000")
    return found
