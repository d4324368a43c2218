"""Dispatching jobs to the functions that run them, and the sweep that keeps a scaled-to-zero platform moving.

The sweep (a CronJob in a cluster: `python -m shared.jobs_sweep`; a timer in the dev stack) requeues jobs whose
worker was lost (lease ran out) and sends every due job to its function's `POST /internal/jobs/run`, waiting for
each answer, so a retry or an orphaned job runs even when no user traffic wakes its function.
"""
from __future__ import annotations

import json
import logging
import sys
import threading
from concurrent.futures import ThreadPoolExecutor

from shared.jobs import JobQueue, parse_function_urls
from shared.service_tokens import ServiceTokens

log = logging.getLogger("jan.jobs")


class Dispatcher:
    def __init__(self, tokens: ServiceTokens, function_urls: dict[str, str], timeout_seconds: float):
        self.tokens = tokens
        self.function_urls = function_urls
        self.timeout = timeout_seconds

    def dispatch(self, function: str, job_id: str | None = None) -> dict:
        """Run one job of `function` in a request to it; returns its outcome (`{"job_id", "status"}`)."""
        from shared.outbound import send

        url = self.function_urls.get(function)
        if url is None:
            raise LookupError(f"no URL for function {function!r} in FUNCTION_URLS")
        response = send("POST", f"{url}/internal/jobs/run", body=json.dumps({"job_id": job_id}).encode(),
                        headers={"Authorization": f"Bearer {self.tokens.as_service(function)}",
                                 "Content-Type": "application/json"},
                        read_timeout=self.timeout)
        if response.status != 200:
            raise RuntimeError(f"{function} answered {response.status} to a job dispatch")
        return json.loads(response.data)

    def dispatch_in_background(self, function: str, job_id: str) -> threading.Thread:
        """Start the job now without holding up the caller's response; if this dispatch is lost, the sweep
        sends the job again."""
        def send_quietly():
            try:
                self.dispatch(function, job_id)
            except Exception as error:
                log.warning("dispatching job %s to %s failed (the sweep retries it): %s", job_id, function, error)

        thread = threading.Thread(target=send_quietly, name=f"dispatch-{job_id}", daemon=True)
        thread.start()
        return thread


def sweep(queue: JobQueue, dispatcher: Dispatcher, *, limit: int = 100, parallel: int = 8) -> dict:
    """Requeue lost jobs, then dispatch due ones (up to `limit`, `parallel` at a time); a summary of what it did."""
    requeued = queue.requeue_expired()
    due = queue.due(sorted(dispatcher.function_urls), limit)
    outcomes: dict[str, int] = {}
    errors = 0

    def run(entry):
        function, job_id = entry
        return dispatcher.dispatch(function, job_id)["status"]

    with ThreadPoolExecutor(max_workers=max(1, min(parallel, len(due) or 1))) as pool:
        futures = [pool.submit(run, entry) for entry in due]
        for entry, future in zip(due, futures):
            try:
                status = future.result()
            except Exception as error:
                errors += 1
                log.warning("dispatching job %s to %s failed: %s", entry[1], entry[0], error)
                continue
            outcomes[status] = outcomes.get(status, 0) + 1
    return {"requeued": requeued, "dispatched": len(due) - errors, "errors": errors, "outcomes": outcomes}


def main(argv: list[str] | None = None) -> int:
    """One sweep with settings from the environment (DATABASE_URL, FUNCTION_URLS, SERVICE_CREDENTIAL,
    TOKEN_ISSUER_URL, JOB_*); prints its summary as JSON."""
    from shared.db import Database
    from shared.service_tokens import issuer_mint
    from shared.settings import PlatformSettings, from_env

    settings = from_env(PlatformSettings, service_name="jobs-sweeper")
    logging.basicConfig(level=settings.log_level.upper(), stream=sys.stderr)
    queue = JobQueue(Database.from_settings(settings), settings)
    dispatcher = Dispatcher(ServiceTokens(issuer_mint(settings)), parse_function_urls(settings.function_urls),
                            settings.job_max_duration_seconds + settings.job_lease_grace_seconds)
    summary = sweep(queue, dispatcher)
    print(json.dumps(summary))
    return 1 if summary["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
