"""`POST /internal/jobs/run`: a job runs inside this request, so Knative counts it in flight and keeps the pod.

Called by the function itself right after it queues work, and by the sweep for due jobs; both present a service
token minted for this function. Not routed by Kong.
"""
from __future__ import annotations

import functools
import os
import socket
from typing import Annotated

from flask import Blueprint, current_app, request
from msgspec import Meta

from shared.protocol import RequestModel
from shared.protocol.flask import body
from shared.jobs import JobQueue, JobRegistry, run_one

bp = Blueprint("internal_jobs", __name__, url_prefix="/internal/jobs")

WORKER_ID = f"{socket.gethostname()}:{os.getpid()}"


def install_jobs(app, registry: JobRegistry) -> None:
    platform = app.extensions["jan"]
    platform.services["job_registry"] = registry
    platform.services["job_queue"] = JobQueue(platform.db, platform.settings)


class RunJobRequest(RequestModel):
    """Optional: the job to run if it is still due; without it, the next due job of this function."""

    job_id: Annotated[str, Meta(max_length=32, extra={"error": "job_id must be a job id"})] | None = None


def service_caller_only(view):
    """Refuse anything but a service token for this function before the body is read."""
    @functools.wraps(view)
    def wrapper(*args, **kwargs):
        current_app.extensions["jan"].principals.service_caller(request)
        return view(*args, **kwargs)

    return wrapper


@bp.post("/run")
@service_caller_only
@body(RunJobRequest, optional=True)
def run_job(body: RunJobRequest):
    """Claim and run one due job of this function (the named one if it is still due)."""
    platform = current_app.extensions["jan"]
    outcome = run_one(platform.services["job_queue"], platform.services["job_registry"],
                      WORKER_ID, body.job_id)
    return outcome.body()
