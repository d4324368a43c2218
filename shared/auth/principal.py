"""Who is calling: resolved from the request's own credentials, never from identity headers."""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import bindparam, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import IntegrityError

from shared.times import utcnow as _now
from shared import ids
from shared.auth.apikeys import hash_api_key, looks_like_api_key
from shared.auth.tokens import DELEGATION, SERVICE, TokenVerifier
from shared.db import Database
from shared.errors import Unauthorized
from shared.schema import api_keys, auth_sessions, users

# last_used_at is written at most this often per key, so API-key auth stays a read on the hot path.
LAST_USED_RESOLUTION = dt.timedelta(minutes=5)


@dataclass(frozen=True)
class Principal:
    user_id: int  # internal database id: never shown to clients
    public_id: str
    role: str  # guest | user | admin
    auth_method: str  # jwt | apikey | delegation
    subject: str
    issuer: str
    email: str | None = None
    username: str | None = None
    name: str | None = None
    api_key_id: str | None = None
    session_id: str | None = None
    acting_service: str | None = None  # the service presenting a delegation token for this user

    @property
    def is_admin(self) -> bool:
        # Admin rights are the admin's own: a service acting for an admin never holds them.
        return self.role == "admin" and self.acting_service is None

    @property
    def is_guest(self) -> bool:
        return self.role == "guest"


_USER_COLUMNS = (users.c.id, users.c.public_id, users.c.role, users.c.email, users.c.username, users.c.name,
                 users.c.subject, users.c.issuer)


def credential_from(source) -> tuple[str, str] | None:
    """("apikey" | "bearer", value) from `X-API-Key` or `Authorization: Bearer`; `Bearer sk_…` is an API key.

    `source` is a request with `.headers` (Flask) or the headers themselves (any mapping with a case-insensitive
    `.get`, such as Starlette's), so WSGI and ASGI functions share one reading of the credentials."""
    headers = getattr(source, "headers", source)
    api_key = headers.get("X-API-Key")
    if api_key:
        return "apikey", api_key.strip()
    authorization = headers.get("Authorization", "")
    scheme, _, value = authorization.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    value = value.strip()
    return ("apikey", value) if looks_like_api_key(value) else ("bearer", value)


# The two hot-path queries, built once.
_API_KEY_QUERY = (
    select(api_keys.c.id.label("api_key_id"), api_keys.c.expires_at, api_keys.c.revoked_at, api_keys.c.last_used_at,
           *_USER_COLUMNS)
    .join(users, users.c.id == api_keys.c.user_id)
    .where(api_keys.c.key_hash == bindparam("key_hash"), users.c.deleted_at.is_(None))
)
# The session names the user, whoever vouched for them at login (our passwords or the external issuer).
_SESSION_QUERY = (
    select(*_USER_COLUMNS, auth_sessions.c.revoked_at, auth_sessions.c.expires_at)
    .join(auth_sessions, auth_sessions.c.user_id == users.c.id)
    .where(auth_sessions.c.id == bindparam("session_id"), users.c.subject == bindparam("subject"),
           users.c.deleted_at.is_(None))
)
# A delegation token names the user by public id; a deleted account ends every delegation at once.
_DELEGATED_USER_QUERY = select(*_USER_COLUMNS).where(users.c.public_id == bindparam("public_id"),
                                                     users.c.deleted_at.is_(None))


