"""Realtime sessions in PostgreSQL: create under the per-user and global limits, list, get, delete.

Limits are checked and the new row inserted in one transaction holding a transaction-scoped advisory lock, so
parallel creates on any number of pods cannot pass a limit together (and the lock also works behind PgBouncer in
transaction mode). Creates are rare next to everything else, so one lock for all of them costs nothing noticeable.
"""
from __future__ import annotations

import datetime as dt
import logging
import re
from typing import Callable

from sqlalchemy import and_, delete, func, insert, select, text, update

from shared import ids
from shared.db import Database
from shared.errors import NotFound, TooManyRequests
from shared.schema import realtime_sessions as sessions
from shared.times import utcnow
from functions.realtime.livekit import LiveKitError, RoomService, TokenMinter

log = logging.getLogger("jan.realtime")

SESSION_ID = re.compile(r"sess_[0-9a-z]{24}")
# pg_advisory_xact_lock keys (any fixed bigints; named so a reader of pg_locks can tell them apart).
CREATE_LOCK = 0x7265616C74696D65  # "realtime"
SYNC_LOCK = 0x7265616C73796E63  # "realsync"

Clock = Callable[[], dt.datetime]


def session_body(row, ws_url: str, user_public_id: str) -> dict:
    """Jan's GET and list item: no client secret, with `status`."""
    return {"id": row.public_id, "object": "realtime.session", "ws_url": ws_url, "room_id": row.room_id,
            "user_id": user_public_id, "status": row.status}


class SessionService:
    def __init__(self, db: Database, minter: TokenMinter, rooms: RoomService, *, ws_url: str,
                 max_per_user: int, max_total: int, clock: Clock = utcnow):
        self.db = db
        self.minter = minter
        self.rooms = rooms
        self.ws_url = ws_url
        self.max_per_user = max_per_user
        self.max_total = max_total
        self.clock = clock

    def create(self, user_id: int, user_public_id: str) -> dict:
        """A new session and its LiveKit token (the only time the token is shown)."""
        session_id, room_id = ids.public_id("sess", 24), ids.public_id("room", 24)
        now = self.clock()
        token = self.minter.client_token(user_public_id, room_id, now=now.timestamp())
        with self.db.transaction() as conn:
            if self.max_per_user > 0 or self.max_total > 0:
                conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": CREATE_LOCK})
                live = sessions.c.deleted_at.is_(None)
                counts = conn.execute(select(
                    func.count().filter(sessions.c.user_id == user_id).label("mine"),
                    func.count().label("total")).where(live)).one()
                if self.max_per_user > 0 and counts.mine >= self.max_per_user:
                    raise TooManyRequests(f"at most {self.max_per_user} realtime sessions per user; delete one first",
                                          code="session_limit_exceeded")
                if self.max_total > 0 and counts.total >= self.max_total:
                    raise TooManyRequests("the service has reached its realtime session limit; try again later",
                                          code="session_limit_exceeded")
            conn.execute(insert(sessions).values(
                public_id=session_id, user_id=user_id, room_id=room_id, status="created", created_at=now,
                token_expires_at=dt.datetime.fromtimestamp(token.expires_at, dt.timezone.utc)))
        return {"id": session_id, "object": "realtime.session",
                "client_secret": {"value": token.value, "expires_at": token.expires_at},
                "ws_url": self.ws_url, "room_id": room_id, "user_id": user_public_id}

    def list(self, user_id: int, user_public_id: str) -> list[dict]:
        with self.db.read() as conn:
            rows = conn.execute(select(sessions).where(sessions.c.user_id == user_id, sessions.c.deleted_at.is_(None))
                                .order_by(sessions.c.created_at.desc(), sessions.c.id.desc())).all()
        return [session_body(row, self.ws_url, user_public_id) for row in rows]

    def get(self, user_id: int, user_public_id: str, session_id: str) -> dict:
        if not SESSION_ID.fullmatch(session_id):
            raise NotFound("session not found")
        with self.db.read() as conn:
            row = conn.execute(select(sessions).where(
                sessions.c.public_id == session_id, sessions.c.user_id == user_id,
                sessions.c.deleted_at.is_(None))).first()
        if row is None:
            raise NotFound("session not found")
        return session_body(row, self.ws_url, user_public_id)

    def delete(self, user_id: int, session_id: str) -> dict:
        """The session ends at once; its room is removed now or, if LiveKit fails, by the next room sync."""
        if not SESSION_ID.fullmatch(session_id):
            raise NotFound("session not found")
        with self.db.transaction() as conn:
            row = conn.execute(update(sessions).where(
                sessions.c.public_id == session_id, sessions.c.user_id == user_id, sessions.c.deleted_at.is_(None))
                .values(deleted_at=self.clock(), delete_reason="deleted")
                .returning(sessions.c.id, sessions.c.room_id)).first()
        if row is None:
            raise NotFound("session not found")
        self.remove_room(row.id, row.room_id)
        return {"id": session_id, "object": "realtime.session.deleted", "deleted": True}

    def remove_room(self, row_id: int, room_id: str) -> bool:
        """DeleteRoom, then drop the tombstone; on failure the tombstone stays for the sync to retry."""
        try:
            self.rooms.delete_room(room_id)
        except LiveKitError as exc:
            log.warning("removing LiveKit room %s failed (the room sync retries): %s", room_id, exc)
            return False
        self.forget(row_id)
        return True

    def forget(self, row_id: int) -> None:
        with self.db.read() as conn:
            conn.execute(delete(sessions).where(and_(sessions.c.id == row_id, sessions.c.deleted_at.is_not(None))))
