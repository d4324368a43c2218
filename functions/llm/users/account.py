"""The caller's whole account: a streamed JSON export of everything it owns, and deleting it.

Export: one REPEATABLE READ, read-only transaction (a consistent snapshot), conversations read in keyset pages
and their items, shares and usage records through server-side cursors, the JSON written out in ~64 KiB chunks,
so memory stays bounded however large the account is.

Delete: the users row is hard-deleted in one transaction and every table that references it goes with it
(`ON DELETE CASCADE`: sessions and their refresh tokens, API keys, settings, projects, conversations with their
items, branches and shares, usage records). Access tokens name their session, refresh tokens and API keys are
rows, so all of them stop working at the commit. An identity of an external issuer leaves a tombstone (issuer +
subject, `deleted_at` set, nothing else), so a still-valid external token cannot bring the account back.
"""
from __future__ import annotations

import datetime as dt
import json
import logging
from typing import Iterator

from sqlalchemy import delete, func, insert, select, text

from shared.times import unix as _unix
from shared import ids
from shared.auth.principal import Principal
from shared.db import Database
from shared.errors import Conflict, Unauthorized
from shared.domain.conversations.tables import (conversation_branches, conversation_items, conversation_shares,
                                                conversations, projects)
from shared.domain.usage.tables import usage_records
from shared.schema import api_keys, user_settings, users
from functions.llm.auth.api_keys import key_body
from functions.llm.users.user_settings import UserSettingsService, rfc3339

log = logging.getLogger("jan.llm.account")

EXPORT_VERSION = 1
CONVERSATION_PAGE = 200
ROWS_PER_FETCH = 500
CHUNK_BYTES = 64 * 1024
# Deleting a large account cascades through many rows; it gets longer than an ordinary statement.
DELETE_STATEMENT_TIMEOUT_MS = 300_000


def _dumps(value) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


# Export bodies (each as the API shows it: unix seconds where Jan uses them, RFC 3339 for items and keys) ---------

def account_body(row) -> dict:
    return {"id": row.public_id, "object": "user", "username": row.username, "email": row.email, "name": row.name,
            "role": row.role, "issuer": row.issuer, "subject": row.subject, "has_password": row.password_hash is not None,
            "created_at": rfc3339(row.created_at), "updated_at": rfc3339(row.updated_at)}


def project_body(row) -> dict:
    return {"id": row.public_id, "object": "project", "name": row.name, "instruction": row.instruction,
            "is_favorite": row.is_favorite, "is_archived": row.archived_at is not None,
            "archived_at": _unix(row.archived_at), "last_used_at": _unix(row.last_used_at),
            "created_at": _unix(row.created_at), "updated_at": _unix(row.updated_at),
            "deleted_at": _unix(row.deleted_at)}


def conversation_header(row) -> dict:
    return {"id": row.public_id, "object": "conversation", "title": row.title, "status": row.status,
            "active_branch": row.active_branch, "referrer": row.referrer, "metadata": row.metadata or {},
            "project_id": row.project_public_id, "instruction_snapshot": row.instruction_snapshot,
            "created_at": _unix(row.created_at), "updated_at": _unix(row.updated_at),
            "deleted_at": _unix(row.deleted_at)}


def branch_body(row) -> dict:
    return {"name": row.name, "description": row.description, "parent_branch": row.parent_branch,
            "forked_at": _unix(row.forked_at), "forked_from_item_id": row.forked_from_item_id,
            "created_at": _unix(row.created_at), "updated_at": _unix(row.updated_at)}


_ITEM_OPTIONAL = ("role", "content", "status", "call_id", "name", "server_label", "arguments", "output", "error",
                  "model", "usage", "finish_reason", "rating", "incomplete_details")


def item_body(row) -> dict:
    body = {"id": row.public_id, "object": "conversation.item", "type": row.type, "branch": row.branch,
            "sequence_number": row.sequence_number, "created_at": rfc3339(row.created_at)}
    for name in _ITEM_OPTIONAL:
        value = getattr(row, name)
        if value is not None:
            body[name] = value
    if row.completed_at is not None:
        body["completed_at"] = rfc3339(row.completed_at)
    return body


