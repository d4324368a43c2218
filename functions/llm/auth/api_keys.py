"""API keys: created once (the secret is shown only then), listed without secrets, revoked, validated."""
from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import func, insert, select, update

from shared.times import rfc3339 as _rfc3339, utcnow as _now
from shared.auth.apikeys import PREFIX, generate_api_key, hash_api_key
from shared.db import Database
from shared.errors import BadRequest, NotFound, Unauthorized
from shared.schema import api_keys, users
from functions.llm.settings import LlmSettings


def _status(row, now: dt.datetime) -> str:
    if row.revoked_at is not None:
        return "revoked"
    if row.expires_at is not None and row.expires_at <= now:
        return "expired"
    return "active"


def key_body(row, now: dt.datetime | None = None) -> dict:
    now = now or _now()
    body = {"id": row.id, "name": row.name, "prefix": row.prefix, "suffix": row.suffix,
            "created_at": _rfc3339(row.created_at), "expires_at": _rfc3339(row.expires_at),
            "status": _status(row, now)}
    if row.revoked_at is not None:
        body["revoked_at"] = _rfc3339(row.revoked_at)
    if row.last_used_at is not None:
        body["last_used_at"] = _rfc3339(row.last_used_at)
    return body


class ApiKeyService:
    def __init__(self, db: Database, settings: LlmSettings):
        self.db = db
        self.default_ttl = settings.api_key_default_ttl_seconds
        self.max_ttl = settings.api_key_max_ttl_seconds
        self.max_per_user = settings.api_key_max_per_user

    def ttl_seconds(self, expires_in: int | None, expires_in_days: int | None) -> int:
        if expires_in is not None:
            requested, field = expires_in, "expires_in"
        elif expires_in_days is not None:
            requested, field = expires_in_days * 86400, "expires_in_days"
        else:
            return self.default_ttl
        if requested < 0:
            raise BadRequest(f"{field} must be positive", param=field)
        return min(requested, self.max_ttl) if requested else self.default_ttl

    def create(self, user_id: int, name: str, ttl_seconds: int) -> dict:
        key = generate_api_key()
        now = _now()
        with self.db.transaction() as conn:
            # Lock the owner row so two parallel creates cannot both pass the per-user limit.
            conn.execute(select(users.c.id).where(users.c.id == user_id).with_for_update())
            active = conn.execute(select(func.count()).select_from(api_keys).where(
                api_keys.c.user_id == user_id, api_keys.c.revoked_at.is_(None),
                (api_keys.c.expires_at.is_(None)) | (api_keys.c.expires_at > now))).scalar_one()
            if active >= self.max_per_user:
                raise BadRequest("api key limit reached", code="api_key_limit")
            row = conn.execute(insert(api_keys).values(
                id=str(uuid.uuid4()), user_id=user_id, name=name, prefix=PREFIX, suffix=key[-4:],
                key_hash=hash_api_key(key), expires_at=now + dt.timedelta(seconds=ttl_seconds),
            ).returning(*api_keys.c)).first()
        body = key_body(row, now)
        body["key"] = key
        return body

    def list(self, user_id: int) -> list[dict]:
        with self.db.read() as conn:
            rows = conn.execute(select(*api_keys.c).where(api_keys.c.user_id == user_id)
                                .order_by(api_keys.c.created_at.desc())).all()
        now = _now()
        return [key_body(row, now) for row in rows]

    def revoke(self, user_id: int, key_id: str) -> None:
        try:
            uuid.UUID(key_id)
        except ValueError:
            raise NotFound("api key not found") from None
        with self.db.transaction() as conn:
            found = conn.execute(select(api_keys.c.revoked_at).where(
                api_keys.c.id == key_id, api_keys.c.user_id == user_id)).first()
            if found is None:
                raise NotFound("api key not found")
            if found.revoked_at is None:
                conn.execute(update(api_keys).where(api_keys.c.id == key_id).values(revoked_at=_now()))

    def validate(self, key: str) -> dict:
        """Jan's validate-api-key contract, with the public user id instead of a database integer."""
        now = _now()
        with self.db.read() as conn:
            row = conn.execute(
                select(api_keys.c.revoked_at, api_keys.c.expires_at, users.c.public_id, users.c.subject,
                       users.c.username, users.c.email, users.c.name, users.c.role)
                .join(users, users.c.id == api_keys.c.user_id)
                .where(api_keys.c.key_hash == hash_api_key(key), users.c.deleted_at.is_(None))).first()
        if row is None or _status(row, now) != "active":
            raise Unauthorized("invalid api key")
        first, _, last = (row.name or "").partition(" ")
        return {"user_id": row.public_id, "subject": row.subject, "username": row.username, "email": row.email,
                "first_name": first, "last_name": last, "roles": [row.role]}
