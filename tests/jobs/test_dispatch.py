"""Jobs run inside an HTTP request to their function (`POST /internal/jobs/run`, service tokens only), and the
sweep requeues lost jobs and dispatches due ones over real HTTP, with tokens minted by the issuer over HTTP."""
from __future__ import annotations

import threading
import time
import uuid

import pytest
from sqlalchemy import select, text
from werkzeug.serving import make_server

from shared.jobs import JobQueue
from shared.jobs_sweep import Dispatcher, sweep
from shared.platform_schema import jobs
from shared.service_tokens import ServiceTokens, issuer_mint
from shared.settings import PlatformSettings, from_env
from tests.conftest import SERVICE_CREDENTIALS

KIND = "test.effect"


@pytest.fixture(scope="module")
def served(app):
    """The llm app on a real port (threaded), with a test handler in its job registry."""
    registry = app.extensions["jan"].services["job_registry"]
    db = app.extensions["jan"].db
    with db.transaction() as conn:
        conn.execute(text("CREATE TABLE IF NOT EXISTS test_job_effects (job_id text PRIMARY KEY, worker text)"))

    if KIND not in registry.handlers:
        @registry.handler(KIND)
        def effect(context):
            with context.effects({"n": context.job.payload.get("n")}) as conn:
                conn.execute(text("INSERT INTO test_job_effects (job_id, worker) VALUES (:id, 'http')"),
                             {"id": context.job.public_id})

    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


@pytest.fixture(scope="module")
def sweeper_settings(llm_env, served):
    return from_env(PlatformSettings, environ=llm_env, service_name="jobs-sweeper",
                    service_credential=SERVICE_CREDENTIALS["jobs-sweeper"], token_issuer_url=served,
                    job_max_duration_seconds=1.0, job_lease_grace_seconds=0.3, job_retry_base_seconds=0.3)


@pytest.fixture(scope="module")
def tokens(sweeper_settings):
    return ServiceTokens(issuer_mint(sweeper_settings))


@pytest.fixture
def queue(app, sweeper_settings):
    return JobQueue(app.extensions["jan"].db, sweeper_settings)


def job_row(app, job_id):
    with app.extensions["jan"].db.read() as conn:
        return conn.execute(select(jobs).where(jobs.c.public_id == job_id)).one()


def test_the_run_route_takes_service_tokens_for_its_own_audience_only(client, user, tokens, served):
    assert client.post("/internal/jobs/run").json["message"] == "authentication required"
    refused = [user.headers, {"Authorization": f"Bearer {tokens.as_service('mcp')}"},
               {"Authorization": "Bearer " + client.post(
                   "/internal/delegation-tokens", json={"audience": "llm", "user_id": user.user_id},
                   headers={"Authorization": f"Bearer {SERVICE_CREDENTIALS['responses']}"}).json["access_token"]}]
    for headers in refused:
        response = client.post("/internal/jobs/run", json={}, headers=headers)
        assert response.status_code == 401, response.json
    allowed = client.post("/internal/jobs/run", json={"job_id": f"job_{uuid.uuid4().hex[:16]}"},
                          headers={"Authorization": f"Bearer {tokens.as_service('llm')}"})
    assert allowed.status_code == 200 and allowed.json["status"] in ("idle", "succeeded", "queued", "dead")


def test_a_job_dispatched_over_http_runs_in_that_request(app, queue, tokens, served):
    job_id = queue.enqueue("llm", KIND, {"n": 1})
    outcome = Dispatcher(tokens, {"llm": served}, 10).dispatch("llm", job_id)
    assert outcome == {"job_id": job_id, "status": "succeeded"}
    stored = job_row(app, job_id)
    assert stored.status == "succeeded" and stored.result == {"n": 1} and stored.worker_id


def test_the_sweep_requeues_a_lost_job_and_dispatches_due_ones(app, queue, tokens, served):
    dispatcher = Dispatcher(tokens, {"llm": served}, 10)
    lost = queue.enqueue("llm", KIND, {"n": 2})
    assert queue.claim("llm", "worker-that-vanished", lost) is not None
    waiting = queue.enqueue("llm", KIND, {"n": 3})

    summary = sweep(queue, dispatcher)
    assert job_row(app, waiting).status == "succeeded"
    assert job_row(app, lost).status == "running" and summary["errors"] == 0  # its lease still holds

    deadline = time.monotonic() + 15
    while job_row(app, lost).status != "succeeded":
        assert time.monotonic() < deadline, job_row(app, lost)
        time.sleep(0.3)
        sweep(queue, dispatcher)
    stored = job_row(app, lost)
    assert stored.attempts == 2 and stored.result == {"n": 2}
    with app.extensions["jan"].db.read() as conn:
        assert conn.execute(text("SELECT count(*) FROM test_job_effects WHERE job_id = :id"),
                            {"id": lost}).scalar() == 1


def test_background_dispatch_starts_the_job_without_waiting(app, queue, tokens, served):
    job_id = queue.enqueue("llm", KIND, {"n": 4})
    Dispatcher(tokens, {"llm": served}, 10).dispatch_in_background("llm", job_id).join(15)
    assert job_row(app, job_id).status == "succeeded"


def test_the_dev_stacks_timer_sweeps_without_traffic(app, queue, served, llm_env):
    from dev.job_sweeper import SweepTimer

    job_id = queue.enqueue("llm", KIND, {"n": 5})
    timer = SweepTimer({**llm_env, "JOB_SWEEP_INTERVAL_SECONDS": "0.2"}, {"llm": served}).start()
    try:
        deadline = time.monotonic() + 15
        while job_row(app, job_id).status != "succeeded":
            assert time.monotonic() < deadline
            time.sleep(0.1)
    finally:
        timer.stop()


def test_the_cronjobs_command_sweeps_once_and_reports(app, queue, served, llm_env):
    import json
    import os
    import subprocess
    import sys

    from tests.conftest import ROOT

    job_id = queue.enqueue("llm", KIND, {"n": 6})
    env = {**os.environ, "DATABASE_URL": llm_env["DATABASE_URL"], "FUNCTION_URLS": f"llm={served}",
           "TOKEN_ISSUER_URL": served, "SERVICE_CREDENTIAL": SERVICE_CREDENTIALS["jobs-sweeper"], "LOG_LEVEL": "WARNING"}
    result = subprocess.run([sys.executable, "-m", "shared.jobs_sweep"], cwd=ROOT, env=env, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["errors"] == 0 and summary["outcomes"].get("succeeded", 0) >= 1
    assert job_row(app, job_id).status == "succeeded"