def share_body(row) -> dict:
    return {"id": row.public_id, "object": "share", "conversation_id": row.conversation_public_id,
            "slug": row.slug, "scope": row.scope, "item_id": row.item_public_id, "title": row.title,
            "visibility": row.visibility, "view_count": row.view_count, "revoked_at": _unix(row.revoked_at),
            "last_viewed_at": _unix(row.last_viewed_at), "snapshot_version": row.snapshot_version,
            "share_options": row.share_options or {}, "snapshot": row.snapshot,
            "created_at": _unix(row.created_at), "updated_at": _unix(row.updated_at)}


def usage_body(row) -> dict:
    return {"object": "usage.record", "created_at": rfc3339(row.created_at), "model": row.model,
            "endpoint": row.endpoint, "stream": row.stream, "status": row.status,
            "prompt_tokens": row.prompt_tokens, "completion_tokens": row.completion_tokens,
            "total_tokens": row.total_tokens, "usage_estimated": row.usage_estimated,
            "latency_ms": row.latency_ms, "first_token_ms": row.first_token_ms, "api_key_id": row.api_key_id,
            "conversation_id": row.conversation_public_id, "project_id": row.project_public_id}


class _Chunks:
    """Collects JSON text and hands it out in chunks of about CHUNK_BYTES (not one tiny write per row)."""

    def __init__(self):
        self.parts: list[str] = []
        self.size = 0

    def add(self, part: str) -> str | None:
        self.parts.append(part)
        self.size += len(part)
        if self.size >= CHUNK_BYTES:
            return self.take()
        return None

    def take(self) -> str:
        out = "".join(self.parts)
        self.parts, self.size = [], 0
        return out


