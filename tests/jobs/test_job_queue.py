"""The durable job queue against the real PostgreSQL: leases, SKIP LOCKED claims, retries with backoff, the
dead-letter state, a worker killed mid-job (a real process, SIGKILL), and exactly-once effects."""
from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest
from sqlalchemy import select, text

from shared.db import Database
from shared.jobs import JobQueue, JobRegistry, run_one
from shared.platform_schema import jobs
from shared.settings import PlatformSettings, from_env

WORKER = Path(__file__).with_name("worker_process.py")


@pytest.fixture(scope="module")
def settings(llm_env):
    return from_env(PlatformSettings, environ=llm_env, job_max_duration_seconds=1.0, job_lease_grace_seconds=0.5,
                    job_retry_base_seconds=0.5, job_retry_max_seconds=1.5, job_max_attempts=3, db_pool_size=8)


@pytest.fixture(scope="module")
def db(settings):
    database = Database.from_settings(settings)
    with database.transaction() as conn:
        conn.execute(text("CREATE TABLE IF NOT EXISTS test_job_effects (job_id text PRIMARY KEY, worker text)"))
    return database


@pytest.fixture
def queue(db, settings):
    return JobQueue(db, settings)


@pytest.fixture
def function():
    """A function name of this test's own, so tests never see each other's jobs."""
    return f"fn-{uuid.uuid4().hex[:10]}"


def row(db, job_id: str):
    with db.read() as conn:
        return conn.execute(select(jobs, text("now() AS db_now")).where(jobs.c.public_id == job_id)).one()


def effects(db, job_id: str) -> list[str]:
    with db.read() as conn:
        return list(conn.execute(text("SELECT worker FROM test_job_effects WHERE job_id = :id"), {"id": job_id})
                    .scalars())


def effect_registry(function: str, worker: str) -> JobRegistry:
    registry = JobRegistry(function)

    @registry.handler("effect")
    def effect(context):
        with context.effects({"by": worker}) as conn:
            conn.execute(text("INSERT INTO test_job_effects (job_id, worker) VALUES (:id, :worker)"),
                         {"id": context.job.public_id, "worker": worker})

    return registry


