"""Durable jobs: one queue in PostgreSQL, with leases, retries with backoff and a dead-letter state.

Life of a job: `enqueue` (queued, idempotent by key) -> a claim (`FOR UPDATE SKIP LOCKED`: one claimer wins) sets
status running, counts an attempt and sets a lease (worker id, lease_until = now + maximum duration + grace, a
fresh lease token) -> the handler runs inside an HTTP request (`POST /internal/jobs/run`, see
shared/jobs_routes.py) that Knative counts as in flight -> `complete` (succeeded) or `fail` (queued again after
backoff, or dead after the last attempt). A worker that dies leaves its lease to run out; the sweep
(shared/jobs_sweep.py, a CronJob in a cluster) requeues it and dispatches due jobs, so nothing waits for traffic.

Exactly once in effect: a job may run more than once (a worker lost mid-job), so only the current lease holder
can finish it. Database effects written through `JobContext.effects()` commit in the same transaction as the
completion and roll back when the lease was lost; other effects are keyed by the job id (e.g. an idempotency key
sent to the webhook receiver).
"""
from __future__ import annotations

import contextlib
import datetime as dt
import logging
import time
import uuid
from dataclasses import dataclass, field
from typing import Callable, Iterator

from sqlalchemy import and_, case, func, literal, select, update
from sqlalchemy.dialects.postgresql import insert

from shared import ids
from shared.db import Database
from shared.platform_schema import jobs
from shared.settings import PlatformSettings

log = logging.getLogger("jan.jobs")


class LeaseLost(Exception):
    """This worker's lease ran out and another claim took the job: its outcome is not recorded."""


@dataclass(frozen=True)
class Job:
    id: int
    public_id: str
    function: str
    kind: str
    payload: dict
    user_id: int | None
    attempts: int
    max_attempts: int
    lease_token: str
    lease_until: dt.datetime


def _job(row) -> Job:
    return Job(id=row.id, public_id=row.public_id, function=row.function, kind=row.kind, payload=row.payload,
               user_id=row.user_id, attempts=row.attempts, max_attempts=row.max_attempts,
               lease_token=row.lease_token, lease_until=row.lease_until)


def _seconds(value: float):
    return func.make_interval(0, 0, 0, 0, 0, 0, literal(float(value)))


