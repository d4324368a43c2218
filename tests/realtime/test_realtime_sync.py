"""The room sync against the LiveKit Twirp test double: Jan's state machine (created -> connected, emptied and
stale sessions removed, 10 minutes), LiveKit down or slow, the grants each call carries, and two replicas with
only one syncing per tick."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time

import pytest
from sqlalchemy import select

from functions.realtime.livekit import LiveKitError, RoomService, TokenMinter
from shared.schema import realtime_sessions
from tests.realtime.conftest import API_KEY, API_SECRET, bearer


def status(rt, account, session_id):
    response = rt.get(f"/v1/realtime/sessions/{session_id}", headers=bearer(account))
    return response.json["status"] if response.status_code == 200 else response.status_code


def test_created_becomes_connected_when_someone_joins(rt, sync, user, livekit):
    created = rt.post("/v1/realtime/sessions", headers=bearer(user)).json
    assert sync.tick().connected == []
    assert status(rt, user, created["id"]) == "created"
    livekit.join(created["room_id"], user.user_id)
    assert sync.tick().connected == [created["id"]]
    assert status(rt, user, created["id"]) == "connected"
    assert sync.tick().connected == []  # already connected


def test_an_emptied_room_ends_its_session_and_is_removed(rt, sync, user, livekit):
    created = rt.post("/v1/realtime/sessions", headers=bearer(user)).json
    livekit.join(created["room_id"], user.user_id)
    sync.tick()
    livekit.leave(created["room_id"], user.user_id)
    result = sync.tick()
    assert result.removed == {created["id"]: "room_empty"}
    assert result.rooms_deleted == [created["room_id"]]
    assert livekit.rooms() == {}
    assert status(rt, user, created["id"]) == 404


def test_a_closed_room_ends_its_connected_session(rt, sync, user, livekit):
    created = rt.post("/v1/realtime/sessions", headers=bearer(user)).json
    livekit.join(created["room_id"], user.user_id)
    sync.tick()
    livekit.close_room(created["room_id"])
    calls_before = len(livekit.calls)
    assert sync.tick().removed == {created["id"]: "room_empty"}
    assert "DeleteRoom" not in livekit.methods()[calls_before:]  # nothing left to remove
    assert status(rt, user, created["id"]) == 404


def test_participants_decide_over_the_room_lists_count(rt, sync, user, livekit):
    created = rt.post("/v1/realtime/sessions", headers=bearer(user)).json
    livekit.join(created["room_id"], user.user_id)
    sync.tick()
    livekit.fail = {"ListParticipants"}  # the room list's count is the fallback
    assert sync.tick().removed == {}
    livekit.fail = set()
    livekit.leave(created["room_id"], user.user_id)
    assert sync.tick().removed == {created["id"]: "room_empty"}


def test_a_session_never_joined_is_removed_after_ten_minutes(rt, sync, user, livekit, clock):
    created = rt.post("/v1/realtime/sessions", headers=bearer(user)).json
    clock.advance(599)
    assert sync.tick().removed == {}
    assert status(rt, user, created["id"]) == "created"
    clock.advance(2)
    assert sync.tick().removed == {created["id"]: "stale"}
    assert status(rt, user, created["id"]) == 404


def test_an_occupied_room_keeps_even_an_old_session(rt, sync, user, livekit, clock):
    created = rt.post("/v1/realtime/sessions", headers=bearer(user)).json
    livekit.join(created["room_id"], user.user_id)
    clock.advance(3600)
    assert sync.tick().connected == [created["id"]]
    clock.advance(3600)
    assert sync.tick().removed == {}
    assert status(rt, user, created["id"]) == "connected"


def test_the_stale_ttl_is_a_setting(make_realtime, user, clock):
    app = make_realtime(session_stale_ttl_seconds=30)
    created = app.test_client().post("/v1/realtime/sessions", headers=bearer(user)).json
    clock.advance(31)
    assert app.extensions["jan"].services["realtime_sync"].sync.tick().removed == {created["id"]: "stale"}


def test_a_session_whose_token_expired_unjoined_is_stale(make_realtime, user, clock):
    app = make_realtime(livekit_token_ttl_seconds=120)
    created = app.test_client().post("/v1/realtime/sessions", headers=bearer(user)).json
    sync = app.extensions["jan"].services["realtime_sync"].sync
    clock.advance(119)
    assert sync.tick().removed == {}
    clock.advance(1)
    assert sync.tick().removed == {created["id"]: "stale"}


def test_livekit_down_applies_only_the_stale_rule(rt, realtime, sync, new_user, livekit, clock):
    talker, idler = new_user(), new_user()
    talking = rt.post("/v1/realtime/sessions", headers=bearer(talker)).json
    livekit.join(talking["room_id"], talker.user_id)
    sync.tick()
    idle = rt.post("/v1/realtime/sessions", headers=bearer(idler)).json
    livekit.down = True
    clock.advance(700)
    result = sync.tick()
    assert result.livekit_reachable is False
    assert result.removed == {idle["id"]: "stale"}
    assert status(rt, talker, talking["id"]) == "connected"  # LiveKit unknown: a live call is never cut
    assert status(rt, idler, idle["id"]) == 404


def test_livekit_slow_counts_as_down_and_the_tick_still_ends(make_realtime, user, livekit, clock):
    app = make_realtime(livekit_timeout_seconds=0.3)
    created = app.test_client().post("/v1/realtime/sessions", headers=bearer(user)).json
    livekit.delay = 2.0
    clock.advance(601)
    started = time.monotonic()
    result = app.extensions["jan"].services["realtime_sync"].sync.tick()
    assert time.monotonic() - started < 1.5
    assert result.livekit_reachable is False and result.removed == {created["id"]: "stale"}


def test_each_call_carries_the_grant_livekit_checks(rt, sync, user, livekit):
    created = rt.post("/v1/realtime/sessions", headers=bearer(user)).json
    livekit.join(created["room_id"], user.user_id)
    sync.tick()
    livekit.leave(created["room_id"], user.user_id)
    sync.tick()
    grants = {(call.method, json.dumps(call.video, sort_keys=True)) for call in livekit.calls}
    assert grants == {
        ("ListRooms", json.dumps({"roomList": True})),
        ("ListParticipants", json.dumps({"roomAdmin": True, "room": created["room_id"]}, sort_keys=True)),
        ("DeleteRoom", json.dumps({"roomCreate": True})),
    }


def test_livekit_rejects_a_wrong_secret(livekit):
    rooms = RoomService(livekit.base_url, TokenMinter(API_KEY, "not-the-secret-but-just-as-long-0123", 60), 1.0)
    with pytest.raises(LiveKitError) as caught:
        rooms.list_rooms()
    assert caught.value.code == "unauthenticated"


def test_two_replicas_one_sync_per_tick(make_realtime, user, livekit):
    first, second = make_realtime(), make_realtime()
    first.test_client().post("/v1/realtime/sessions", headers=bearer(user))
    livekit.delay = 0.5  # the first replica's tick is inside ListRooms, holding the lock
    results = {}
    holder = threading.Thread(target=lambda: results.setdefault(
        "first", first.extensions["jan"].services["realtime_sync"].sync.tick()))
    holder.start()
    time.sleep(0.2)
    assert second.extensions["jan"].services["realtime_sync"].sync.tick() is None
    holder.join(5)
    assert results["first"] is not None
    livekit.delay = 0
    assert second.extensions["jan"].services["realtime_sync"].sync.tick() is not None  # the lock ended with it


def test_two_running_loops_never_sync_at_once(make_realtime, user, livekit):
    replicas = [make_realtime(session_cleanup_interval_seconds=0.05) for _ in range(2)]
    replicas[0].test_client().post("/v1/realtime/sessions", headers=bearer(user))
    livekit.delay = 0.15
    loops = [app.extensions["jan"].services["realtime_sync"].start() for app in replicas]
    time.sleep(2.0)
    for loop in loops:
        loop.stop(5)
    assert livekit.max_in_flight["ListRooms"] == 1
    assert sum(loop.ticks for loop in loops) == livekit.methods().count("ListRooms") >= 4


def test_sync_once_command(realtime_env, realtime, user, livekit):
    created = realtime.test_client().post("/v1/realtime/sessions", headers=bearer(user)).json
    livekit.join(created["room_id"], user.user_id)
    command = [sys.executable, "-m", "functions.realtime.manage", "sync-once"]
    done = subprocess.run(command, env={**os.environ, **realtime_env}, capture_output=True, text=True, timeout=60,
                          cwd=os.path.dirname(os.path.dirname(os.path.dirname(__file__))))
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["connected"] == [created["id"]]
    with realtime.extensions["jan"].db.read() as conn:
        assert conn.execute(select(realtime_sessions.c.status)).scalar() == "connected"
    livekit.down = True
    done = subprocess.run(command, env={**os.environ, **realtime_env}, capture_output=True, text=True, timeout=60,
                          cwd=os.path.dirname(os.path.dirname(os.path.dirname(__file__))))
    assert done.returncode == 1 and json.loads(done.stdout)["livekit_reachable"] is False
