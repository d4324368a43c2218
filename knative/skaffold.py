"""skaffold.yaml as skaffold itself resolves it for a list of profiles (no skaffold binary exists here): the tests
check each resolved configuration, and `make images` builds the artifacts of all of them."""
from __future__ import annotations

import copy
from pathlib import Path

import yaml

from knative.jsonpatch import apply_operation
from knative.render import REPO_ROOT

SKAFFOLD_FILE = REPO_ROOT / "skaffold.yaml"


class ProfileError(ValueError):
    pass


def load(path: Path = SKAFFOLD_FILE) -> dict:
    return yaml.safe_load(path.read_text())


def resolve(config: dict, profiles: list[str], command: str = "run") -> dict:
    """The configuration after skaffold's profile activation: profiles activated by `command` first (in file
    order), then the named ones in the given order."""
    by_name = {profile["name"]: profile for profile in config.get("profiles") or []}
    active = [
        profile["name"]
        for profile in config.get("profiles") or []
        if any(condition.get("command") == command for condition in profile.get("activation") or [])
    ]
    active += [name for name in profiles if name not in active]
    resolved = {key: copy.deepcopy(value) for key, value in config.items() if key != "profiles"}
    for name in active:
        if name not in by_name:
            raise ProfileError(f"no profile {name!r} in skaffold.yaml (profiles: {sorted(by_name)})")
        profile = by_name[name]
        for operation in profile.get("patches") or []:
            apply_operation(resolved, operation)
        if "portForward" in profile:
            resolved["portForward"] = copy.deepcopy(profile["portForward"])
    return resolved


def artifacts(resolved: dict) -> list[dict]:
    return list((resolved.get("build") or {}).get("artifacts") or [])


def all_artifacts(config: dict) -> list[dict]:
    """Every artifact any profile can build, once per image name."""
    seen: dict[str, dict] = {artifact["image"]: artifact for artifact in artifacts(config)}
    for profile in config.get("profiles") or []:
        for artifact in artifacts(resolve(config, [profile["name"]])):
            seen.setdefault(artifact["image"], artifact)
    return list(seen.values())


def manifest_paths(resolved: dict) -> list[str]:
    return list(resolved["manifests"]["kustomize"]["paths"])
