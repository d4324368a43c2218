"""Micro-batching: concurrent requests share model calls.

One worker per process takes whatever requests are queued (waiting a moment for company when the queue is
short), sorts their inputs by length so padding stays small, and runs the model in batches. Requests that
arrive while the model runs wait for the next round, so under load batches fill up by themselves.

Under gunicorn's gevent worker the model call runs in gevent's native thread pool (onnxruntime releases the
GIL), so the process keeps accepting and tokenising requests meanwhile; without gevent it runs on the worker
thread itself.
"""
from __future__ import annotations

import queue
import threading
import time
import typing


def _run_off_loop(function, *args):
    try:
        from gevent import get_hub, monkey
    except ImportError:
        return function(*args)
    if monkey.is_module_patched("threading"):
        return get_hub().threadpool.apply(function, args)
    return function(*args)


class _Job:
    __slots__ = ("encodings", "done", "result", "error")

    def __init__(self, encodings: list):
        self.encodings = encodings
        self.done = threading.Event()
        self.result = None
        self.error: BaseException | None = None


class MicroBatcher:
    def __init__(self, pooled: typing.Callable[[list], typing.Any], *, batch_size: int, wait_seconds: float):
        import numpy

        self._np = numpy
        self._pooled = pooled
        self.batch_size = max(1, batch_size)
        self.wait_seconds = max(0.0, wait_seconds)
        self._queue: queue.Queue[_Job] = queue.Queue()
        self._worker: threading.Thread | None = None
        self._start_lock = threading.Lock()

    def pooled(self, encodings: list):
        """Mean-pooled vectors for these encodings, in order, computed together with concurrent requests."""
        self._ensure_worker()
        job = _Job(encodings)
        self._queue.put(job)
        job.done.wait()
        if job.error is not None:
            raise job.error
        return job.result

    def _ensure_worker(self) -> None:
        # Started on first use, in the serving process (gunicorn forks after the app is imported).
        if self._worker is not None and self._worker.is_alive():
            return
        with self._start_lock:
            if self._worker is None or not self._worker.is_alive():
                self._worker = threading.Thread(target=self._work, name="embedding-batcher", daemon=True)
                self._worker.start()

    def _gather(self) -> list[_Job]:
        jobs = [self._queue.get()]
        count = len(jobs[0].encodings)
        deadline = time.monotonic() + self.wait_seconds
        while count < self.batch_size:
            try:
                remaining = deadline - time.monotonic()
                job = self._queue.get(timeout=remaining) if remaining > 0 else self._queue.get_nowait()
            except queue.Empty:
                break
            jobs.append(job)
            count += len(job.encodings)
        return jobs

    def _work(self) -> None:
        while True:
            jobs = self._gather()
            try:
                results = _run_off_loop(self._compute, [job.encodings for job in jobs])
                for job, result in zip(jobs, results):
                    job.result = result
            except Exception as exc:  # every waiting request gets the error; the worker lives on
                for job in jobs:
                    job.error = exc
            finally:
                for job in jobs:
                    job.done.set()

    def _compute(self, groups: list[list]) -> list:
        np = self._np
        flat = [encoding for group in groups for encoding in group]
        order = sorted(range(len(flat)), key=lambda index: len(flat[index].ids))
        vectors = [None] * len(flat)
        for start in range(0, len(order), self.batch_size):
            chunk = order[start:start + self.batch_size]
            for index, vector in zip(chunk, self._pooled([flat[index] for index in chunk])):
                vectors[index] = vector
        results, offset = [], 0
        for group in groups:
            results.append(np.stack(vectors[offset:offset + len(group)]))
            offset += len(group)
        return results