class JobQueue:
    def __init__(self, db: Database, settings: PlatformSettings):
        self.db = db
        self.max_duration = settings.job_max_duration_seconds
        self.lease_seconds = settings.job_max_duration_seconds + settings.job_lease_grace_seconds
        self.max_attempts = settings.job_max_attempts
        self.retry_base = settings.job_retry_base_seconds
        self.retry_max = settings.job_retry_max_seconds

    def backoff_seconds(self, attempts: int) -> float:
        return min(self.retry_max, self.retry_base * 2 ** max(attempts - 1, 0))

    def enqueue(self, function: str, kind: str, payload: dict | None = None, *, user_id: int | None = None,
                idempotency_key: str | None = None, delay_seconds: float = 0.0, max_attempts: int | None = None,
                conn=None) -> str:
        """Queue a job for `function`'s handler `kind`; the same idempotency key returns the first job's id.
        With `conn`, the job commits (or not) with the caller's own transaction."""
        values = dict(public_id=ids.public_id("job"), function=function, kind=kind, payload=payload or {},
                      user_id=user_id, idempotency_key=idempotency_key,
                      max_attempts=max_attempts or self.max_attempts,
                      run_at=func.now() + _seconds(delay_seconds))
        statement = (insert(jobs).values(**values)
                     .on_conflict_do_nothing(index_elements=[jobs.c.function, jobs.c.idempotency_key],
                                             index_where=jobs.c.idempotency_key.isnot(None))
                     .returning(jobs.c.public_id))
        with contextlib.ExitStack() as stack:
            if conn is None:
                conn = stack.enter_context(self.db.transaction())
            created = conn.execute(statement).scalar()
            if created is not None:
                return created
            return conn.execute(select(jobs.c.public_id).where(
                jobs.c.function == function, jobs.c.idempotency_key == idempotency_key)).scalar_one()

    def claim(self, function: str, worker_id: str, job_public_id: str | None = None) -> Job | None:
        """Lease one due job of `function` (the named one if given): at most one claimer gets any job."""
        due = (select(jobs.c.id)
               .where(jobs.c.function == function, jobs.c.status == "queued", jobs.c.run_at <= func.now())
               .order_by(jobs.c.run_at, jobs.c.id).limit(1).with_for_update(skip_locked=True))
        if job_public_id is not None:
            due = due.where(jobs.c.public_id == job_public_id)
        statement = (update(jobs).where(jobs.c.id == due.scalar_subquery())
                     .values(status="running", attempts=jobs.c.attempts + 1, worker_id=worker_id[:128],
                             lease_token=str(uuid.uuid4()), lease_until=func.now() + _seconds(self.lease_seconds),
                             updated_at=func.now())
                     .returning(jobs))
        with self.db.transaction() as conn:
            row = conn.execute(statement).first()
        return _job(row) if row is not None else None

    def _held(self, job: Job):
        return and_(jobs.c.id == job.id, jobs.c.status == "running", jobs.c.lease_token == job.lease_token)

    def complete(self, job: Job, result: dict | None = None, *, conn=None) -> bool:
        """Record success; False (and nothing changed) when this worker no longer holds the lease."""
        statement = (update(jobs).where(self._held(job))
                     .values(status="succeeded", result=result, lease_until=None, lease_token=None,
                             finished_at=func.now(), updated_at=func.now(), last_error=None))
        with contextlib.ExitStack() as stack:
            if conn is None:
                conn = stack.enter_context(self.db.transaction())
            return conn.execute(statement).rowcount == 1

    def fail(self, job: Job, error: str) -> bool:
        """Queue the job again after backoff, or dead-letter it after its last attempt."""
        dead = job.attempts >= job.max_attempts
        values = dict(status="dead" if dead else "queued", last_error=error[:2000], lease_until=None,
                      lease_token=None, worker_id=None, updated_at=func.now())
        if dead:
            values["finished_at"] = func.now()
        else:
            values["run_at"] = func.now() + _seconds(self.backoff_seconds(job.attempts))
        with self.db.transaction() as conn:
            return conn.execute(update(jobs).where(self._held(job)).values(**values)).rowcount == 1

    def requeue_expired(self) -> int:
        """Jobs whose worker was lost (lease ran out): queued again after backoff, or dead after the last attempt."""
        exhausted = jobs.c.attempts >= jobs.c.max_attempts
        backoff = func.least(self.retry_max, self.retry_base * func.power(2, func.greatest(jobs.c.attempts - 1, 0)))
        statement = (update(jobs).where(jobs.c.status == "running", jobs.c.lease_until < func.now())
                     .values(status=case((exhausted, "dead"), else_="queued"),
                             run_at=case((exhausted, jobs.c.run_at),
                                         else_=func.now() + func.make_interval(0, 0, 0, 0, 0, 0, backoff)),
                             finished_at=case((exhausted, func.now()), else_=None),
                             last_error="lease expired: the worker was lost before finishing",
                             lease_until=None, lease_token=None, worker_id=None, updated_at=func.now()))
        with self.db.transaction() as conn:
            return conn.execute(statement).rowcount

    def due(self, functions: list[str], limit: int = 100) -> list[tuple[str, str]]:
        """(function, job id) of these functions' queued jobs whose time has come, oldest first."""
        with self.db.read() as conn:
            rows = conn.execute(select(jobs.c.function, jobs.c.public_id)
                                .where(jobs.c.status == "queued", jobs.c.run_at <= func.now(),
                                       jobs.c.function.in_(functions))
                                .order_by(jobs.c.run_at, jobs.c.id).limit(limit)).all()
        return [(row.function, row.public_id) for row in rows]

    def get(self, public_id: str):
        with self.db.read() as conn:
            return conn.execute(select(jobs).where(jobs.c.public_id == public_id)).first()