class PrincipalResolver:
    def __init__(self, db: Database, verifier: TokenVerifier, admin_emails: tuple[str, ...] = ()):
        self.db = db
        self.verifier = verifier
        self.admin_emails = {email.lower() for email in admin_emails}

    def resolve(self, request) -> Principal:
        """The caller of a request (anything `credential_from` reads); Unauthorized when it has no valid
        credential. Framework-free and blocking (database reads): ASGI code calls it in a worker thread."""
        credential = credential_from(request)
        if credential is None:
            raise Unauthorized("authentication required")
        kind, value = credential
        if kind == "apikey":
            return self.from_api_key(value)
        return self.from_token(value)

    def from_api_key(self, key: str) -> Principal:
        with self.db.read() as conn:
            row = conn.execute(_API_KEY_QUERY, {"key_hash": hash_api_key(key)}).first()
            now = _now()
            if row is None or row.revoked_at is not None or (row.expires_at is not None and row.expires_at <= now):
                raise Unauthorized("invalid api key")
            if row.last_used_at is None or now - row.last_used_at > LAST_USED_RESOLUTION:
                conn.execute(update(api_keys).where(api_keys.c.id == row.api_key_id).values(last_used_at=now))
        return self._principal(row, "apikey", api_key_id=row.api_key_id)

    def from_token(self, token: str) -> Principal:
        verified = self.verifier.verify(token)
        claims = verified.claims
        if verified.kind == SERVICE:
            raise Unauthorized("a service token does not identify a user")
        if verified.kind == DELEGATION:
            with self.db.read() as conn:
                row = conn.execute(_DELEGATED_USER_QUERY, {"public_id": claims["sub"]}).first()
            if row is None:
                raise Unauthorized("token revoked")
            return self._principal(row, "delegation", acting_service=verified.actor)
        if verified.own:
            session_id = claims.get("sid")
            if not isinstance(session_id, str):
                raise Unauthorized("invalid token")
            with self.db.read() as conn:
                row = conn.execute(_SESSION_QUERY, {"session_id": session_id, "subject": claims["sub"]}).first()
            if row is None or row.revoked_at is not None or row.expires_at <= _now():
                raise Unauthorized("token revoked")
            return self._principal(row, "jwt", session_id=session_id)
        return self._principal(self.external_user(verified.issuer, claims), "jwt")

    def external_user(self, issuer: str, claims: dict):
        """Users of a trusted external issuer get a row on first sight (Jan's lazy upsert by issuer+subject)."""
        subject = str(claims["sub"])
        with self.db.read() as conn:
            row = conn.execute(select(*_USER_COLUMNS).where(
                users.c.issuer == issuer, users.c.subject == subject, users.c.deleted_at.is_(None))).first()
        if row is not None:
            return row
        email = claims.get("email") if isinstance(claims.get("email"), str) else None
        roles = set((claims.get("realm_access") or {}).get("roles") or [])
        # An issuer with open sign-up lets anyone claim any address: only a verified one may make an admin.
        admin_by_email = email and email.lower() in self.admin_emails and claims.get("email_verified") is True
        if "admin" in roles or admin_by_email:
            role = "admin"
        elif "guest" in roles or claims.get("guest") in (True, "true"):
            role = "guest"
        else:
            role = "user"
        values = dict(public_id=ids.user_id(), issuer=issuer, subject=subject, email=email,
                      username=claims.get("preferred_username"), name=claims.get("name"), role=role)
        try:
            return self._upsert_user(values)
        except IntegrityError:
            # Another account holds this email address; it stays theirs, and this identity gets a row without it.
            return self._upsert_user({**values, "email": None})

    def _upsert_user(self, values: dict):
        statement = (
            insert(users).values(**values)
            .on_conflict_do_update(index_elements=[users.c.issuer, users.c.subject], set_={"updated_at": _now()},
                                   where=users.c.deleted_at.is_(None))
            .returning(*_USER_COLUMNS)
        )
        with self.db.transaction() as conn:
            row = conn.execute(statement).first()
        if row is None:  # the account was deleted: its identity does not come back to life
            raise Unauthorized("token revoked")
        return row

    @staticmethod
    def _principal(row, method: str, *, api_key_id: str | None = None, session_id: str | None = None,
                   acting_service: str | None = None) -> Principal:
        return Principal(
            user_id=row.id, public_id=row.public_id, role=row.role, auth_method=method, subject=row.subject,
            issuer=row.issuer, email=row.email, username=row.username, name=row.name,
            api_key_id=api_key_id, session_id=session_id, acting_service=acting_service,
        )

    def service_caller(self, request: Request) -> str:
        """The service calling this function as itself (a service token minted for this function's audience)."""
        credential = credential_from(request)
        if credential is None:
            raise Unauthorized("authentication required")
        if credential[0] != "bearer":
            raise Unauthorized("a service token is required")
        verified = self.verifier.verify(credential[1])
        if verified.kind != SERVICE:
            raise Unauthorized("a service token is required")
        return verified.actor
