"""Accounts: guests, upgrades to permanent accounts, password login, admins."""
from __future__ import annotations

import re
import uuid

from sqlalchemy import func, insert, select, update
from sqlalchemy.exc import IntegrityError

from shared import ids
from shared.audit import Actor, AuditLog
from shared.auth.principal import Principal
from shared.db import Database
from shared.errors import BadRequest, Conflict, Unauthorized
from shared.schema import users
from shared.ratelimit import Limit, RateLimiter
from functions.llm.auth.passwords import PasswordHasher
from functions.llm.auth.sessions import SessionService, TokenPair
from functions.llm.settings import LlmSettings

EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]+$")
_USER = (users.c.id, users.c.public_id, users.c.subject, users.c.username, users.c.email, users.c.role,
         users.c.password_hash)


def valid_email(value: str) -> str:
    value = value.strip()
    if len(value) > 320 or not EMAIL.match(value):
        raise BadRequest("email is not a valid address", param="email")
    return value


class AccountService:
    def __init__(self, db: Database, sessions: SessionService, settings: LlmSettings, limiter: RateLimiter):
        self.db = db
        self.sessions = sessions
        self.issuer = settings.token_issuer
        self.password_min_length = settings.password_min_length
        self.passwords = PasswordHasher(threads=settings.password_hash_threads,
                                        queue_size=settings.password_hash_queue_size)
        self.limiter = limiter
        self.per_account_address = (Limit(settings.login_rate_limit_per_account_address_per_minute, 60),
                                    Limit(settings.login_rate_limit_per_account_address_per_hour, 3600))
        self.per_address = (Limit(settings.login_rate_limit_per_address_per_minute, 60),
                            Limit(settings.login_rate_limit_per_address_per_hour, 3600))

    def create_guest(self) -> tuple[str, str, TokenPair]:
        public_id = ids.user_id()
        username = f"guest-{uuid.uuid4()}"
        with self.db.transaction() as conn:
            user = conn.execute(
                insert(users).values(public_id=public_id, issuer=self.issuer, subject=public_id,
                                     username=username, role="guest").returning(*_USER)).first()
            pair = self.sessions.start(conn, user)
        return public_id, username, pair

    def upgrade(self, principal: Principal, *, email: str, password: str, username: str | None,
                full_name: str | None) -> None:
        """Guest → permanent account, in place: same user row, so everything the guest made stays theirs."""
        if not principal.is_guest:
            raise Conflict("account is already a permanent account")
        if len(password) < self.password_min_length:
            raise BadRequest(f"password must be at least {self.password_min_length} characters", param="password")
        values = {"email": email, "password_hash": self.passwords.hash(password), "role": "user",
                  "updated_at": func.now()}
        if username:
            values["username"] = username
        if full_name:
            values["name"] = full_name
        try:
            with self.db.transaction() as conn:
                conn.execute(update(users).where(users.c.id == principal.user_id).values(**values))
        except IntegrityError:
            raise Conflict("an account with this email already exists", param="email") from None

    def login(self, email: str, password: str, client: str) -> tuple[object, TokenPair]:
        """Attempts are counted before any hashing; no connection is held while the hash waits for a thread."""
        self.limiter.enforce("login-address", client, self.per_address)
        self.limiter.enforce("login-account", f"{email.lower()}|{client}", self.per_account_address)
        with self.db.read() as conn:
            user = conn.execute(select(*_USER).where(
                func.lower(users.c.email) == email.lower(), users.c.issuer == self.issuer,
                users.c.deleted_at.is_(None))).first()
        if not self.passwords.verify(password, user.password_hash if user else None):
            raise Unauthorized("invalid email or password")
        with self.db.transaction() as conn:
            return user, self.sessions.start(conn, user)

    def ensure_admin(self, email: str, password: str | None = None, *, audit: AuditLog | None = None,
                     actor: Actor | None = None) -> tuple[int, str, bool]:
        """Create or promote the account with this email to admin (the `make admin` path), with its audit entry
        in the same transaction when `audit` is given. Returns (internal id, public id, created)."""
        email = valid_email(email)
        with self.db.transaction() as conn:
            user = conn.execute(select(*_USER).where(func.lower(users.c.email) == email.lower(),
                                                     users.c.deleted_at.is_(None))).first()
            if user is not None:
                conn.execute(update(users).where(users.c.id == user.id).values(role="admin", updated_at=func.now()))
                before, result = {"email": user.email, "role": user.role}, (user.id, user.public_id, False)
            else:
                public_id = ids.user_id()
                values = dict(public_id=public_id, issuer=self.issuer, subject=public_id, email=email,
                              username=email.split("@")[0], role="admin")
                if password:
                    values["password_hash"] = self.passwords.hash(password)
                new_id = conn.execute(insert(users).values(**values).returning(users.c.id)).scalar_one()
                before, result = None, (new_id, public_id, True)
            if audit is not None:
                audit.record(actor, "user.create_admin" if result[2] else "user.promote_admin", "user", result[1],
                             before=before, after={"email": email, "role": "admin"}, conn=conn)
            return result


def me_body(principal: Principal) -> dict:
    """Jan's /auth/me body (also /v1/users/me)."""
    return {
        "id": principal.public_id,
        "username": principal.username,
        "email": principal.email,
        "name": principal.name or principal.username,
        "subject": principal.subject,
        "auth_method": principal.auth_method,
        "roles": [principal.role],
        "is_admin": principal.is_admin,
        "is_guest": principal.is_guest,
    }
