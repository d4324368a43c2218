"""The local stack's stand-in for the cluster's sweep CronJob: a thread that runs the job sweep every few seconds
(JOB_SWEEP_INTERVAL_SECONDS, default 10), so retries and orphaned jobs run without traffic, as in a cluster.

It holds the development signing key already, so it mints its service tokens in process as `jobs-sweeper`
instead of asking the llm function for them.
"""
from __future__ import annotations

import logging
import threading

log = logging.getLogger("jan.dev.sweep")
DEFAULT_INTERVAL_SECONDS = 10.0


class SweepTimer:
    def __init__(self, env: dict[str, str], function_urls: dict[str, str]):
        from functions.llm.auth.issuer import TokenIssuer
        from functions.llm.settings import LlmSettings
        from shared.db import Database
        from shared.jobs import JobQueue
        from shared.jobs_sweep import Dispatcher
        from shared.service_tokens import ServiceTokens
        from shared.settings import from_env

        settings = from_env(LlmSettings, environ=env)
        issuer = TokenIssuer(settings)
        tokens = ServiceTokens(lambda audience, _user: (issuer.service_token(actor="jobs-sweeper", audience=audience),
                                                        settings.delegation_token_ttl_seconds))
        self.queue = JobQueue(Database.from_settings(settings), settings)
        self.dispatcher = Dispatcher(tokens, function_urls,
                                     settings.job_max_duration_seconds + settings.job_lease_grace_seconds)
        self.interval = float(env.get("JOB_SWEEP_INTERVAL_SECONDS") or DEFAULT_INTERVAL_SECONDS)
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="job-sweep", daemon=True)

    def start(self) -> "SweepTimer":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopped.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        from shared.jobs_sweep import sweep

        while not self._stopped.wait(self.interval):
            try:
                summary = sweep(self.queue, self.dispatcher)
            except Exception as error:  # the database restarting must not end the timer
                log.warning("job sweep failed: %s", error)
                continue
            if summary["requeued"] or summary["dispatched"] or summary["errors"]:
                log.info("job sweep: %s", summary)
