"""The audit log: one append-only trail of admin writes, written and read through this module only.

An entry says who (the user's public id and how they authenticated, or the service acting for them), what
(action and target), when, and the target's state before and after. Secrets never enter it: every value under
a key that names a secret is replaced before the row is written. No Flask here: ASGI functions and jobs write
entries too; `shared.audit_routes` adapts it to Flask handlers.
"""
from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy import insert, select

from shared import ids
from shared.db import Database
from shared.errors import BadRequest
from shared.platform_schema import audit_logs
from shared.times import unix

REDACTED = "[redacted]"
# Keys whose values are credentials or derived from them (hashes and ciphertexts included): `api_key`,
# `client_secret`, `access_token`, `password`, `key_hash`, `encrypted_api_key`, ... but not `api_key_hint` or
# `token_limits`, which are not secrets.
_SECRET_KEY = re.compile(
    r"(^|_)(api_?key|secret|password|passwd|token|credentials?|private_?key|signing_?key|hash)$"
    r"|^encrypted_|secret|password", re.IGNORECASE)


def redact(value: Any) -> Any:
    """A copy of `value` with every secret-named key's value replaced by REDACTED, at any depth."""
    if isinstance(value, dict):
        return {key: REDACTED if _is_secret_key(key) and item is not None else redact(item)
                for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [redact(item) for item in value]
    return value


def _is_secret_key(key: Any) -> bool:
    return isinstance(key, str) and bool(_SECRET_KEY.search(key))


@dataclass(frozen=True)
class Actor:
    user_id: str | None  # the user's public id
    auth_method: str  # jwt | apikey | delegation | service
    service: str | None = None  # the calling service, when one acts (delegation)


def actor_of(principal) -> Actor:
    """The audit actor of an authenticated `shared.auth.principal.Principal`."""
    return Actor(user_id=principal.public_id, auth_method=principal.auth_method, service=principal.acting_service)


@dataclass(frozen=True)
class AuditFilters:
    actor: str | None = None
    action: str | None = None
    target_type: str | None = None
    target_id: str | None = None
    since: dt.datetime | None = None
    until: dt.datetime | None = None


def entry_body(row) -> dict:
    return {
        "id": row.public_id,
        "object": "audit_log",
        "actor": {"user_id": row.actor_user_id, "auth_method": row.actor_auth_method, "service": row.actor_service},
        "action": row.action,
        "target": {"type": row.target_type, "id": row.target_id},
        "before": row.before,
        "after": row.after,
        "request_id": row.request_id,
        "created_at": unix(row.created_at),
    }


class AuditLog:
    def __init__(self, db: Database):
        self.db = db

    def record(self, actor: Actor, action: str, target_type: str, target_id: str | None, *,
               before: Any = None, after: Any = None, request_id: str | None = None, conn=None) -> str:
        """Append one entry, in the caller's transaction when `conn` is given; returns its id."""
        public_id = ids.public_id("audit")
        statement = insert(audit_logs).values(
            public_id=public_id, actor_user_id=actor.user_id, actor_auth_method=actor.auth_method,
            actor_service=actor.service, action=action, target_type=target_type,
            target_id=None if target_id is None else str(target_id)[:255],
            before=redact(before), after=redact(after), request_id=request_id)
        if conn is not None:
            conn.execute(statement)
        else:
            with self.db.transaction() as own:
                own.execute(statement)
        return public_id

    def list(self, filters: AuditFilters, *, limit: int, order: str, after: str | None) -> tuple[list[dict], bool]:
        """Entries newest first (or oldest with order=asc), `limit` of them after the cursor entry."""
        query = select(audit_logs)
        for column, value in ((audit_logs.c.actor_user_id, filters.actor), (audit_logs.c.action, filters.action),
                              (audit_logs.c.target_type, filters.target_type),
                              (audit_logs.c.target_id, filters.target_id)):
            if value is not None:
                query = query.where(column == value)
        if filters.since is not None:
            query = query.where(audit_logs.c.created_at >= filters.since)
        if filters.until is not None:
            query = query.where(audit_logs.c.created_at < filters.until)
        with self.db.read() as conn:
            if after is not None:
                cursor = conn.execute(select(audit_logs.c.id).where(audit_logs.c.public_id == after)).scalar()
                if cursor is None:
                    raise BadRequest("after is not a valid cursor", param="after")
                query = query.where(audit_logs.c.id < cursor if order == "desc" else audit_logs.c.id > cursor)
            query = query.order_by(audit_logs.c.id.desc() if order == "desc" else audit_logs.c.id.asc())
            rows = conn.execute(query.limit(limit + 1)).all()
        return [entry_body(row) for row in rows[:limit]], len(rows) > limit
