"""Fixed-window rate limits shared by every pod, counted in PostgreSQL (`rate_limit_counters`).

A request costs one statement: the counter of each limit's current window is inserted or incremented
(`INSERT … ON CONFLICT (key, window_start) DO UPDATE SET count = count + 1 RETURNING count`), so every pod of every
function sees the same count with no extra service. Windows are aligned on the database clock, so pods with
skewed clocks agree. Ended windows are deleted now and then by whichever request happens to prune.

Keys are `<scope>|<window seconds>|<subject>`: the window length is part of the key, so a minute and an hour
window that start at the same instant are different rows, and pruning knows when each row's window ended.
"""
from __future__ import annotations

import hashlib
import ipaddress
import logging
import math
import random
from dataclasses import dataclass
from typing import Sequence

from sqlalchemy import bindparam, text
from sqlalchemy.types import Float, Integer, String

from shared.db import Database
from shared.errors import TooManyRequests

log = logging.getLogger("jan.ratelimit")

MAX_KEY_LENGTH = 255


@dataclass(frozen=True)
class Limit:
    """At most `requests` per `window_seconds`; `requests <= 0` switches the limit off."""

    requests: int
    window_seconds: int


@dataclass(frozen=True)
class Decision:
    allowed: bool
    limit: int  # the tightest limit that applied
    remaining: int  # requests left in the tightest window
    retry_after: int  # seconds until the exceeded window ends (0 when allowed)


def counter_key(scope: str, window_seconds: int, subject: str) -> str:
    if "|" in scope:
        raise ValueError("a rate-limit scope must not contain '|'")
    key = f"{scope}|{window_seconds}|{subject}"
    if len(key) > MAX_KEY_LENGTH:
        key = f"{scope}|{window_seconds}|sha256:{hashlib.sha256(subject.encode()).hexdigest()}"
    return key


_PRUNE = text("""
    DELETE FROM rate_limit_counters
    WHERE window_start + (CASE WHEN split_part(key, '|', 2) ~ '^[0-9]{1,9}$'
                               THEN split_part(key, '|', 2)::integer ELSE 86400 END) * interval '1 second'
          <= to_timestamp(COALESCE(CAST(:at AS double precision), extract(epoch FROM now())))
""").bindparams(bindparam("at", type_=Float))


class RateLimiter:
    def __init__(self, db: Database, *, prune_probability: float = 0.01):
        self.db = db
        self.prune_probability = prune_probability

    def hit(self, scope: str, subject: str, limits: Sequence[Limit], *, at: float | None = None) -> Decision:
        """Count one request of `subject` against every limit and say whether it may proceed. `at` (unix
        seconds) replaces the database clock, for tests."""
        windows: dict[int, int] = {}
        for limit in limits:
            if limit.requests > 0 and limit.window_seconds > 0:
                current = windows.get(limit.window_seconds)
                windows[limit.window_seconds] = limit.requests if current is None else min(current, limit.requests)
        if not windows:
            return Decision(allowed=True, limit=0, remaining=0, retry_after=0)
        # Rows are always locked in the same order (by window), so concurrent requests cannot deadlock.
        ordered = sorted(windows)
        values = ", ".join(f"(:key{n}, :window{n})" for n in range(len(ordered)))
        statement = text(f"""
            WITH clock AS (SELECT COALESCE(CAST(:at AS double precision), extract(epoch FROM now())) AS t),
            counted AS (
                INSERT INTO rate_limit_counters AS c (key, window_start, count)
                SELECT v.key, to_timestamp(floor(clock.t / v.seconds) * v.seconds), 1
                FROM (VALUES {values}) AS v(key, seconds), clock
                ON CONFLICT (key, window_start) DO UPDATE SET count = c.count + 1
                RETURNING c.key, c.count, extract(epoch FROM c.window_start) AS started
            )
            SELECT counted.key, counted.count, counted.started, clock.t AS now FROM counted, clock
        """).bindparams(bindparam("at", type_=Float))
        params: dict = {"at": at}
        for n, window in enumerate(ordered):
            statement = statement.bindparams(bindparam(f"key{n}", type_=String), bindparam(f"window{n}", type_=Integer))
            params[f"key{n}"] = counter_key(scope, window, subject)
            params[f"window{n}"] = window
        with self.db.relaxed_write() as conn:
            rows = conn.execute(statement, params).all()
            if self.prune_probability and random.random() < self.prune_probability:
                pruned = conn.execute(_PRUNE, {"at": at}).rowcount
                log.debug("pruned %d ended rate-limit windows", pruned)
        counts = {row.key: row for row in rows}
        allowed, retry_after = True, 0
        tightest_limit, tightest_remaining = 0, None
        for window in ordered:
            row = counts[counter_key(scope, window, subject)]
            maximum = windows[window]
            remaining = max(0, maximum - row.count)
            if tightest_remaining is None or remaining < tightest_remaining:
                tightest_limit, tightest_remaining = maximum, remaining
            if row.count > maximum:
                allowed = False
                retry_after = max(retry_after, math.ceil(float(row.started) + window - float(row.now)), 1)
        return Decision(allowed=allowed, limit=tightest_limit, remaining=tightest_remaining or 0,
                        retry_after=retry_after)

    def enforce(self, scope: str, subject: str, limits: Sequence[Limit]) -> Decision:
        """`hit`, raising 429 (with `Retry-After`) when a limit is exceeded."""
        decision = self.hit(scope, subject, limits)
        if not decision.allowed:
            raise TooManyRequests("too many requests, retry later", code="rate_limited",
                                  headers={"Retry-After": str(decision.retry_after)})
        return decision

    def prune(self, *, at: float | None = None) -> int:
        """Delete every counter whose window has ended."""
        with self.db.transaction() as conn:
            return conn.execute(_PRUNE, {"at": at}).rowcount


def client_address(request, header: str = "") -> str:
    """Who to count a public request against.

    The peer address (`remote_addr`) unless `header` names a header that a trusted proxy in front of the
    function sets to the client's address — Kong and the dev gateway set `X-Real-IP` from the connection,
    replacing whatever the client sent. The header must hold one address; anything else falls back to the
    peer. (`X-Forwarded-For` is a poor choice: Kong appends to it, so its first entry is whatever the client
    claimed, and the number of hops after Kong varies with the Knative activator being on the path or not.)

    IPv6 clients are counted per /64, the block one subscriber normally gets, so rotating addresses within it
    does not reset the count.
    """
    candidates = []
    if header:
        candidates.append(request.headers.get(header, ""))
    candidates.append(request.remote_addr or "")
    for raw in candidates:
        try:
            address = ipaddress.ip_address(raw.strip())
        except ValueError:
            continue
        if isinstance(address, ipaddress.IPv6Address):
            if address.ipv4_mapped is not None:
                return str(address.ipv4_mapped)
            return str(ipaddress.IPv6Network((address, 64), strict=False))
        return str(address)
    return "unknown"
