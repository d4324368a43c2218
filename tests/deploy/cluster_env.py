"""The environment a function's container gets from its Knative Service, reproduced outside a cluster: rendered
ConfigMaps as they are, the objects knative/deploy.py creates (keys, JWKS, service credentials) and the database Secret filled with test
values, secret volumes written to files (and the variables naming them pointed there)."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

from knative import deploy, render
from shared import keys


def outside_values(database_url: str) -> dict[tuple[str, str, str], str]:
    """(kind, name, key) -> value for what the manifests refer to but do not contain."""
    signing_key = keys.generate_signing_key_pem()
    return {
        ("Secret", deploy.KEYS_SECRET, deploy.SIGNING_KEY_FILE): signing_key,
        ("Secret", deploy.KEYS_SECRET, deploy.ENCRYPTION_KEY_FILE): keys.generate_encryption_key(),
        ("ConfigMap", deploy.JWKS_CONFIGMAP, deploy.JWKS_FILE): json.dumps(keys.jwks_for_private_pem(signing_key)),
        ("Secret", deploy.DATABASE_SECRET, deploy.DATABASE_URL_KEY): database_url,
        ("Secret", deploy.SERVICE_CREDENTIALS_SECRET, deploy.SWEEPER_CREDENTIAL_KEY): "sweeper-credential",
        ("Secret", deploy.SERVICE_CREDENTIALS_SECRET, deploy.CREDENTIAL_HASHES_KEY):
            "jobs-sweeper:" + hashlib.sha256(b"sweeper-credential").hexdigest(),
        ("Secret", "jan-livekit", "api-key"): "livekit-test-key",
        ("Secret", "jan-livekit", "api-secret"): "livekit-test-secret-of-at-least-32-characters",
    }


def environment(service: dict, documents: list[dict], values: dict, files: Path) -> dict[str, str]:
    pod = service["spec"]["template"]["spec"]
    container = pod["containers"][0]

    def lookup(kind: str, name: str, key: str) -> str:
        rendered = render.find(documents, kind, name)
        return (rendered or {}).get("data", {}).get(key) or values[(kind, name, key)]

    variables: dict[str, str] = {}
    for source in container.get("envFrom") or []:
        variables.update(render.find(documents, "ConfigMap", source["configMapRef"]["name"])["data"])
    for variable in container.get("env") or []:
        reference = variable.get("valueFrom") or {}
        if "value" in variable:
            variables[variable["name"]] = variable["value"]
        for field, kind in (("secretKeyRef", "Secret"), ("configMapKeyRef", "ConfigMap")):
            if field in reference:
                variables[variable["name"]] = lookup(kind, reference[field]["name"], reference[field]["key"])
    volumes = {volume["name"]: volume for volume in pod.get("volumes") or []}
    for mount in container.get("volumeMounts") or []:
        secret = volumes[mount["name"]].get("secret")
        if secret is None:
            continue
        folder = files / mount["name"]
        folder.mkdir(parents=True, exist_ok=True)
        files.chmod(0o755)
        folder.chmod(0o755)
        for (kind, name, key), value in values.items():
            if kind == "Secret" and name == secret["secretName"]:
                (folder / key).write_text(value)
                (folder / key).chmod(0o644)
        for name, value in variables.items():
            if value.startswith(mount["mountPath"] + "/"):
                variables[name] = str(folder) + value[len(mount["mountPath"]):]
    return variables
