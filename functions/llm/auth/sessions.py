"""Login sessions and refresh-token rotation.

Each login starts a session (a refresh-token family). Refreshing uses up the presented token and issues the
next one in the family; presenting a used token again means it leaked, so the whole family is revoked.
Access tokens carry the session id, so revoking a session ends its access tokens too.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import secrets
import uuid
from dataclasses import dataclass

from sqlalchemy import insert, select, update

from shared.times import rfc3339, utcnow as _now
from shared.db import Database
from shared.errors import Unauthorized
from shared.schema import auth_sessions, refresh_tokens, users
from functions.llm.auth.issuer import TokenIssuer
from functions.llm.settings import LlmSettings


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class TokenPair:
    access_token: str
    refresh_token: str
    expires_in: int
    expires_at: dt.datetime
    session_id: str

    def body(self) -> dict:
        return {"access_token": self.access_token, "refresh_token": self.refresh_token, "token_type": "Bearer",
                "expires_in": self.expires_in, "expires_at": rfc3339(self.expires_at)}


class SessionService:
    def __init__(self, db: Database, issuer: TokenIssuer, settings: LlmSettings):
        self.db = db
        self.issuer = issuer
        self.refresh_ttl = dt.timedelta(seconds=settings.refresh_token_ttl_seconds)

    def _new_refresh_token(self, conn, session_id: str) -> str:
        token = "rt_" + secrets.token_urlsafe(32)
        conn.execute(insert(refresh_tokens).values(session_id=session_id, token_hash=_hash(token),
                                                   expires_at=_now() + self.refresh_ttl))
        return token

    def _pair(self, user, session_id: str, refresh_token: str) -> TokenPair:
        access = self.issuer.access_token(subject=user.subject, session_id=session_id, username=user.username,
                                          email=user.email, role=user.role)
        return TokenPair(access_token=access, refresh_token=refresh_token, expires_in=self.issuer.ttl,
                         expires_at=_now().replace(microsecond=0) + dt.timedelta(seconds=self.issuer.ttl),
                         session_id=session_id)

    def start(self, conn, user) -> TokenPair:
        """Open a session for `user` (a row with id, subject, username, email, role) inside the caller's transaction."""
        session_id = str(uuid.uuid4())
        conn.execute(insert(auth_sessions).values(id=session_id, user_id=user.id, expires_at=_now() + self.refresh_ttl))
        return self._pair(user, session_id, self._new_refresh_token(conn, session_id))

    def refresh(self, refresh_token: str) -> TokenPair:
        reused = False
        with self.db.transaction() as conn:
            row = conn.execute(
                select(refresh_tokens.c.id, refresh_tokens.c.session_id, refresh_tokens.c.used_at,
                       refresh_tokens.c.expires_at, auth_sessions.c.revoked_at, auth_sessions.c.user_id,
                       auth_sessions.c.expires_at.label("session_expires_at"))
                .join(auth_sessions, auth_sessions.c.id == refresh_tokens.c.session_id)
                .where(refresh_tokens.c.token_hash == _hash(refresh_token))
                .with_for_update(of=refresh_tokens)
            ).first()
            if row is None or row.revoked_at is not None or min(row.expires_at, row.session_expires_at) <= _now():
                raise Unauthorized("invalid refresh token")
            if row.used_at is not None:
                conn.execute(update(auth_sessions).where(auth_sessions.c.id == row.session_id)
                             .values(revoked_at=_now(), revoked_reason="refresh_token_reuse"))
                reused = True
            else:
                user = conn.execute(select(users.c.id, users.c.subject, users.c.username, users.c.email, users.c.role)
                                    .where(users.c.id == row.user_id, users.c.deleted_at.is_(None))).first()
                if user is None:
                    raise Unauthorized("invalid refresh token")
                conn.execute(update(refresh_tokens).where(refresh_tokens.c.id == row.id).values(used_at=_now()))
                pair = self._pair(user, row.session_id, self._new_refresh_token(conn, row.session_id))
        if reused:
            raise Unauthorized("refresh token reuse detected; session revoked")
        return pair

    def revoke_by_refresh_token(self, refresh_token: str, reason: str) -> bool:
        with self.db.transaction() as conn:
            session_id = conn.execute(select(refresh_tokens.c.session_id)
                                      .where(refresh_tokens.c.token_hash == _hash(refresh_token))).scalar()
            if session_id is None:
                return False
            self._revoke(conn, session_id, reason)
            return True

    def revoke_session(self, session_id: str, reason: str) -> None:
        with self.db.transaction() as conn:
            self._revoke(conn, session_id, reason)

    @staticmethod
    def _revoke(conn, session_id: str, reason: str) -> None:
        conn.execute(update(auth_sessions)
                     .where(auth_sessions.c.id == session_id, auth_sessions.c.revoked_at.is_(None))
                     .values(revoked_at=_now(), revoked_reason=reason))
