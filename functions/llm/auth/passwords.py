"""Password hashing with scrypt (memory-hard, in the standard library: no extra dependency on the image)."""
from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import os
import sys
import threading

from shared.errors import ApiError

_N, _R, _P = 2**14, 8, 1  # 16 MiB per hash


def hash_password(password: str) -> str:
    salt = os.urandom(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=_N, r=_R, p=_P, maxmem=64 * 1024 * 1024, dklen=32)
    return "scrypt${}${}${}${}${}".format(_N, _R, _P, base64.b64encode(salt).decode(), base64.b64encode(digest).decode())


def verify_password(password: str, stored: str | None) -> bool:
    """Constant work whether or not the account exists: callers pass None for unknown users."""
    dummy = _dummy_hash()
    if not stored:
        stored = dummy
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        expected = base64.b64decode(digest)
        actual = hashlib.scrypt(password.encode(), salt=base64.b64decode(salt), n=int(n), r=int(r), p=int(p),
                                maxmem=64 * 1024 * 1024, dklen=len(expected))
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(actual, expected) and stored is not dummy


@functools.cache
def _dummy_hash() -> str:
    """Made on first use, not at import: an scrypt hash costs ~80 ms of cold start."""
    return hash_password(os.urandom(8).hex())


class PasswordHasher:
    """Runs scrypt (tens of ms of CPU, GIL released) on worker threads, so a flood of logins cannot pin the
    worker's event loop; at most `threads + queue_size` hashes are in flight or waiting, beyond that a request is
    refused at once with 503 rather than queueing without bound."""

    def __init__(self, *, threads: int, queue_size: int):
        self.capacity = max(1, threads) + max(0, queue_size)
        self._threads = max(1, threads)
        self._pending = 0
        self._lock = threading.Lock()
        self._pool = None

    def _submit(self, job):
        if self._pool is None:
            if "gevent" in sys.modules and sys.modules["gevent"].monkey.is_module_patched("threading"):
                from gevent.threadpool import ThreadPool  # gunicorn's gevent worker: the loop keeps running

                self._pool = ThreadPool(self._threads)
            else:
                from concurrent.futures import ThreadPoolExecutor

                self._pool = ThreadPoolExecutor(self._threads, thread_name_prefix="password-hash")
        if hasattr(self._pool, "spawn"):
            return self._pool.spawn(job).get()
        return self._pool.submit(job).result()

    def run(self, job):
        with self._lock:
            if self._pending >= self.capacity:
                raise ApiError("too many logins in progress, retry shortly", status=503,
                               code="password_hashing_busy", headers={"Retry-After": "1"})
            self._pending += 1
        try:
            return self._submit(job)
        finally:
            with self._lock:
                self._pending -= 1

    def hash(self, password: str) -> str:
        return self.run(functools.partial(hash_password, password))

    def verify(self, password: str, stored: str | None) -> bool:
        return self.run(functools.partial(verify_password, password, stored))
