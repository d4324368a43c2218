"""Core Kubernetes kinds against kubernetes-validate's strict schemas (unknown fields rejected)."""
from __future__ import annotations

import kubernetes_validate
from kubernetes_validate.utils import SchemaNotFoundError, latest_version

# The oldest Kubernetes we claim (docs/deploy.md; also this machine's kubectl) and the newest the validator ships.
OLDEST_KUBERNETES = "1.32"
KUBERNETES_VERSIONS = (OLDEST_KUBERNETES, latest_version())


def problems(document: dict) -> list[str]:
    found = []
    for version in KUBERNETES_VERSIONS:
        try:
            kubernetes_validate.validate(document, version, strict=True)
        except kubernetes_validate.ValidationError as error:
            path = ".".join(str(part) for part in error.path) or "(root)"
            found.append(f"Kubernetes {version}: {path}: {error.message}")
        except SchemaNotFoundError as error:
            found.append(f"Kubernetes {version}: no schema: {error.message}")
    return found
