"""Renders of every deploy target, shared by the deploy checks (kubectl kustomize runs once per target)."""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from knative import deploy, render


@pytest.fixture(scope="session")
def renders() -> dict[str, list[dict]]:
    """Every target, with the migration Job composed in (as `knative.deploy prepare` renders it)."""
    targets = render.target_names()
    with ThreadPoolExecutor() as pool:
        documents = pool.map(lambda target: render.render(target, components=(deploy.MIGRATION_COMPONENT,)), targets)
    return dict(zip(targets, documents))


@pytest.fixture(scope="session")
def prod_render(renders) -> list[dict]:
    return renders["prod-gpu"]
