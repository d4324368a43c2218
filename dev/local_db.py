"""`make migrate` and `make admin` on the local stack: run one command against DATABASE_URL, or against the
embedded PostgreSQL in .data/pg (started for the command if `make run` is not already running it).

    python -m dev.local_db migrate
    python -m dev.local_db admin EMAIL
"""
from __future__ import annotations

import os
import subprocess
import sys

from dev import embedded_pg, stack


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in ("migrate", "admin") or (argv[0] == "admin" and len(argv) != 2):
        print(__doc__, file=sys.stderr)
        return 2
    database = None
    database_url = os.environ.get("DATABASE_URL")
    pid_file = stack.DATA_DIR / "pg" / "postmaster.pid"
    already_running = pid_file.exists() and embedded_pg.postmaster_alive(pid_file, (stack.DATA_DIR / "pg").resolve())
    if not database_url:
        database = embedded_pg.start(stack.DATA_DIR / "pg")
        database_url = database.url
    env = stack.base_env(database_url, stack.dev_keys_env())
    try:
        stack.run_migrations(env)
        if argv[0] == "admin":
            return subprocess.run([sys.executable, "-m", "functions.llm.manage", "admin", argv[1]], env=env).returncode
        return 0
    finally:
        if database is not None and not already_running:
            database.stop()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
