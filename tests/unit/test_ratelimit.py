"""shared/ratelimit.py: fixed windows counted in PostgreSQL (one upsert per request, shared by every process),
Retry-After, pruning of ended windows, concurrency, and which client address a request is counted against."""
from __future__ import annotations

import threading
import uuid

import pytest
from flask import Flask, request
from sqlalchemy import select, text

from shared.db import Database, make_engine
from shared.errors import TooManyRequests
from shared.ratelimit import Limit, RateLimiter, client_address, counter_key
from shared.schema import rate_limit_counters
from shared.settings import PlatformSettings

T0 = 1_800_000_000.0  # a minute and an hour boundary (divisible by 3600)


@pytest.fixture(scope="module")
def db(database_url):
    database = Database(make_engine(PlatformSettings(database_url=database_url, db_pool_size=4, db_max_overflow=8)))
    yield database
    database.engine.dispose()


@pytest.fixture
def subject():
    return f"203.0.113.{uuid.uuid4().int % 250}-{uuid.uuid4().hex[:8]}"


def counters(db, subject: str) -> dict:
    with db.read() as conn:
        rows = conn.execute(select(rate_limit_counters).where(rate_limit_counters.c.key.like(f"%|{subject}"))).all()
    return {(row.key, int(row.window_start.timestamp())): row.count for row in rows}


def test_counts_within_a_window_and_refuses_past_the_limit(db, subject):
    limiter = RateLimiter(db, prune_probability=0)
    limits = [Limit(3, 60)]
    decisions = [limiter.hit("test", subject, limits, at=T0 + 10 + n) for n in range(4)]
    assert [d.allowed for d in decisions] == [True, True, True, False]
    assert [d.remaining for d in decisions] == [2, 1, 0, 0]
    assert decisions[-1].retry_after == 60 - 13  # the window ends at T0 + 60
    assert counters(db, subject) == {(counter_key("test", 60, subject), int(T0)): 4}


def test_a_new_window_starts_from_zero(db, subject):
    limiter = RateLimiter(db, prune_probability=0)
    for _ in range(3):
        limiter.hit("test", subject, [Limit(2, 60)], at=T0 + 59)
    assert not limiter.hit("test", subject, [Limit(2, 60)], at=T0 + 59.9).allowed
    assert limiter.hit("test", subject, [Limit(2, 60)], at=T0 + 60).allowed


def test_every_limit_counts_and_the_longest_exceeded_window_sets_retry_after(db, subject):
    limiter = RateLimiter(db, prune_probability=0)
    limits = [Limit(100, 60), Limit(2, 3600)]
    assert limiter.hit("test", subject, limits, at=T0 + 5).allowed
    assert limiter.hit("test", subject, limits, at=T0 + 6).allowed
    decision = limiter.hit("test", subject, limits, at=T0 + 70)  # next minute, same hour
    assert not decision.allowed
    assert decision.retry_after == 3600 - 70
    assert decision.limit == 2 and decision.remaining == 0
    assert counters(db, subject) == {(counter_key("test", 60, subject), int(T0)): 2,
                                     (counter_key("test", 60, subject), int(T0) + 60): 1,
                                     (counter_key("test", 3600, subject), int(T0)): 3}


def test_the_database_clock_is_used_by_default(db, subject):
    limiter = RateLimiter(db, prune_probability=0)
    decision = limiter.hit("test", subject, [Limit(1, 60)])
    assert decision.allowed
    refused = limiter.hit("test", subject, [Limit(1, 60)])
    assert not refused.allowed and 1 <= refused.retry_after <= 60


def test_switched_off_limits_touch_nothing(db, subject):
    limiter = RateLimiter(db, prune_probability=0)
    assert limiter.hit("test", subject, [Limit(0, 60), Limit(-1, 3600)]).allowed
    assert counters(db, subject) == {}


def test_enforce_raises_429_with_retry_after(db, subject):
    limiter = RateLimiter(db, prune_probability=0)
    limiter.enforce("test", subject, [Limit(1, 3600)])
    with pytest.raises(TooManyRequests) as raised:
        limiter.enforce("test", subject, [Limit(1, 3600)])
    assert raised.value.status == 429
    assert raised.value.code == "rate_limited"
    assert 1 <= int(raised.value.headers["Retry-After"]) <= 3600


