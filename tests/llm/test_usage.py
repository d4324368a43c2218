"""Usage reports through HTTP against PostgreSQL: totals checked against chats made through the scripted
upstream (which reports word counts as tokens), time windows, UTC days, projects (owner only), the admin view
with its pagination, bad windows (400, nothing changed) and the number of SQL statements per report."""
from __future__ import annotations

import datetime as dt
import itertools

import pytest
from sqlalchemy import event, insert, select, update

from shared import ids
from shared.errors import ERROR_TYPES
from shared.domain.conversations.tables import conversations, projects
from shared.domain.usage.tables import usage_records
from shared.schema import users
from tests.conftest import TEST_MODEL_ID
from tests.doubles import error, reply

pytestmark = pytest.mark.usefixtures("provider")

UTC = dt.timezone.utc
COUNTERS = ("requests", "failed_requests", "estimated_requests", "prompt_tokens", "completion_tokens",
            "total_tokens")


def assert_error(response, status: int, message: str, *, param=None, code=None) -> None:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.json == {"error": {"message": message, "type": ERROR_TYPES[status], "param": param, "code": code},
                             "message": message, "request_id": response.headers["X-Request-Id"]}


def chat(account, text: str, **body):
    response = account.post("/v1/chat/completions",
                            json={"model": TEST_MODEL_ID, "messages": [{"role": "user", "content": text}], **body})
    return response


def counters(requests=0, failed=0, estimated=0, prompt=0, completion=0) -> dict:
    return {"requests": requests, "failed_requests": failed, "estimated_requests": estimated,
            "prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def internal_id(app, public_id: str) -> int:
    with app.extensions["jan"].db.read() as conn:
        return conn.execute(select(users.c.id).where(users.c.public_id == public_id)).scalar_one()


def seed(app, user_public_id: str, *rows: tuple) -> None:
    """Usage rows at chosen times: (created_at, model, prompt, completion[, status[, project_id]])."""
    user_id = internal_id(app, user_public_id)
    values = []
    for row in rows:
        created_at, model, prompt, completion, *rest = row
        status = rest[0] if rest else "completed"
        project_id = rest[1] if len(rest) > 1 else None
        values.append(dict(user_id=user_id, model=model, endpoint="chat.completions", stream=False, status=status,
                           prompt_tokens=prompt, completion_tokens=completion, total_tokens=prompt + completion,
                           latency_ms=1.0, created_at=created_at, project_id=project_id))
    with app.extensions["jan"].db.transaction() as conn:
        conn.execute(insert(usage_records), values)


def at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=UTC)


# The caller's totals ---------------------------------------------------------------------------------------------

def test_usage_me_totals_match_the_chats_made(guest, upstream):
    # The scripted upstream echoes "echo: <text>" and counts words: prompt = words sent, completion = words + 1.
    for text in ("one two", "three four five", "six"):
        assert chat(guest, text).status_code == 200
    response = guest.get("/v1/usage/me")
    assert response.status_code == 200
    body = response.json
    expected = counters(requests=3, prompt=6, completion=9)
    assert body == {"object": "usage", "user_id": guest.user_id, "from": body["from"], "to": body["to"],
                    **expected, "by_model": [{"model": TEST_MODEL_ID, **expected}]}
    assert guest.get("/llm/v1/usage/me").json["total_tokens"] == 15


def test_failed_and_streamed_requests_are_counted(app, guest, upstream):
    chat(guest, "alpha beta")
    upstream.script(error(500))
    assert chat(guest, "gamma").status_code == 502
    upstream.script(reply("x y z", usage={"prompt_tokens": 100, "completion_tokens": 50, "total_tokens": 150}))
    streamed = chat(guest, "delta", stream=True, stream_options={"include_usage": True})
    assert streamed.status_code == 200
    with app.extensions["jan"].db.read() as conn:
        failed = conn.execute(select(usage_records).where(usage_records.c.user_id == internal_id(app, guest.user_id),
                                                          usage_records.c.status == "failed")).one()
    body = guest.get("/v1/usage/me").json
    assert body["requests"] == 3 and body["failed_requests"] == 1
    assert body["estimated_requests"] == int(failed.usage_estimated)
    assert body["prompt_tokens"] == 2 + 100 + failed.prompt_tokens
    assert body["completion_tokens"] == 3 + 50 + failed.completion_tokens
    assert body["total_tokens"] == body["prompt_tokens"] + body["completion_tokens"]