def wait_until_lease_expires(db, job_id: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while row(db, job_id).lease_until > row(db, job_id).db_now:
        assert time.monotonic() < deadline
        time.sleep(0.1)


def wait_until_due(db, job_id: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while row(db, job_id).run_at > row(db, job_id).db_now:
        assert time.monotonic() < deadline
        time.sleep(0.05)


def test_enqueue_is_idempotent_by_key(queue, function, db):
    first = queue.enqueue(function, "effect", {"n": 1}, idempotency_key="order-42")
    again = queue.enqueue(function, "effect", {"n": 2}, idempotency_key="order-42")
    other = queue.enqueue(function, "effect", {"n": 3}, idempotency_key="order-43")
    assert first == again != other and first.startswith("job_")
    with db.read() as conn:
        assert conn.execute(select(jobs.c.payload).where(jobs.c.function == function)
                            .order_by(jobs.c.id)).scalars().all() == [{"n": 1}, {"n": 3}]


def test_a_claim_leases_the_job_to_one_worker(queue, function, db, settings):
    job_id = queue.enqueue(function, "effect")
    job = queue.claim(function, "worker-a")
    assert job is not None and job.public_id == job_id and job.attempts == 1
    stored = row(db, job_id)
    assert stored.status == "running" and stored.worker_id == "worker-a" and stored.lease_token == job.lease_token
    lease = stored.lease_until - stored.updated_at
    assert lease == dt.timedelta(seconds=settings.job_max_duration_seconds + settings.job_lease_grace_seconds)
    assert queue.claim(function, "worker-b") is None  # a live lease is never claimed again


def test_concurrent_claimers_never_share_a_job(queue, function):
    """Eight threads, each with its own connection, race for 40 jobs: every job is claimed exactly once."""
    created = {queue.enqueue(function, "effect", {"n": n}) for n in range(40)}
    claimed: list[str] = []
    lock = threading.Lock()
    start = threading.Barrier(8)

    def claimer(name: str):
        start.wait()
        while (job := queue.claim(function, name)) is not None:
            with lock:
                claimed.append(job.public_id)

    threads = [threading.Thread(target=claimer, args=(f"w{n}",)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(claimed) == sorted(created)


def test_the_same_job_raced_by_many_claimers_goes_to_one(queue, function):
    job_id = queue.enqueue(function, "effect")
    start = threading.Barrier(6)
    winners: list[str] = []

    def claimer(name: str):
        start.wait()
        if queue.claim(function, name, job_id) is not None:
            winners.append(name)

    threads = [threading.Thread(target=claimer, args=(f"w{n}",)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert len(winners) == 1


def test_failures_retry_with_exponential_backoff_then_dead_letter(queue, function, db, settings):
    registry = JobRegistry(function)
    calls = []

    @registry.handler("flaky")
    def flaky(context):
        calls.append(context.job.attempts)
        raise RuntimeError(f"upstream down (attempt {context.job.attempts})")

    job_id = queue.enqueue(function, "flaky")
    waits = []
    for attempt in (1, 2):
        outcome = run_one(queue, registry, "worker", job_id)
        assert outcome.status == "queued"
        stored = row(db, job_id)
        assert stored.status == "queued" and stored.attempts == attempt and stored.lease_token is None
        assert stored.last_error == f"RuntimeError: upstream down (attempt {attempt})"
        waits.append((stored.run_at - stored.updated_at).total_seconds())
        assert run_one(queue, registry, "worker", job_id).status == "idle"  # not due before its backoff
        wait_until_due(db, job_id)
    assert waits == [settings.job_retry_base_seconds, settings.job_retry_base_seconds * 2]
    assert queue.backoff_seconds(5) == settings.job_retry_max_seconds  # capped

    assert run_one(queue, registry, "worker", job_id).status == "dead"
    stored = row(db, job_id)
    assert stored.status == "dead" and stored.attempts == 3 and stored.finished_at is not None
    assert calls == [1, 2, 3]
    assert queue.claim(function, "worker") is None  # dead letters are never claimed


def test_an_unknown_handler_is_a_failed_attempt(queue, function, db):
    job_id = queue.enqueue(function, "nobody-handles-this", max_attempts=1)
    assert run_one(queue, JobRegistry(function), "worker").status == "dead"
    assert "no handler named 'nobody-handles-this'" in row(db, job_id).last_error


def test_a_lost_lease_on_the_last_attempt_dead_letters(queue, function, db):
    job_id = queue.enqueue(function, "effect", max_attempts=1)
    assert queue.claim(function, "vanishing-worker") is not None
    wait_until_lease_expires(db, job_id)
    assert queue.requeue_expired() >= 1
    stored = row(db, job_id)
    assert stored.status == "dead" and stored.last_error.startswith("lease expired")


def test_a_worker_killed_mid_job_is_finished_elsewhere_exactly_once(queue, function, db, settings):
    job_id = queue.enqueue(function, "effect")
    env = {**os.environ, "PYTHONPATH": str(WORKER.parents[2])}
    worker = subprocess.Popen([sys.executable, str(WORKER), settings.database_url, function, job_id],
                              stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert worker.stdout.readline().strip() == f"running {job_id}"
        stored = row(db, job_id)
        assert stored.status == "running" and stored.worker_id == "doomed-worker"
        worker.send_signal(signal.SIGKILL)
        assert worker.wait(timeout=10) == -signal.SIGKILL
    finally:
        if worker.poll() is None:
            worker.kill()
    assert queue.claim(function, "eager") is None  # the dead worker's lease still holds
    wait_until_lease_expires(db, job_id)
    assert queue.requeue_expired() >= 1
    assert row(db, job_id).status == "queued"
    wait_until_due(db, job_id)

    assert run_one(queue, effect_registry(function, "survivor"), "survivor").status == "succeeded"
    stored = row(db, job_id)
    assert stored.status == "succeeded" and stored.attempts == 2 and stored.result == {"by": "survivor"}
    assert effects(db, job_id) == ["survivor"]


def test_a_late_finisher_changes_nothing(queue, function, db):
    """Worker A stalls past its lease; B takes over and finishes; A's effects roll back and its outcome is ignored."""
    job_id = queue.enqueue(function, "effect")
    registry = JobRegistry(function)
    release = threading.Event()
    running = threading.Event()

    @registry.handler("effect")
    def slow(context):
        running.set()
        release.wait(30)
        with context.effects({"by": "late"}) as conn:
            conn.execute(text("INSERT INTO test_job_effects (job_id, worker) VALUES (:id, 'late')"),
                         {"id": context.job.public_id})

    outcome = {}
    late = threading.Thread(target=lambda: outcome.update(a=run_one(queue, registry, "late", job_id)))
    late.start()
    assert running.wait(10)
    wait_until_lease_expires(db, job_id)
    queue.requeue_expired()
    wait_until_due(db, job_id)
    assert run_one(queue, effect_registry(function, "prompt"), "prompt").status == "succeeded"
    release.set()
    late.join(30)
    assert outcome["a"].status == "lease_lost"
    stored = row(db, job_id)
    assert stored.status == "succeeded" and stored.result == {"by": "prompt"}
    assert effects(db, job_id) == ["prompt"]


def test_a_late_failure_does_not_requeue_a_finished_job(queue, function, db):
    job_id = queue.enqueue(function, "effect")
    stale = queue.claim(function, "stale")
    wait_until_lease_expires(db, job_id)
    queue.requeue_expired()
    wait_until_due(db, job_id)
    fresh = queue.claim(function, "fresh")
    assert queue.complete(fresh, {"ok": True}) is True
    assert queue.fail(stale, "too late") is False and queue.complete(stale) is False
    assert row(db, job_id).status == "succeeded"
