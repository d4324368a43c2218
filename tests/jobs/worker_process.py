"""A job worker in its own process, for the test that kills one mid-job (SIGKILL): it claims the named job of
FUNCTION with short leases, says so on stdout, then runs a handler that takes far longer than the test waits."""
from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from shared.db import Database  # noqa: E402
from shared.jobs import JobQueue, JobRegistry, run_one  # noqa: E402
from shared.settings import PlatformSettings  # noqa: E402


def main(database_url: str, function: str, job_id: str) -> None:
    settings = PlatformSettings(database_url=database_url, job_max_duration_seconds=1.0, job_lease_grace_seconds=0.5,
                                job_retry_base_seconds=0.1)
    registry = JobRegistry(function)

    @registry.handler("effect")
    def effect(context):
        print(f"running {context.job.public_id}", flush=True)
        time.sleep(60)  # killed long before this ends
        with context.effects() as conn:
            conn.exec_driver_sql("INSERT INTO test_job_effects (job_id, worker) VALUES (%s, 'killed')",
                                 (context.job.public_id,))

    run_one(JobQueue(Database.from_settings(settings), settings), registry, "doomed-worker", job_id)


if __name__ == "__main__":
    main(*sys.argv[1:4])