def test_usage_is_split_by_model_busiest_first(app, guest):
    now = dt.datetime.now(UTC) - dt.timedelta(minutes=5)
    seed(app, guest.user_id, (now, "a/small", 1, 1), (now, "b/big", 100, 10), (now, "b/big", 5, 5),
         (now, "a/small", 2, 0, "failed"))
    body = guest.get("/v1/usage/me").json
    assert body["by_model"] == [{"model": "b/big", **counters(requests=2, prompt=105, completion=15)},
                                {"model": "a/small", **counters(requests=2, failed=1, prompt=3, completion=1)}]
    assert {name: body[name] for name in COUNTERS} == counters(requests=4, failed=1, prompt=108, completion=16)


def test_api_key_requests_count_for_their_owner(guest, upstream):
    key = guest.post("/auth/api-keys", json={"name": "k"}).json["key"]
    with guest.client.post("/v1/chat/completions", headers={"X-API-Key": key},
                           json={"model": TEST_MODEL_ID, "messages": [{"role": "user", "content": "a b c"}]}) as r:
        assert r.status_code == 200
    body = guest.client.get("/v1/usage/me", headers={"X-API-Key": key}).json
    assert body["user_id"] == guest.user_id and body["requests"] == 1 and body["total_tokens"] == 7


def test_a_caller_sees_only_their_own_usage(guest, new_guest, upstream):
    other = new_guest()
    chat(guest, "mine only")
    chat(other, "theirs is much longer than mine")
    assert guest.get("/v1/usage/me").json["prompt_tokens"] == 2
    assert other.get("/v1/usage/me").json["prompt_tokens"] == 6
    forged = guest.get("/v1/usage/me", headers={"X-User-ID": other.user_id})
    assert forged.json["user_id"] == guest.user_id and forged.json["prompt_tokens"] == 2
    fresh = new_guest().get("/v1/usage/me").json
    assert {name: fresh[name] for name in COUNTERS} == counters() and fresh["by_model"] == []


# Windows -----------------------------------------------------------------------------------------------------------

WINDOW_ROWS = [
    (at("2024-03-01T10:00:00"), "m/one", 1, 1),
    (at("2024-03-01T23:59:59"), "m/one", 2, 2),
    (at("2024-03-02T00:00:00"), "m/two", 4, 4),
    (at("2024-03-05T12:00:00"), "m/one", 8, 8),
    (at("2024-02-29T23:59:59"), "m/one", 16, 16),
]


@pytest.mark.parametrize("query, requests, prompt", [
    ({"from": "2024-03-01", "to": "2024-03-01"}, 2, 3),  # a date as `to` includes that day
    ({"from": "2024-03-01", "to": "2024-03-02"}, 3, 7),
    ({"from": "2024-03-01T12:00:00Z", "to": "2024-03-02T00:00:00Z"}, 1, 2),  # `to` as a time is exclusive
    ({"from": "2024-03-01T12:00:00+02:00", "to": "2024-03-02T00:00:00.000001Z"}, 3, 7),
    ({"from": "2024-03-01T10:00:00.000000001Z", "to": "2024-03-31"}, 3, 14),  # a finer bound rounds up to the next microsecond
    ({"from": "2024-02-01", "to": "2024-03-31"}, 5, 31),
    ({"from": "2024-03-06", "to": "2024-03-31"}, 0, 0),
])
def test_usage_windows(app, new_guest, query, requests, prompt):
    account = new_guest()
    seed(app, account.user_id, *WINDOW_ROWS)
    body = account.get("/v1/usage/me", query_string=query).json
    assert body["requests"] == requests and body["prompt_tokens"] == prompt


def test_the_window_is_echoed_in_utc(app, guest):
    body = guest.get("/v1/usage/me", query_string={"from": "2024-03-01T12:00:00+02:00", "to": "2024-03-02"}).json
    assert body["from"] == "2024-03-01T10:00:00Z" and body["to"] == "2024-03-03T00:00:00Z"


