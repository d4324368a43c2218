"""Parallel creates on two replicas (two apps, two connection pools) against real PostgreSQL never exceed the
per-user or the global limit."""
from __future__ import annotations

import threading
from collections import Counter

from sqlalchemy import func, select

from shared.schema import realtime_sessions
from tests.realtime.conftest import bearer


def race(clients, accounts, per_account: int) -> Counter:
    """Every account fires `per_account` creates at once, spread over the clients; returns status counts."""
    jobs = [(clients[n % len(clients)], account) for account in accounts for n in range(per_account)]
    barrier = threading.Barrier(len(jobs))
    statuses: list[int] = []
    lock = threading.Lock()

    def create(client, account):
        barrier.wait()
        status = client.post("/v1/realtime/sessions", headers=bearer(account)).status_code
        with lock:
            statuses.append(status)

    threads = [threading.Thread(target=create, args=job) for job in jobs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return Counter(statuses)


def live_counts(app) -> dict:
    with app.extensions["jan"].db.read() as conn:
        return dict(conn.execute(select(realtime_sessions.c.user_id, func.count())
                                 .where(realtime_sessions.c.deleted_at.is_(None))
                                 .group_by(realtime_sessions.c.user_id)).all())


def test_parallel_creates_respect_the_per_user_limit(make_realtime, new_user):
    replicas = [make_realtime(realtime_max_sessions_per_user=3, realtime_max_sessions=0, db_pool_size=4,
                              db_max_overflow=4) for _ in range(2)]
    accounts = [new_user(), new_user()]
    statuses = race([app.test_client() for app in replicas], accounts, per_account=8)
    assert statuses == Counter({201: 6, 429: 10})
    assert sorted(live_counts(replicas[0]).values()) == [3, 3]


def test_parallel_creates_respect_the_global_limit(make_realtime, new_user):
    replicas = [make_realtime(realtime_max_sessions_per_user=0, realtime_max_sessions=5, db_pool_size=4,
                              db_max_overflow=4) for _ in range(2)]
    accounts = [new_user() for _ in range(4)]
    statuses = race([app.test_client() for app in replicas], accounts, per_account=4)
    assert statuses == Counter({201: 5, 429: 11})
    assert sum(live_counts(replicas[0]).values()) == 5