@dataclass
class JobContext:
    """What a handler gets: its job, the time it must finish by, and a transaction that finishes the job."""

    job: Job
    queue: JobQueue
    deadline: float  # time.monotonic() value
    completed: bool = False

    def remaining_seconds(self) -> float:
        return self.deadline - time.monotonic()

    @contextlib.contextmanager
    def effects(self, result: dict | None = None) -> Iterator:
        """A transaction for the job's database effects that also completes the job: both commit, or, when the
        lease was lost meanwhile, neither (LeaseLost is raised and the effects roll back)."""
        with self.queue.db.transaction() as conn:
            yield conn
            if not self.queue.complete(self.job, result, conn=conn):
                raise LeaseLost(self.job.public_id)
        self.completed = True


Handler = Callable[[JobContext], "dict | None"]


@dataclass
class JobRegistry:
    """A function's job handlers by name: `@registry.handler("webhook.deliver")`."""

    function: str
    handlers: dict[str, Handler] = field(default_factory=dict)

    def handler(self, kind: str):
        def register(fn: Handler) -> Handler:
            if kind in self.handlers:
                raise ValueError(f"job handler {kind!r} is registered twice")
            self.handlers[kind] = fn
            return fn

        return register


@dataclass(frozen=True)
class RunOutcome:
    job_id: str | None
    status: str  # idle (nothing to claim) | succeeded | queued (will retry) | dead | lease_lost

    def body(self) -> dict:
        return {"job_id": self.job_id, "status": self.status}


def run_one(queue: JobQueue, registry: JobRegistry, worker_id: str, job_public_id: str | None = None) -> RunOutcome:
    """Claim one due job of the registry's function (the named one if it is still due) and run it to an outcome."""
    job = queue.claim(registry.function, worker_id, job_public_id)
    if job is None and job_public_id is not None:
        job = queue.claim(registry.function, worker_id)  # the named job ran elsewhere: take the next due one
    if job is None:
        return RunOutcome(None, "idle")
    handler = registry.handlers.get(job.kind)
    if handler is None:
        queue.fail(job, f"no handler named {job.kind!r} in function {registry.function!r}")
        return RunOutcome(job.public_id, _after_failure(job))
    context = JobContext(job=job, queue=queue, deadline=time.monotonic() + queue.max_duration)
    try:
        result = handler(context)
    except LeaseLost:
        log.warning("job %s: lease lost before it finished; the other claim's outcome stands", job.public_id)
        return RunOutcome(job.public_id, "lease_lost")
    except Exception as error:  # a failing handler is a failed attempt, never a crashed worker
        log.warning("job %s (%s) attempt %d failed: %s", job.public_id, job.kind, job.attempts, error)
        if not queue.fail(job, f"{type(error).__name__}: {error}"):
            return RunOutcome(job.public_id, "lease_lost")
        return RunOutcome(job.public_id, _after_failure(job))
    if context.completed or queue.complete(job, result if isinstance(result, dict) else None):
        return RunOutcome(job.public_id, "succeeded")
    return RunOutcome(job.public_id, "lease_lost")


def _after_failure(job: Job) -> str:
    return "dead" if job.attempts >= job.max_attempts else "queued"


def parse_function_urls(entries: tuple[str, ...]) -> dict[str, str]:
    urls = {}
    for entry in entries:
        name, sep, url = entry.partition("=")
        if not sep or not name.strip() or not url.strip():
            raise ValueError(f"FUNCTION_URLS entry {entry!r} is not name=url")
        urls[name.strip()] = url.strip().rstrip("/")
    return urls