def test_the_default_window_is_the_last_30_days_including_today(app, guest):
    now = dt.datetime.now(UTC)
    today = dt.datetime(now.year, now.month, now.day, tzinfo=UTC)
    seed(app, guest.user_id,
         (today - dt.timedelta(days=29), "m/x", 1, 0),  # the first day of the window
         (today - dt.timedelta(days=29, seconds=1), "m/x", 10, 0),  # just before it
         (now - dt.timedelta(seconds=5), "m/x", 100, 0))
    body = guest.get("/v1/usage/me").json
    assert body["prompt_tokens"] == 101
    assert body["from"] == (today - dt.timedelta(days=29)).isoformat().replace("+00:00", "Z")
    assert abs(dt.datetime.fromisoformat(body["to"].replace("Z", "+00:00")) - now) < dt.timedelta(minutes=1)
    only_to = guest.get("/v1/usage/me", query_string={"to": "2024-03-30"}).json
    assert only_to["from"] == "2024-03-01T00:00:00Z" and only_to["to"] == "2024-03-31T00:00:00Z"


@pytest.mark.parametrize("query, message, param", [
    ({"from": "yesterday"}, "from must be an RFC 3339 time or a YYYY-MM-DD date", "from"),
    ({"from": "2024-13-01"}, "from must be an RFC 3339 time or a YYYY-MM-DD date", "from"),
    ({"to": "2024-02-30"}, "to must be an RFC 3339 time or a YYYY-MM-DD date", "to"),
    ({"from": "2024-03-01T10:00:00"}, "from must be an RFC 3339 time or a YYYY-MM-DD date", "from"),  # no offset
    ({"from": "1714000000"}, "from must be an RFC 3339 time or a YYYY-MM-DD date", "from"),
    ({"to": "2024-03-01T25:00:00Z"}, "to must be an RFC 3339 time or a YYYY-MM-DD date", "to"),
    ({"to": "9999-12-31"}, "to must be an RFC 3339 time or a YYYY-MM-DD date", "to"),
    ({"from": "2024-03-02", "to": "2024-03-01"}, "from must be before to", "from"),
    ({"from": "2024-03-01T00:00:00Z", "to": "2024-03-01T00:00:00Z"}, "from must be before to", "from"),
])
def test_bad_windows_are_400(guest, admin, snapshot, query, message, param):
    before = snapshot()
    for account, path in ((guest, "/v1/usage/me"), (guest, "/v1/usage/me/daily"),
                          (guest, f"/v1/usage/projects/{ids.public_id('proj')}"), (admin, "/v1/admin/usage")):
        assert_error(account.get(path, query_string=query), 400, message, param=param)
    assert snapshot() == before


# Daily rows --------------------------------------------------------------------------------------------------------

def test_daily_rows_are_utc_days_with_usage(app, guest):
    seed(app, guest.user_id, *WINDOW_ROWS)
    response = guest.get("/v1/usage/me/daily", query_string={"from": "2024-03-01", "to": "2024-03-31"})
    assert response.status_code == 200
    body = response.json
    assert body == {
        "object": "list",
        "data": [
            {"object": "usage.day", "date": "2024-03-01", **counters(requests=2, prompt=3, completion=3),
             "by_model": [{"model": "m/one", **counters(requests=2, prompt=3, completion=3)}]},
            {"object": "usage.day", "date": "2024-03-02", **counters(requests=1, prompt=4, completion=4),
             "by_model": [{"model": "m/two", **counters(requests=1, prompt=4, completion=4)}]},
            {"object": "usage.day", "date": "2024-03-05", **counters(requests=1, prompt=8, completion=8),
             "by_model": [{"model": "m/one", **counters(requests=1, prompt=8, completion=8)}]},
        ],
        "first_id": "2024-03-01", "last_id": "2024-03-05", "has_more": False,
        "from": "2024-03-01T00:00:00Z", "to": "2024-04-01T00:00:00Z",
    }
    # The days add up to the totals of the same window.
    totals = guest.get("/v1/usage/me", query_string={"from": "2024-03-01", "to": "2024-03-31"}).json
    for name in COUNTERS:
        assert totals[name] == sum(day[name] for day in body["data"])


