"""A stand-in for kubectl's cluster commands, for testing knative/deploy.py without a cluster.

It keeps the objects it was given in a JSON state file, answers `get` from them, reports every call to a log
(one JSON line: argv and the objects on stdin), and finishes every migration Job with FAKE_JOB_RESULT
(Complete or Failed)."""
from __future__ import annotations

import base64
import json
import os
import sys
from pathlib import Path

import yaml

STATE = Path(os.environ["FAKE_KUBECTL_STATE"])
LOG = Path(os.environ["FAKE_KUBECTL_LOG"])
KINDS = {"secret": "Secret", "configmap": "ConfigMap", "job": "Job"}


def main(argv: list[str]) -> int:
    objects = list(yaml.safe_load_all(sys.stdin.read())) if "-f" in argv else []
    objects = [item for item in objects if item]
    with LOG.open("a") as log:
        log.write(json.dumps({"argv": argv, "objects": objects}) + "\n")
    state = json.loads(STATE.read_text()) if STATE.exists() else {}
    command = argv[0]
    if command in {"apply", "create"}:
        for item in objects:
            if item["kind"] == "Secret" and "stringData" in item:
                item["data"] = {k: base64.b64encode(v.encode()).decode() for k, v in item.pop("stringData").items()}
            key = f"{item['kind']}/{item['metadata']['name']}"
            if command == "create" and key in state:
                print(f"Error from server (AlreadyExists): {key}", file=sys.stderr)
                return 1
            state[key] = item
            print(f"{key.lower()} {command}d")
        STATE.write_text(json.dumps(state))
        return 0
    if command == "get":
        key = f"{KINDS[argv[1]]}/{argv[2]}"
        if key not in state:
            print(f'Error from server (NotFound): {argv[1]} "{argv[2]}" not found', file=sys.stderr)
            return 1
        item = state[key]
        if item["kind"] == "Job":
            item = {**item, "status": {"conditions": [{"type": os.environ.get("FAKE_JOB_RESULT", "Complete"),
                                                       "status": "True"}]}}
        print(json.dumps(item))
        return 0
    if command == "logs":
        print("alembic: migration failed (fake log)")
        return 0
    if command == "wait":
        return 0
    print(f"fake kubectl: unsupported {argv}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
