"""Per-function rollouts in production: named revisions and `current` / `candidate` traffic tags.

  python -m knative.rollout canary llm 10 --image REGISTRY/jan-llm:TAG   (make canary FN=llm PERCENT=10)
  python -m knative.rollout promote llm                                  (make promote FN=llm)
  python -m knative.rollout rollback llm                                 (make rollback FN=llm)

Each command rewrites knative/overlays/prod/rollouts/<function>.yaml, a JSON patch of that one function's Knative
Service, and the list of those patches. With a kubectl context configured, that Service is rendered and applied;
otherwise the Service that would be applied is printed.

A canary names the new revision <function>-<image tag> and routes PERCENT to the `candidate` tag, which follows the
latest revision: until the new revision is ready, Knative keeps its share on the last ready one, and with
--rollout-duration it moves that share over gradually. `current` stays on the revision that served before. Promote
moves `current` to the new revision at 100%; rollback returns 100% to the old one. Both keep the `candidate` tag
(at 0%) so its URL still reaches the latest revision.
"""
from __future__ import annotations

import argparse
import re
import subprocess
import sys
from dataclasses import dataclass, replace
from pathlib import Path

import yaml

from knative import render

ROLLOUTS_DIR = render.REPO_ROOT / "knative" / "overlays" / "prod" / "rollouts"
DEFAULT_TARGET = "prod-gpu"
HEADER = "# Written by knative/rollout.py: one traffic patch per function under rollout. Do not edit by hand.\n"
ROLLOUT_DURATION = "serving.knative.dev/rollout-duration"
NAME_PATH = "/spec/template/metadata/name"
IMAGE_PATH = "/spec/template/spec/containers/0/image"
TRAFFIC_PATH = "/spec/traffic"
DURATION_PATH = "/metadata/annotations/" + ROLLOUT_DURATION.replace("/", "~1")
MAX_NAME = 63


class RolloutError(ValueError):
    pass


@dataclass(frozen=True)
class Rollout:
    """One function's rollout: its newest named revision and image, the revision `current` serves, and the
    share the `candidate` tag (the latest revision) gets."""

    function: str
    revision: str
    image: str
    current: str
    candidate_percent: int
    rollout_duration: str | None = None

    def traffic(self) -> list[dict]:
        return [
            {"tag": "current", "revisionName": self.current, "percent": 100 - self.candidate_percent},
            {"tag": "candidate", "latestRevision": True, "percent": self.candidate_percent},
        ]

    def patch(self) -> list[dict]:
        operations = [
            {"op": "add", "path": NAME_PATH, "value": self.revision},
            {"op": "replace", "path": IMAGE_PATH, "value": self.image},
            {"op": "add", "path": TRAFFIC_PATH, "value": self.traffic()},
        ]
        if self.rollout_duration:
            operations.append({"op": "add", "path": DURATION_PATH, "value": self.rollout_duration})
        return operations

    @classmethod
    def from_patch(cls, function: str, operations: list[dict]) -> "Rollout":
        values = {operation["path"]: operation["value"] for operation in operations}
        traffic = {target["tag"]: target for target in values[TRAFFIC_PATH]}
        return cls(
            function=function,
            revision=values[NAME_PATH],
            image=values[IMAGE_PATH],
            current=traffic["current"]["revisionName"],
            candidate_percent=traffic["candidate"]["percent"],
            rollout_duration=values.get(DURATION_PATH),
        )


def revision_name(function: str, image: str) -> str:
    """`<function>-<tag>` (or the digest's first 12 hex digits), as a DNS label Knative accepts."""
    reference = image.rsplit("/", 1)[-1]
    if "@" in reference:
        version = reference.split("@", 1)[1].split(":", 1)[-1][:12]
    elif ":" in reference:
        version = reference.split(":", 1)[1]
    else:
        raise RolloutError(f"image {image!r} has no tag or digest: a canary needs a distinct version")
    version = re.sub(r"[^a-z0-9-]+", "-", version.lower()).strip("-")
    name = f"{function}-{version}"[:MAX_NAME].rstrip("-")
    if name == function:
        raise RolloutError(f"image {image!r}: its tag gives no usable revision name")
    return name


def load(function: str, rollouts_dir: Path = ROLLOUTS_DIR) -> Rollout | None:
    path = rollouts_dir / f"{function}.yaml"
    if not path.is_file():
        return None
    return Rollout.from_patch(function, yaml.safe_load(path.read_text()))


def save(rollout: Rollout, rollouts_dir: Path = ROLLOUTS_DIR) -> Path:
    path = rollouts_dir / f"{rollout.function}.yaml"
    path.write_text(HEADER + yaml.safe_dump(rollout.patch(), sort_keys=False))
    write_component(rollouts_dir)
    return path