def test_daily_rows_of_todays_chats(guest, upstream):
    chat(guest, "one two three")
    body = guest.get("/v1/usage/me/daily").json
    today = dt.datetime.now(UTC).date().isoformat()
    assert [day["date"] for day in body["data"]] == [today]
    assert body["data"][0]["prompt_tokens"] == 3 and body["data"][0]["completion_tokens"] == 4
    empty = guest.get("/v1/usage/me/daily", query_string={"from": "2001-01-01", "to": "2001-01-31"}).json
    assert empty["data"] == [] and empty["first_id"] is None and empty["last_id"] is None


# Projects ----------------------------------------------------------------------------------------------------------

def make_project(app, account, name="P", deleted=False) -> tuple[int, str]:
    public_id = ids.public_id("proj")
    with app.extensions["jan"].db.transaction() as conn:
        project_id = conn.execute(insert(projects).values(
            public_id=public_id, user_id=internal_id(app, account.user_id), name=name,
            deleted_at=dt.datetime.now(UTC) if deleted else None).returning(projects.c.id)).scalar_one()
    return project_id, public_id


def test_project_usage_counts_the_chats_of_its_conversations(app, guest, upstream):
    project_id, project_public_id = make_project(app, guest)
    _, other_project = make_project(app, guest, name="Other")
    in_project = guest.post("/v1/conversations", json={"title": "in"}).json["id"]
    outside = guest.post("/v1/conversations", json={"title": "out"}).json["id"]
    with app.extensions["jan"].db.transaction() as conn:
        conn.execute(update(conversations).where(conversations.c.public_id == in_project)
                     .values(project_id=project_id))
    assert chat(guest, "in the project", conversation=in_project).status_code == 200
    assert chat(guest, "also inside it", conversation=in_project).status_code == 200
    assert chat(guest, "outside", conversation=outside).status_code == 200
    chat(guest, "no conversation at all")
    response = guest.get(f"/v1/usage/projects/{project_public_id}")
    assert response.status_code == 200
    body = response.json
    # Each request also carries the stored history; the upstream counted the words of every message it got.
    with app.extensions["jan"].db.read() as conn:
        rows = conn.execute(select(usage_records.c.prompt_tokens, usage_records.c.completion_tokens)
                            .where(usage_records.c.project_id == project_id).order_by(usage_records.c.id)).all()
    assert len(rows) == 2
    assert tuple(rows[0]) == (3, 4)  # the first chat has no history: "in the project" -> "echo: in the project"
    assert rows[1].completion_tokens == 4 and rows[1].prompt_tokens > 3
    expected = counters(requests=2, prompt=sum(r.prompt_tokens for r in rows),
                        completion=sum(r.completion_tokens for r in rows))
    assert body == {"object": "usage", "project_id": project_public_id, "from": body["from"], "to": body["to"],
                    **expected, "by_model": [{"model": TEST_MODEL_ID, **expected}]}
    prefixed = guest.get(f"/llm/v1/usage/projects/{project_public_id}").json
    assert {**prefixed, "to": body["to"]} == body
    empty = guest.get(f"/v1/usage/projects/{other_project}").json
    assert empty["requests"] == 0 and empty["by_model"] == []


def test_project_usage_windows(app, guest):
    project_id, project_public_id = make_project(app, guest)
    seed(app, guest.user_id, (at("2024-03-01T10:00:00"), "m/one", 1, 1, "completed", project_id),
         (at("2024-04-01T10:00:00"), "m/one", 10, 10, "completed", project_id))
    body = guest.get(f"/v1/usage/projects/{project_public_id}",
                     query_string={"from": "2024-03-01", "to": "2024-03-31"}).json
    assert body["requests"] == 1 and body["total_tokens"] == 2