def test_two_limiters_on_one_database_share_the_count(db, database_url, subject):
    """Two pods: separate engines and limiters, one PostgreSQL."""
    other_db = Database(make_engine(PlatformSettings(database_url=database_url)))
    try:
        first, second = RateLimiter(db, prune_probability=0), RateLimiter(other_db, prune_probability=0)
        assert first.hit("test", subject, [Limit(2, 60)], at=T0).allowed
        assert second.hit("test", subject, [Limit(2, 60)], at=T0 + 1).allowed
        assert not first.hit("test", subject, [Limit(2, 60)], at=T0 + 2).allowed
        assert not second.hit("test", subject, [Limit(2, 60)], at=T0 + 3).allowed
    finally:
        other_db.engine.dispose()


def test_parallel_hits_lose_no_count(db, subject):
    limiter = RateLimiter(db, prune_probability=0)
    limits = [Limit(1000, 60), Limit(1000, 3600)]
    barrier = threading.Barrier(8)
    errors = []

    def worker():
        try:
            barrier.wait()
            for _ in range(10):
                limiter.hit("test", subject, limits, at=T0 + 1)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert counters(db, subject) == {(counter_key("test", 60, subject), int(T0)): 80,
                                     (counter_key("test", 3600, subject), int(T0)): 80}


def test_pruning_deletes_only_windows_that_have_ended(db, subject):
    limiter = RateLimiter(db, prune_probability=0)
    limiter.hit("test", subject, [Limit(5, 60), Limit(5, 3600)], at=T0 + 1)
    limiter.prune(at=T0 + 59)
    assert len(counters(db, subject)) == 2
    limiter.prune(at=T0 + 60)  # the minute window has ended, the hour window has not
    assert counters(db, subject) == {(counter_key("test", 3600, subject), int(T0)): 1}
    limiter.prune(at=T0 + 3600)
    assert counters(db, subject) == {}


def test_pruning_happens_opportunistically_during_hits(db, subject):
    stale = f"{subject}-stale"
    RateLimiter(db, prune_probability=0).hit("test", stale, [Limit(5, 60)], at=T0 - 3600)
    assert counters(db, stale)
    RateLimiter(db, prune_probability=1.0).hit("test", subject, [Limit(5, 60)], at=T0)
    assert counters(db, stale) == {}
    assert counters(db, subject)  # the live window stays


def test_long_subjects_are_hashed_into_the_key():
    key = counter_key("test", 60, "x" * 400)
    assert len(key) <= 255 and key.startswith("test|60|sha256:")
    with pytest.raises(ValueError):
        counter_key("a|b", 60, "x")


def test_the_counter_table_is_keyed_by_key_and_window(db):
    with db.read() as conn:
        columns = conn.execute(text(
            "SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid "
            "AND a.attnum = ANY(i.indkey) WHERE i.indrelid = 'rate_limit_counters'::regclass AND i.indisprimary"
        )).scalars().all()
    assert sorted(columns) == ["key", "window_start"]


# Client address ---------------------------------------------------------------------------------------------

app = Flask(__name__)


def address(header: str = "", remote: str = "198.51.100.7", **headers) -> str:
    with app.test_request_context("/", headers=headers, environ_base={"REMOTE_ADDR": remote}):
        return client_address(request, header)


def test_the_peer_address_by_default_whatever_the_headers_say():
    assert address() == "198.51.100.7"
    assert address(**{"X-Forwarded-For": "1.2.3.4", "X-Real-IP": "5.6.7.8"}) == "198.51.100.7"


def test_the_configured_proxy_header_when_it_holds_one_address():
    assert address("X-Real-IP", **{"X-Real-IP": "203.0.113.9", "X-Forwarded-For": "1.2.3.4"}) == "203.0.113.9"
    assert address("X-Real-IP", **{"X-Real-IP": " 203.0.113.9 "}) == "203.0.113.9"


@pytest.mark.parametrize("value", ["", "not-an-ip", "1.2.3.4, 5.6.7.8", "999.1.1.1"])
def test_a_missing_or_unusable_header_falls_back_to_the_peer(value):
    assert address("X-Real-IP", **({"X-Real-IP": value} if value else {})) == "198.51.100.7"


def test_ipv6_clients_are_counted_per_64():
    assert address(remote="2001:db8:1:2:aaaa::1") == "2001:db8:1:2::/64"
    assert address(remote="2001:db8:1:2:bbbb::9") == "2001:db8:1:2::/64"
    assert address(remote="::ffff:192.0.2.5") == "192.0.2.5"


def test_no_usable_address_at_all():
    assert address(remote="") == "unknown"
