"""The session API through HTTP on real PostgreSQL: Jan's bodies and status codes, ownership (404), the limits
(429 in the error body), DELETE removing the LiveKit room, and sessions outliving the process."""
from __future__ import annotations

import re

from sqlalchemy import select

from shared.schema import realtime_sessions
from tests.realtime.conftest import bearer

SESSION_ID = re.compile(r"sess_[0-9a-z]{24}")
ROOM_ID = re.compile(r"room_[0-9a-z]{24}")


def rows(app):
    with app.extensions["jan"].db.read() as conn:
        return conn.execute(select(realtime_sessions)).all()


def assert_error(response, status, code=None):
    assert response.status_code == status, response.json
    body = response.json
    assert body["message"] == body["error"]["message"] and body["error"]["message"]
    if code:
        assert body["error"]["code"] == code
    return body


def test_create_answers_201_with_jans_body(rt, user):
    response = rt.post("/v1/realtime/sessions", headers=bearer(user))
    assert response.status_code == 201
    body = response.json
    assert list(body) == ["id", "object", "client_secret", "ws_url", "room_id", "user_id"]
    assert SESSION_ID.fullmatch(body["id"]) and ROOM_ID.fullmatch(body["room_id"])
    assert body["object"] == "realtime.session"
    assert body["ws_url"] == "wss://livekit.example.test"
    assert body["user_id"] == user.user_id
    assert set(body["client_secret"]) == {"value", "expires_at"}


def test_create_ignores_the_body_as_jan_does(rt, user):
    for kwargs in ({"json": {"model": "gpt-realtime", "voice": "alloy"}}, {"data": "not json"}, {}):
        assert rt.post("/v1/realtime/sessions", headers=bearer(user), **kwargs).status_code == 201


def test_list_and_get_show_status_and_no_secret(rt, user):
    first = rt.post("/v1/realtime/sessions", headers=bearer(user)).json
    second = rt.post("/v1/realtime/sessions", headers=bearer(user)).json
    listed = rt.get("/v1/realtime/sessions", headers=bearer(user))
    assert listed.status_code == 200
    body = listed.json
    assert body["object"] == "list" and body["has_more"] is False
    assert [item["id"] for item in body["data"]] == [second["id"], first["id"]]
    expected = {"id": first["id"], "object": "realtime.session", "ws_url": first["ws_url"],
                "room_id": first["room_id"], "user_id": user.user_id, "status": "created"}
    assert body["data"][1] == expected
    got = rt.get(f"/v1/realtime/sessions/{first['id']}", headers=bearer(user))
    assert got.status_code == 200 and got.json == expected
    assert "client_secret" not in got.get_data(as_text=True) + listed.get_data(as_text=True)


def test_another_users_session_is_404_and_untouched(rt, realtime, new_user):
    owner, other = new_user(), new_user()
    created = rt.post("/v1/realtime/sessions", headers=bearer(owner)).json
    path = f"/v1/realtime/sessions/{created['id']}"
    assert_error(rt.get(path, headers=bearer(other)), 404)
    assert_error(rt.delete(path, headers=bearer(other)), 404)
    assert rt.get("/v1/realtime/sessions", headers=bearer(other)).json["data"] == []
    assert rt.get(path, headers=bearer(owner)).status_code == 200
    assert [row.deleted_at for row in rows(realtime)] == [None]


def test_unknown_and_malformed_ids_are_404(rt, user):
    for session_id in ("sess_" + "0" * 24, "nope", "sess_" + "x" * 300):
        assert_error(rt.get(f"/v1/realtime/sessions/{session_id}", headers=bearer(user)), 404)
        assert_error(rt.delete(f"/v1/realtime/sessions/{session_id}", headers=bearer(user)), 404)


def test_every_route_needs_credentials(rt, user):
    created = rt.post("/v1/realtime/sessions", headers=bearer(user)).json
    for method, path in (("POST", "/v1/realtime/sessions"), ("GET", "/v1/realtime/sessions"),
                         ("GET", f"/v1/realtime/sessions/{created['id']}"),
                         ("DELETE", f"/v1/realtime/sessions/{created['id']}")):
        assert_error(rt.open(path, method=method), 401)
        assert_error(rt.open(path, method=method, headers={"Authorization": "Bearer not-a-token"}), 401)
        # Identity headers from outside are never trusted.
        assert_error(rt.open(path, method=method, headers={"X-User-ID": user.user_id}), 401)


def test_client_secrets_is_not_offered(rt, user):
    for method in ("GET", "POST"):
        body = assert_error(rt.open("/v1/realtime/client_secrets", method=method, headers=bearer(user)), 404,
                            "unsupported_endpoint")
        assert "/v1/realtime/sessions" in body["message"]


