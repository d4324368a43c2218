"""`POST /internal/jobs/run`: a job runs inside this request, so Knative counts it in flight and keeps the pod.

Called by the function itself right after it queues work, and by the sweep for due jobs; both present a service
token minted for this function. Not routed by Kong.
"""
from __future__ import annotations

import os
import socket

from flask import Blueprint, current_app, request

from shared.body import json_object
from shared.errors import BadRequest
from shared.jobs import JobQueue, JobRegistry, run_one

bp = Blueprint("internal_jobs", __name__, url_prefix="/internal/jobs")

WORKER_ID = f"{socket.gethostname()}:{os.getpid()}"


def install_jobs(app, registry: JobRegistry) -> None:
    platform = app.extensions["jan"]
    platform.services["job_registry"] = registry
    platform.services["job_queue"] = JobQueue(platform.db, platform.settings)


@bp.post("/run")
def run_job():
    """Claim and run one due job of this function (the named one if it is still due)."""
    platform = current_app.extensions["jan"]
    platform.principals.service_caller(request)
    body = json_object(optional=True)
    job_id = body.get("job_id")
    if job_id is not None and (not isinstance(job_id, str) or len(job_id) > 32):
        raise BadRequest("job_id must be a job id", param="job_id")
    outcome = run_one(platform.services["job_queue"], platform.services["job_registry"],
                      WORKER_ID, job_id)
    return outcome.body()
