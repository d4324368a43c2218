"""The room sync: Jan's session state machine against LiveKit, run by one replica at a time.

Every tick: `created` -> `connected` once someone is in the room; a `connected` session whose room is gone or
empty is removed (`room_empty`); a `created` session older than the stale TTL, or whose token expired, is removed
(`stale`); deleted sessions whose room removal failed get DeleteRoom again. When LiveKit cannot be reached only the stale rule runs
(as in Jan), and room removals wait for the next tick.

Each tick runs in one transaction that first takes `pg_try_advisory_xact_lock`: a replica that does not get it
skips the tick, and the lock ends with the transaction, so it needs no session state (PgBouncer transaction mode)
and a crashed replica holds nothing.
"""
from __future__ import annotations

import datetime as dt
import logging
import threading
from dataclasses import dataclass, field

from sqlalchemy import delete, select, text, update

from shared.db import Database
from shared.schema import realtime_sessions as sessions
from shared.times import utcnow
from functions.realtime.livekit import LiveKitError, RoomService
from functions.realtime.service import SYNC_LOCK, Clock

log = logging.getLogger("jan.realtime.sync")


@dataclass
class SyncResult:
    livekit_reachable: bool = True
    connected: list[str] = field(default_factory=list)  # session ids now `connected`
    removed: dict[str, str] = field(default_factory=dict)  # session id -> reason
    rooms_deleted: list[str] = field(default_factory=list)
    rooms_pending: list[str] = field(default_factory=list)  # removal failed; retried next tick


class RoomSync:
    def __init__(self, db: Database, rooms: RoomService, *, stale_ttl_seconds: int, clock: Clock = utcnow):
        self.db = db
        self.rooms = rooms
        self.stale_ttl = dt.timedelta(seconds=stale_ttl_seconds)
        self.clock = clock
        self._livekit_down = False

    def tick(self) -> SyncResult | None:
        """One pass; None when another replica holds this tick's lock."""
        with self.db.transaction() as conn:
            if not conn.execute(text("SELECT pg_try_advisory_xact_lock(:key)"), {"key": SYNC_LOCK}).scalar():
                return None
            rows = conn.execute(select(sessions.c.id, sessions.c.public_id, sessions.c.room_id, sessions.c.status,
                                       sessions.c.created_at, sessions.c.token_expires_at, sessions.c.deleted_at)
                                .order_by(sessions.c.id)).all()
            result = SyncResult()
            try:
                rooms = self.rooms.list_rooms()
            except LiveKitError as exc:
                # Said once per outage, not every tick (a local stack without LiveKit would repeat it forever).
                (log.debug if self._livekit_down else log.warning)(
                    "LiveKit ListRooms failed, only stale sessions are removed until it answers: %s", exc)
                rooms, result.livekit_reachable = None, False
            if self._livekit_down and rooms is not None:
                log.info("LiveKit answers again")
            self._livekit_down = rooms is None
            now = self.clock()
            for row in rows:
                if row.deleted_at is not None:
                    if rooms is not None:
                        self._remove_room(conn, row, rooms, result)
                    continue
                # Never joined within the stale TTL, or its token expired first (it can no longer be joined).
                stale = row.status == "created" and (now - row.created_at > self.stale_ttl
                                                     or now >= row.token_expires_at)
                if rooms is None:
                    if stale:
                        self._end(conn, row, "stale", now, result)
                    continue
                if self._occupied(row.room_id, rooms):
                    if row.status == "created":
                        conn.execute(update(sessions).where(sessions.c.id == row.id, sessions.c.deleted_at.is_(None))
                                     .values(status="connected", connected_at=now))
                        result.connected.append(row.public_id)
                    continue
                reason = "room_empty" if row.status == "connected" else "stale" if stale else None
                if reason:
                    self._end(conn, row, reason, now, result)
                    self._remove_room(conn, row, rooms, result)
        return result

    def _occupied(self, room_id: str, rooms: dict) -> bool:
        room = rooms.get(room_id)
        if room is None:
            return False
        try:
            return bool(self.rooms.list_participants(room_id))
        except LiveKitError as exc:
            if exc.code == "not_found":  # closed since ListRooms
                return False
            log.warning("LiveKit ListParticipants for %s failed, using the room list's count: %s", room_id, exc)
            return room.num_participants > 0

    @staticmethod
    def _end(conn, row, reason: str, now: dt.datetime, result: SyncResult) -> None:
        conn.execute(update(sessions).where(sessions.c.id == row.id, sessions.c.deleted_at.is_(None))
                     .values(deleted_at=now, delete_reason=reason))
        result.removed[row.public_id] = reason
        log.info("realtime session %s removed: %s", row.public_id, reason)

    def _remove_room(self, conn, row, rooms: dict, result: SyncResult) -> None:
        if row.room_id in rooms:
            try:
                self.rooms.delete_room(row.room_id)
            except LiveKitError as exc:
                log.warning("removing LiveKit room %s failed (retried next tick): %s", row.room_id, exc)
                result.rooms_pending.append(row.room_id)
                return
            result.rooms_deleted.append(row.room_id)
        conn.execute(delete(sessions).where(sessions.c.id == row.id))


class RoomSyncLoop:
    """Runs the sync every interval in a background thread (a greenlet under gunicorn's gevent worker)."""

    def __init__(self, sync: RoomSync, interval_seconds: float):
        self.sync = sync
        self.interval = interval_seconds
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.ticks = 0  # ticks this loop ran (not skipped), for tests and logs

    def run_once(self) -> SyncResult | None:
        try:
            result = self.sync.tick()
        except Exception:
            log.exception("realtime room sync tick failed")
            return None
        if result is not None:
            self.ticks += 1
        return result

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.run_once()

    def start(self) -> "RoomSyncLoop":
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="realtime-room-sync", daemon=True)
            self._thread.start()
        return self

    def stop(self, timeout: float | None = None) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