def test_another_users_or_a_deleted_or_unknown_project_is_404(app, guest, new_guest, snapshot):
    other = new_guest()
    _, theirs = make_project(app, other)
    _, deleted = make_project(app, guest, deleted=True)
    before = snapshot()
    for project in (theirs, deleted, ids.public_id("proj"), "proj_" + "x" * 100, "not-an-id"):
        for prefix in ("", "/llm"):
            assert_error(guest.get(f"{prefix}/v1/usage/projects/{project}"), 404, "project not found")
    # Its owner still sees it.
    assert other.get(f"/v1/usage/projects/{theirs}").status_code == 200
    assert snapshot() == before


# Admin -------------------------------------------------------------------------------------------------------------

ADMIN_WINDOW = {"from": "2003-01-01", "to": "2003-01-31"}


def test_admin_usage_is_per_user_and_per_model(app, admin, new_guest):
    a, b, c = new_guest(), new_guest(), new_guest()
    seed(app, a.user_id, (at("2003-01-02T00:00:00"), "m/one", 10, 5), (at("2003-01-03T00:00:00"), "m/two", 1, 1))
    seed(app, b.user_id, (at("2003-01-02T00:00:00"), "m/one", 100, 50, "failed"))
    seed(app, c.user_id, (at("2003-01-02T00:00:00"), "m/two", 1, 0), (at("2003-02-02T00:00:00"), "m/two", 1000, 0))
    response = admin.get("/v1/admin/usage", query_string=ADMIN_WINDOW)
    assert response.status_code == 200
    body = response.json
    row = {"object": "usage.user", "username": None, "email": None, "role": "guest"}
    assert body["data"] == [
        {**row, "user_id": b.user_id, "username": b.body["username"], **counters(requests=1, failed=1, prompt=100,
                                                                               completion=50),
         "by_model": [{"model": "m/one", **counters(requests=1, failed=1, prompt=100, completion=50)}]},
        {**row, "user_id": a.user_id, "username": a.body["username"], **counters(requests=2, prompt=11, completion=6),
         "by_model": [{"model": "m/one", **counters(requests=1, prompt=10, completion=5)},
                      {"model": "m/two", **counters(requests=1, prompt=1, completion=1)}]},
        {**row, "user_id": c.user_id, "username": c.body["username"], **counters(requests=1, prompt=1),
         "by_model": [{"model": "m/two", **counters(requests=1, prompt=1)}]},
    ]
    assert body["object"] == "list" and body["has_more"] is False and body["total"] == 3
    assert body["first_id"] == b.user_id and body["last_id"] == c.user_id
    assert body["limit"] == 20 and body["offset"] == 0
    assert body["from"] == "2003-01-01T00:00:00Z" and body["to"] == "2003-02-01T00:00:00Z"
    assert body["totals"] == counters(requests=4, failed=1, prompt=112, completion=56)
    assert body["by_model"] == [{"model": "m/one", **counters(requests=2, failed=1, prompt=110, completion=55)},
                                {"model": "m/two", **counters(requests=2, prompt=2, completion=1)}]
    assert admin.get("/llm/v1/admin/usage", query_string=ADMIN_WINDOW).json == body


def test_admin_usage_pages(app, admin, new_guest):
    accounts = [new_guest() for _ in range(5)]
    for rank, account in enumerate(accounts):
        seed(app, account.user_id, (at("2004-06-01T00:00:00"), "m/x", 10 * (rank + 1), 0))
    window = {"from": "2004-06-01", "to": "2004-06-01"}
    busiest_first = [account.user_id for account in reversed(accounts)]
    seen = []
    for offset in range(0, 6, 2):
        page = admin.get("/v1/admin/usage", query_string={**window, "limit": 2, "offset": offset}).json
        assert page["total"] == 5 and page["limit"] == 2 and page["offset"] == offset
        assert page["has_more"] is (offset + 2 < 5)
        assert page["totals"]["prompt_tokens"] == 150
        seen += [row["user_id"] for row in page["data"]]
    assert seen == busiest_first
    beyond = admin.get("/v1/admin/usage", query_string={**window, "offset": 50}).json
    assert beyond["data"] == [] and beyond["total"] == 5 and beyond["has_more"] is False
    assert beyond["first_id"] is None and beyond["totals"]["requests"] == 5