def write_component(rollouts_dir: Path = ROLLOUTS_DIR) -> None:
    """The component's kustomization: one patch per <function>.yaml in the folder, each aimed at its Service."""
    patches = [
        {
            "path": path.name,
            "target": {"group": "serving.knative.dev", "version": "v1", "kind": "Service", "name": path.stem},
        }
        for path in sorted(rollouts_dir.glob("*.yaml"))
        if path.name != "kustomization.yaml"
    ]
    component = {"apiVersion": "kustomize.config.k8s.io/v1alpha1", "kind": "Component", "patches": patches}
    (rollouts_dir / "kustomization.yaml").write_text(HEADER + yaml.safe_dump(component, sort_keys=False))


def canary(function: str, percent: int, image: str, current: str | None, rollout_duration: str | None,
           previous: Rollout | None) -> Rollout:
    if not 1 <= percent <= 99:
        raise RolloutError("a canary gets between 1 and 99 percent; use promote for 100")
    serving = current or (previous.current if previous else None)
    if serving is None:
        raise RolloutError(
            f"which revision serves {function} now? This is its first rollout: pass --current, e.g. the output of\n"
            f"  kubectl get ksvc {function} --namespace jan --output jsonpath='{{.status.latestReadyRevisionName}}'"
        )
    revision = revision_name(function, image)
    if revision == serving:
        raise RolloutError(f"{revision} already serves {function}: a canary needs a new image tag")
    if previous and revision == previous.revision and image != previous.image:
        raise RolloutError(f"revision {revision} already exists with image {previous.image}; tag the new image anew")
    return Rollout(function, revision, image, serving, percent,
                   rollout_duration or (previous.rollout_duration if previous else None))


def promote(previous: Rollout | None, function: str) -> Rollout:
    if previous is None:
        raise RolloutError(f"{function} has no canary to promote")
    return replace(previous, current=previous.revision, candidate_percent=0)


def rollback(previous: Rollout | None, function: str) -> Rollout:
    if previous is None:
        raise RolloutError(f"{function} has no rollout to roll back")
    if previous.current == previous.revision:
        raise RolloutError(f"{function} was promoted to {previous.revision}; roll back with a canary of the old image")
    return replace(previous, candidate_percent=0)


def cluster_configured() -> bool:
    result = subprocess.run(["kubectl", "config", "current-context"], capture_output=True, text=True)
    return result.returncode == 0 and bool(result.stdout.strip())


def publish(rollout: Rollout, target: str) -> None:
    service = render.knative_services(render.render(target))[rollout.function]
    manifest = render.dump([service])
    if cluster_configured():
        result = subprocess.run(["kubectl", "apply", "-f", "-"], input=manifest, capture_output=True, text=True)
        if result.returncode != 0:
            raise RolloutError(f"kubectl apply failed:\n{result.stderr.strip()}")
        print(result.stdout, end="")
    else:
        print(f"No kubectl context configured. With one, `kubectl apply -f -` receives:\n---\n{manifest}", end="")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m knative.rollout", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--target", default=DEFAULT_TARGET, help="production target to render (default %(default)s)")
    commands = parser.add_subparsers(dest="command", required=True)
    canary_parser = commands.add_parser("canary", help="send PERCENT of a function's traffic to a new image")
    canary_parser.add_argument("function")
    canary_parser.add_argument("percent", type=int)
    canary_parser.add_argument("--image", required=True, help="the new image, with a tag or digest")
    canary_parser.add_argument("--current", help="the revision serving now (only needed for the first rollout)")
    canary_parser.add_argument("--rollout-duration", help="shift the candidate share gradually, e.g. 300s")
    for name, help_text in (("promote", "send all traffic to the canary"), ("rollback", "send all traffic back")):
        commands.add_parser(name, help=help_text).add_argument("function")
    args = parser.parse_args(argv)

    try:
        if args.function not in render.function_names():
            raise RolloutError(f"no function {args.function!r} (functions: {render.function_names()})")
        if not args.target.startswith("prod-"):
            raise RolloutError("rollouts are written to the production overlay: pick a prod-* target")
        previous = load(args.function)
        if args.command == "canary":
            rollout = canary(args.function, args.percent, args.image, args.current, args.rollout_duration, previous)
        elif args.command == "promote":
            rollout = promote(previous, args.function)
        else:
            rollout = rollback(previous, args.function)
        path = save(rollout)
        shares = ", ".join(f"{t['tag']} {t['percent']}%" for t in rollout.traffic())
        print(f"{path.relative_to(render.REPO_ROOT)}: {rollout.function} {shares} "
              f"(current={rollout.current}, candidate=latest={rollout.revision})")
        publish(rollout, args.target)
    except (RolloutError, render.RenderError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
