"""Operator commands for the realtime function.

    python -m functions.realtime.manage sync-once   run one room-sync tick now and print what it did
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys

from functions.realtime.app import create_app


def sync_once() -> int:
    app = create_app()
    result = app.extensions["jan"].services["realtime_sync"].sync.tick()
    if result is None:
        print(json.dumps({"skipped": "another replica is syncing"}))
        return 0
    print(json.dumps(dataclasses.asdict(result)))
    return 0 if result.livekit_reachable else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m functions.realtime.manage")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("sync-once", help="run one room-sync tick now")
    arguments = parser.parse_args(argv)
    if arguments.command == "sync-once":
        return sync_once()
    return 2


if __name__ == "__main__":
    sys.exit(main())