def test_delete_ends_the_session_and_removes_its_room(rt, realtime, user, livekit):
    created = rt.post("/v1/realtime/sessions", headers=bearer(user)).json
    livekit.join(created["room_id"], user.user_id)
    path = f"/v1/realtime/sessions/{created['id']}"
    response = rt.delete(path, headers=bearer(user))
    assert response.status_code == 200
    assert response.json == {"id": created["id"], "object": "realtime.session.deleted", "deleted": True}
    assert livekit.rooms() == {}
    assert [(call.method, call.body) for call in livekit.calls] == [("DeleteRoom", {"room": created["room_id"]})]
    assert rows(realtime) == []
    assert_error(rt.get(path, headers=bearer(user)), 404)
    assert_error(rt.delete(path, headers=bearer(user)), 404)
    assert rt.get("/v1/realtime/sessions", headers=bearer(user)).json["data"] == []


def test_delete_with_livekit_down_still_ends_the_session_and_the_sync_removes_the_room(rt, realtime, sync, user,
                                                                                      livekit):
    created = rt.post("/v1/realtime/sessions", headers=bearer(user)).json
    livekit.join(created["room_id"], user.user_id)
    livekit.down = True
    response = rt.delete(f"/v1/realtime/sessions/{created['id']}", headers=bearer(user))
    assert response.status_code == 200 and response.json["deleted"] is True
    assert rt.get(f"/v1/realtime/sessions/{created['id']}", headers=bearer(user)).status_code == 404
    assert rt.get("/v1/realtime/sessions", headers=bearer(user)).json["data"] == []
    [tombstone] = rows(realtime)
    assert tombstone.deleted_at is not None and tombstone.delete_reason == "deleted"

    assert sync.tick().rooms_pending == []  # LiveKit still down: nothing to do but wait
    assert len(rows(realtime)) == 1
    livekit.down = False
    result = sync.tick()
    assert result.rooms_deleted == [created["room_id"]]
    assert livekit.rooms() == {} and rows(realtime) == []


def test_a_failing_room_delete_is_retried(rt, realtime, sync, user, livekit):
    created = rt.post("/v1/realtime/sessions", headers=bearer(user)).json
    livekit.join(created["room_id"], user.user_id)
    livekit.fail = {"DeleteRoom"}
    assert rt.delete(f"/v1/realtime/sessions/{created['id']}", headers=bearer(user)).status_code == 200
    assert sync.tick().rooms_pending == [created["room_id"]]
    assert len(rows(realtime)) == 1
    livekit.fail = set()
    assert sync.tick().rooms_deleted == [created["room_id"]]
    assert rows(realtime) == [] and livekit.rooms() == {}


def test_per_user_limit_is_429_and_frees_up_on_delete(make_realtime, new_user):
    client = make_realtime(realtime_max_sessions_per_user=2).test_client()
    owner, other = new_user(), new_user()
    made = [client.post("/v1/realtime/sessions", headers=bearer(owner)).json for _ in range(2)]
    body = assert_error(client.post("/v1/realtime/sessions", headers=bearer(owner)), 429, "session_limit_exceeded")
    assert body["error"]["type"] == "rate_limit_error"
    assert client.post("/v1/realtime/sessions", headers=bearer(other)).status_code == 201
    assert client.delete(f"/v1/realtime/sessions/{made[0]['id']}", headers=bearer(owner)).status_code == 200
    assert client.post("/v1/realtime/sessions", headers=bearer(owner)).status_code == 201


def test_global_limit_is_429(make_realtime, new_user):
    client = make_realtime(realtime_max_sessions=2, realtime_max_sessions_per_user=0).test_client()
    first, second = new_user(), new_user()
    assert client.post("/v1/realtime/sessions", headers=bearer(first)).status_code == 201
    assert client.post("/v1/realtime/sessions", headers=bearer(second)).status_code == 201
    assert_error(client.post("/v1/realtime/sessions", headers=bearer(first)), 429, "session_limit_exceeded")


def test_sessions_survive_a_restart_and_are_shared_by_replicas(make_realtime, user):
    created = make_realtime().test_client().post("/v1/realtime/sessions", headers=bearer(user)).json
    other_replica = make_realtime().test_client()
    assert [item["id"] for item in other_replica.get("/v1/realtime/sessions", headers=bearer(user)).json["data"]] \
        == [created["id"]]
    assert other_replica.delete(f"/v1/realtime/sessions/{created['id']}", headers=bearer(user)).status_code == 200


def test_health_routes(rt):
    assert rt.get("/healthz").json == {"status": "ok"}
    assert rt.get("/readyz").status_code == 200
    assert rt.get("/version").json["service"] == "realtime"
    paths = rt.get("/openapi.json").json["paths"]
    assert {"/v1/realtime/sessions", "/v1/realtime/sessions/{session_id}"} <= set(paths)