class AccountData:
    def __init__(self, db: Database, user_settings_service: UserSettingsService, own_issuer: str):
        self.db = db
        self.settings = user_settings_service
        self.own_issuer = own_issuer

    # Export --------------------------------------------------------------------------------------------------

    def export_head(self, principal: Principal) -> dict:
        """The small part of the export, read before the response starts (so a failure here is a clean error)."""
        with self.db.read() as conn:
            account = conn.execute(select(users).where(users.c.id == principal.user_id,
                                                       users.c.deleted_at.is_(None))).first()
            if account is None:
                raise Unauthorized("token revoked")
            settings_row = conn.execute(select(user_settings).where(user_settings.c.user_id == principal.user_id)).first()
            keys = conn.execute(select(*api_keys.c).where(api_keys.c.user_id == principal.user_id)
                                .order_by(api_keys.c.created_at, api_keys.c.id)).all()
        now = dt.datetime.now(dt.timezone.utc)
        return {"object": "export", "version": EXPORT_VERSION, "exported_at": rfc3339(now),
                "account": account_body(account),
                "settings": self.settings.body(settings_row, account.public_id),
                "api_keys": [key_body(row, now) for row in keys]}

    def export_stream(self, user_id: int, head: dict) -> Iterator[str]:
        """The whole export as JSON text: `head`, then projects, conversations (with branches and items of every
        branch), shares and usage records, each read from one consistent snapshot."""
        chunks = _Chunks()
        chunks.add(_dumps(head)[:-1])  # the head object, left open for the sections that follow
        with self.db.engine.connect() as conn:
            conn = conn.execution_options(isolation_level="REPEATABLE READ", postgresql_readonly=True)
            with conn.begin():
                for name, rows in (("projects", self._projects(conn, user_id)),
                                   ("conversations", self._conversations(conn, user_id)),
                                   ("shares", self._shares(conn, user_id)),
                                   ("usage_records", self._usage(conn, user_id))):
                    if out := chunks.add(f',"{name}":['):
                        yield out
                    for index, part in enumerate(rows):
                        if out := chunks.add(part if index == 0 else "," + part):
                            yield out
                    if out := chunks.add("]"):
                        yield out
        yield chunks.take() + "}"

    @staticmethod
    def _streamed(conn, query):
        return conn.execute(query.execution_options(yield_per=ROWS_PER_FETCH))

    def _projects(self, conn, user_id: int) -> Iterator[str]:
        for row in self._streamed(conn, select(projects).where(projects.c.user_id == user_id)
                                  .order_by(projects.c.id)):
            yield _dumps(project_body(row))

    def _conversations(self, conn, user_id: int) -> Iterator[str]:
        """Keyset pages of conversations; per page one query for branches and one streamed query for items."""
        last_id = 0
        while True:
            page = conn.execute(
                select(conversations, projects.c.public_id.label("project_public_id"))
                .outerjoin(projects, projects.c.id == conversations.c.project_id)
                .where(conversations.c.user_id == user_id, conversations.c.id > last_id)
                .order_by(conversations.c.id).limit(CONVERSATION_PAGE)).all()
            if not page:
                return
            last_id = page[-1].id
            page_ids = [row.id for row in page]
            branches: dict[int, list] = {}
            for row in conn.execute(select(conversation_branches)
                                    .where(conversation_branches.c.conversation_id.in_(page_ids))
                                    .order_by(conversation_branches.c.conversation_id, conversation_branches.c.id)):
                branches.setdefault(row.conversation_id, []).append(branch_body(row))
            items = iter(self._streamed(conn, select(conversation_items)
                                        .where(conversation_items.c.conversation_id.in_(page_ids))
                                        .order_by(conversation_items.c.conversation_id, conversation_items.c.branch,
                                                  conversation_items.c.sequence_number)))
            pending = next(items, None)
            for conversation in page:
                head = conversation_header(conversation)
                head["branches"] = branches.get(conversation.id, [])
                text_ = _dumps(head)
                parts = [text_[:-1], ',"items":[']
                count = 0
                while pending is not None and pending.conversation_id == conversation.id:
                    parts.append(("," if count else "") + _dumps(item_body(pending)))
                    count += 1
                    if len(parts) >= 64:  # hand long conversations out piecewise
                        yield "".join(parts)
                        parts = []
                    pending = next(items, None)
                parts.append("]}")
                yield "".join(parts)
            if len(page) < CONVERSATION_PAGE:
                return

    def _shares(self, conn, user_id: int) -> Iterator[str]:
        query = (select(conversation_shares, conversations.c.public_id.label("conversation_public_id"))
                 .join(conversations, conversations.c.id == conversation_shares.c.conversation_id)
                 .where(conversation_shares.c.owner_user_id == user_id, conversations.c.user_id == user_id)
                 .order_by(conversation_shares.c.id))
        for row in self._streamed(conn, query):
            yield _dumps(share_body(row))

    def _usage(self, conn, user_id: int) -> Iterator[str]:
        query = (select(usage_records, conversations.c.public_id.label("conversation_public_id"),
                        projects.c.public_id.label("project_public_id"))
                 .outerjoin(conversations, (conversations.c.id == usage_records.c.conversation_id)
                            & (conversations.c.user_id == user_id))
                 .outerjoin(projects, (projects.c.id == usage_records.c.project_id) & (projects.c.user_id == user_id))
                 .where(usage_records.c.user_id == user_id)
                 .order_by(usage_records.c.id))
        for row in self._streamed(conn, query):
            yield _dumps(usage_body(row))

    # Delete --------------------------------------------------------------------------------------------------

    def delete(self, principal: Principal) -> dict:
        with self.db.transaction() as conn:
            conn.execute(text(f"SET LOCAL statement_timeout = {int(DELETE_STATEMENT_TIMEOUT_MS)}"))
            if principal.is_admin:
                # Lock every admin row (in id order, so two admins deleting at once cannot deadlock) before
                # counting: of two last admins deleting themselves together, one is refused.
                admins = conn.execute(select(users.c.id).where(users.c.role == "admin", users.c.deleted_at.is_(None))
                                      .order_by(users.c.id).with_for_update()).scalars().all()
                if principal.user_id in admins and len(admins) <= 1:
                    raise Conflict("the last admin account cannot be deleted; make another account admin first",
                                   code="last_admin")
            row = conn.execute(select(users.c.id, users.c.issuer, users.c.subject).where(
                users.c.id == principal.user_id, users.c.deleted_at.is_(None)).with_for_update()).first()
            if row is None:  # deleted by a parallel request a moment ago
                raise Unauthorized("token revoked")
            conn.execute(delete(users).where(users.c.id == row.id))
            if row.issuer != self.own_issuer:
                conn.execute(insert(users).values(public_id=ids.user_id(), issuer=row.issuer, subject=row.subject,
                                                  role="guest", deleted_at=func.now()))
        return {"id": principal.public_id, "object": "user.deleted", "deleted": True}
