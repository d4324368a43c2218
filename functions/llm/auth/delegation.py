"""Minting delegation and service tokens for other functions (docs/architecture.md "Service identity").

A service proves who it is with its SERVICE_CREDENTIAL (the issuer keeps only SHA-256 hashes, by service name,
in SERVICE_CREDENTIAL_HASHES). DELEGATION_GRANTS says which callee each service may obtain tokens for; a service
may always obtain a service token for its own audience (dispatching its own jobs), and JOB_DISPATCHERS (the sweep)
service tokens for any function, but never a delegation token. Nothing here stores or forwards
a user's own credentials: the token names the user by id and lives minutes.
"""
from __future__ import annotations

import hashlib
import hmac

from sqlalchemy import select

from shared.db import Database
from shared.errors import BadRequest, Forbidden, NotFound, Unauthorized
from shared.schema import users
from functions.llm.auth.issuer import TokenIssuer
from functions.llm.settings import LlmSettings


def credential_hash(credential: str) -> str:
    return hashlib.sha256(credential.encode("utf-8")).hexdigest()


def _parse_hashes(entries: tuple[str, ...]) -> dict[str, str]:
    found = {}
    for entry in entries:
        name, sep, digest = entry.partition(":")
        if not sep or not name.strip() or len(digest.strip()) != 64:
            raise RuntimeError(f"SERVICE_CREDENTIAL_HASHES entry {entry!r} is not name:<sha256 hex>")
        found[name.strip()] = digest.strip().lower()
    return found


def _parse_grants(entries: tuple[str, ...]) -> frozenset[tuple[str, str]]:
    grants = set()
    for entry in entries:
        caller, sep, callee = entry.partition(">")
        if not sep or not caller.strip() or not callee.strip():
            raise RuntimeError(f"DELEGATION_GRANTS entry {entry!r} is not caller>callee")
        grants.add((caller.strip(), callee.strip()))
    return frozenset(grants)


class DelegationService:
    def __init__(self, db: Database, issuer: TokenIssuer, settings: LlmSettings):
        self.db = db
        self.issuer = issuer
        self.ttl = settings.delegation_token_ttl_seconds
        self.hashes = _parse_hashes(settings.service_credential_hashes)
        self.grants = _parse_grants(settings.delegation_grants)
        self.dispatchers = frozenset(settings.job_dispatchers)

    def authenticate(self, credential: str | None) -> str:
        """The service name whose credential this is."""
        if not credential:
            raise Unauthorized("authentication required")
        digest = credential_hash(credential)
        for name, expected in self.hashes.items():
            if hmac.compare_digest(digest, expected):
                return name
        raise Unauthorized("invalid service credential")

    def mint(self, caller: str, audience: str, user_public_id: str | None) -> tuple[str, int]:
        """(token, lifetime in seconds): a delegation token for the user, or a service token without one."""
        if not isinstance(audience, str) or not audience or len(audience) > 64:
            raise BadRequest("audience must name a function", param="audience")
        if user_public_id is None:
            if (caller, audience) not in self.grants and caller != audience and caller not in self.dispatchers:
                raise Forbidden(f"{caller} may not call {audience}")
            return self.issuer.service_token(actor=caller, audience=audience), self.ttl
        if (caller, audience) not in self.grants:
            raise Forbidden(f"{caller} may not act for users at {audience}")
        if not isinstance(user_public_id, str) or len(user_public_id) > 64:
            raise BadRequest("user_id must be a user id", param="user_id")
        with self.db.read() as conn:
            live = conn.execute(select(users.c.id).where(users.c.public_id == user_public_id,
                                                         users.c.deleted_at.is_(None))).scalar()
        if live is None:
            raise NotFound("user not found")
        return self.issuer.delegation_token(user_public_id=user_public_id, actor=caller, audience=audience), self.ttl
