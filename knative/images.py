"""`make images`: build every image skaffold.yaml lists (its production form) with docker, and push them.

  python -m knative.images --registry ghcr.io/acme --tag v1 [--push]

The images are named as in the manifests (jan-llm, jan-migrate, ...) under the registry; `make deploy` with the same
registry and tag deploys them.
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys

from knative import render, skaffold


def reference(image: str, registry: str, tag: str) -> str:
    return f"{registry.rstrip('/')}/{image}:{tag}" if registry else f"{image}:{tag}"


def build_commands(config: dict, registry: str, tag: str) -> list[list[str]]:
    commands = []
    for artifact in skaffold.all_artifacts(config):
        context = artifact.get("context", ".")
        docker = artifact.get("docker") or {}
        command = ["docker", "build", "--file", os.path.join(context, docker.get("dockerfile", "Dockerfile"))]
        if docker.get("target"):
            command += ["--target", docker["target"]]
        for name, value in (docker.get("buildArgs") or {}).items():
            command += ["--build-arg", f"{name}={value}"]
        commands.append(command + ["--tag", reference(artifact["image"], registry, tag), context])
    return commands


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m knative.images", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--registry", default="", help="e.g. ghcr.io/acme (empty: local names only)")
    parser.add_argument("--tag", required=True)
    parser.add_argument("--push", action="store_true")
    args = parser.parse_args(argv)
    if shutil.which("docker") is None:
        print("error: docker is not installed: images are built where a Docker engine runs", file=sys.stderr)
        return 1
    config = skaffold.load()
    # BuildKit: the Dockerfiles keep pip's cache between builds with RUN --mount=type=cache.
    environment = {**os.environ, "DOCKER_BUILDKIT": "1"}
    for command in build_commands(config, args.registry, args.tag):
        steps = [command] + ([["docker", "push", command[command.index("--tag") + 1]]] if args.push else [])
        for step in steps:
            print("+", " ".join(step), flush=True)
            if subprocess.run(step, cwd=render.REPO_ROOT, env=environment).returncode != 0:
                print(f"error: {' '.join(step[:2])} failed", file=sys.stderr)
                return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