def test_admin_usage_sees_live_chats(admin, new_guest, upstream):
    heavy = new_guest()
    upstream.script(reply("ok", usage={"prompt_tokens": 10**8, "completion_tokens": 1, "total_tokens": 10**8 + 1}))
    chat(heavy, "hello")
    body = admin.get("/v1/admin/usage", query_string={"limit": 1000}).json
    (row,) = [row for row in body["data"] if row["user_id"] == heavy.user_id]
    assert row["prompt_tokens"] == 10**8 and row["requests"] == 1 and row["by_model"][0]["model"] == TEST_MODEL_ID


@pytest.mark.parametrize("query, message, param", [
    ({"limit": "0"}, "limit must be between 1 and 1000", "limit"),
    ({"limit": "1001"}, "limit must be between 1 and 1000", "limit"),
    ({"limit": "ten"}, "limit must be an integer", "limit"),
    ({"offset": "-1"}, "offset must be between 0 and 1000000000", "offset"),
    ({"offset": "1.5"}, "offset must be an integer", "offset"),
])
def test_admin_usage_bad_pages_are_400(admin, snapshot, query, message, param):
    before = snapshot()
    assert_error(admin.get("/v1/admin/usage", query_string=query), 400, message, param=param)
    assert snapshot() == before


@pytest.mark.parametrize("kind", ["guest", "user"])
def test_admin_usage_is_for_admins_only(request, kind, snapshot):
    account = request.getfixturevalue(kind)
    key = account.post("/auth/api-keys", json={"name": "k"}).json["key"]
    account.client.get("/v1/users/me", headers={"X-API-Key": key})  # its last_used_at is written now, not below
    before = snapshot()
    assert_error(account.get("/v1/admin/usage"), 403, "admin access required")
    assert_error(account.get("/llm/v1/admin/usage"), 403, "admin access required")
    assert_error(account.client.get("/v1/admin/usage", headers={"X-API-Key": key}), 403, "admin access required")
    assert_error(account.get("/v1/admin/usage", headers={"X-User-Role": "admin", "X-Scopes": "admin"}), 403,
                 "admin access required")
    assert snapshot() == before


def test_usage_routes_need_credentials(client, snapshot):
    before = snapshot()
    for path in ("/v1/usage/me", "/v1/usage/me/daily", f"/v1/usage/projects/{ids.public_id('proj')}",
                 "/v1/admin/usage"):
        assert_error(client.get(path), 401, "authentication required")
    assert snapshot() == before


# Query counts ------------------------------------------------------------------------------------------------------

@pytest.fixture
def statements(app):
    """Counts the SQL statements the app sends while the block runs."""
    engine = app.extensions["jan"].db.engine
    counted = []

    def count(conn, cursor, statement, parameters, context, executemany):
        counted.append(statement)

    event.listen(engine, "before_cursor_execute", count)
    yield counted
    event.remove(engine, "before_cursor_execute", count)


def test_reports_take_a_fixed_number_of_queries(app, admin, new_guest, statements):
    accounts = [new_guest() for _ in range(6)]
    for account, model in zip(accounts, itertools.cycle(["m/a", "m/b", "m/c"])):
        seed(app, account.user_id, *[(at("2005-05-05T00:00:00"), f"{model}{i}", i, 1) for i in range(4)])
    window = {"from": "2005-05-01", "to": "2005-05-31"}

    def measured(account, path, **query):
        statements.clear()
        assert account.get(path, query_string={**window, **query}).status_code == 200
        return len(statements)

    # Authentication costs the same on every request; the reports add one or two grouped queries.
    baseline = measured(accounts[0], "/v1/users/me")
    assert measured(accounts[0], "/v1/usage/me") == baseline + 1
    assert measured(accounts[0], "/v1/usage/me/daily") == baseline + 1
    project_id, project_public_id = make_project(app, accounts[0])
    assert measured(accounts[0], f"/v1/usage/projects/{project_public_id}") == baseline + 2
    admin_baseline = measured(admin, "/v1/users/me")
    one = measured(admin, "/v1/admin/usage", limit=1)
    all_ = measured(admin, "/v1/admin/usage", limit=100)
    assert one == all_ == admin_baseline + 3
