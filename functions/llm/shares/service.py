"""Share store: create (a frozen, sanitised snapshot), list, revoke, and the public read behind a slug.

Ownership: a share belongs to its conversation's owner; another user's conversation or share answers 404,
exactly like one that never existed (Jan answers 403). Shares of a deleted conversation are gone everywhere.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass

from sqlalchemy import func, insert, select, update

from shared.times import unix as _unix
from shared import ids
from shared.db import Database
from shared.errors import BadRequest, Gone, NotFound
from shared.pagination import Page, list_body
from shared.ratelimit import Limit, RateLimiter
from shared.domain.conversations import revoke_for_conversations
from shared.domain.conversations.tables import conversation_items, conversation_shares, conversations
from shared.schema import users
from functions.llm.settings import LlmSettings
from functions.llm.shares.snapshot import build_snapshot, make_redactor, share_title

MIN_ITEMS = 2
MAX_SNAPSHOT_BYTES = 10 * 1024 * 1024
MAX_TITLE_LENGTH = 256
SLUG = re.compile(r"[0-9A-Za-z]{22}")
PUBLIC_SCOPE = "public_share"

# Everything but the snapshot (which can be megabytes): what lists and management answers need.
_SHARE_COLUMNS = [column for column in conversation_shares.c if column.name != "snapshot"]


@dataclass(frozen=True)
class ShareRequest:
    scope: str  # conversation | item
    item_id: str | None = None
    title: str | None = None
    include_images: bool = False
    include_context_messages: bool = False
    branch: str | None = None


def share_body(row, base_url: str, conversation_public_id: str | None = None) -> dict:
    """Jan's share shape (optional fields only when set), plus `scope` and `conversation_id`."""
    body = {"id": row.public_id, "object": "share", "slug": row.slug,
            "share_url": f"{base_url}/v1/public/shares/{row.slug}"}
    if row.title is not None:
        body["title"] = row.title
    if row.item_public_id is not None:
        body["item_id"] = row.item_public_id
    body.update(visibility=row.visibility, view_count=row.view_count)
    if row.revoked_at is not None:
        body["revoked_at"] = _unix(row.revoked_at)
    if row.last_viewed_at is not None:
        body["last_viewed_at"] = _unix(row.last_viewed_at)
    options = row.share_options or {}
    body.update(
        snapshot_version=row.snapshot_version,
        share_options={"include_images": bool(options.get("include_images")),
                       "include_context_messages": bool(options.get("include_context_messages"))},
        scope=row.scope,
        conversation_id=conversation_public_id or row.conversation_public_id,
        created_at=_unix(row.created_at),
        updated_at=_unix(row.updated_at),
    )
    return body


class ShareService:
    def __init__(self, db: Database, limiter: RateLimiter, settings: LlmSettings):
        self.db = db
        self.limiter = limiter
        self.public_limits = (Limit(settings.public_share_rate_limit_per_minute, 60),
                              Limit(settings.public_share_rate_limit_per_hour, 3600))

    # Management ----------------------------------------------------------------------------------------------

    @staticmethod
    def _conversation(conn, user_id: int, public_id: str, *, lock: bool = False):
        query = select(conversations).where(conversations.c.public_id == public_id,
                                            conversations.c.user_id == user_id, conversations.c.deleted_at.is_(None))
        row = conn.execute(query.with_for_update() if lock else query).first()
        if row is None:
            raise NotFound("conversation not found")
        return row

    def create(self, user_id: int, owner_public_id: str, conversation_id: str, request: ShareRequest,
               base_url: str) -> dict:
        redact = make_redactor(owner_public_id)
        with self.db.transaction() as conn:
            # Locked: parallel shares of one conversation end with exactly one live share.
            conversation = self._conversation(conn, user_id, conversation_id, lock=True)
            branch = request.branch or conversation.active_branch
            items = conn.execute(select(conversation_items).where(
                conversation_items.c.conversation_id == conversation.id, conversation_items.c.branch == branch)
                .order_by(conversation_items.c.sequence_number)).all()
            if len(items) < MIN_ITEMS:
                raise BadRequest("conversation must have at least 2 items to share")
            shared = items
            if request.scope == "item":
                shared = self._item_share(items, request)
            title = redact(share_title(request.title, conversation.title, items))[:MAX_TITLE_LENGTH]
            snapshot = build_snapshot(conversation, shared, title=title, include_images=request.include_images,
                                      redact=redact)
            size = len(json.dumps(snapshot, ensure_ascii=False, separators=(",", ":")).encode())
            if size > MAX_SNAPSHOT_BYTES:
                raise BadRequest(f"snapshot size ({size} bytes) exceeds maximum allowed size "
                                 f"({MAX_SNAPSHOT_BYTES} bytes)")
            revoke_for_conversations(conn, [conversation.id])  # re-sharing replaces earlier links
            row = conn.execute(insert(conversation_shares).values(
                public_id=ids.share_id(), slug=ids.share_slug(), conversation_id=conversation.id,
                owner_user_id=user_id, scope=request.scope,
                item_public_id=request.item_id if request.scope == "item" else None, title=title,
                snapshot=snapshot, share_options={"include_images": request.include_images,
                                                  "include_context_messages": request.include_context_messages})
                .returning(*_SHARE_COLUMNS)).first()
        return share_body(row, base_url, conversation.public_id)

    @staticmethod
    def _item_share(items, request: ShareRequest) -> list:
        """A single assistant message, with the user message before it when `include_context_messages`."""
        index = next((n for n, item in enumerate(items) if item.public_id == request.item_id), None)
        if index is None:
            raise NotFound("item not found in conversation", param="item_id")
        target = items[index]
        if target.type != "message" or target.role != "assistant":
            raise BadRequest("only assistant messages can be shared individually", param="item_id")
        if (target.status or "completed") != "completed":
            raise BadRequest("only completed messages can be shared", param="item_id")
        shared = [target]
        if request.include_context_messages:
            for item in reversed(items[:index]):
                if item.type == "message" and item.role == "user":
                    shared.insert(0, item)
                    break
        return shared

    def _list(self, conn, condition, page: Page, include_revoked: bool, base_url: str) -> dict:
        joined = conversation_shares.join(conversations, conversations.c.id == conversation_shares.c.conversation_id)
        condition = condition & conversations.c.deleted_at.is_(None)
        if not include_revoked:
            condition = condition & conversation_shares.c.revoked_at.is_(None)
        query = select(*_SHARE_COLUMNS, conversations.c.public_id.label("conversation_public_id")) \
            .select_from(joined).where(condition)
        if page.after:
            anchor = conn.execute(select(conversation_shares.c.id).select_from(joined).where(
                condition, conversation_shares.c.public_id == page.after)).scalar()
            if anchor is None:
                raise BadRequest("after does not name one of these shares", param="after")
            query = query.where(conversation_shares.c.id > anchor if page.order == "asc"
                                else conversation_shares.c.id < anchor)
        ordering = conversation_shares.c.id.asc() if page.order == "asc" else conversation_shares.c.id.desc()
        rows = conn.execute(query.order_by(ordering).limit(page.limit + 1)).all()
        has_more = len(rows) > page.limit
        return list_body([share_body(row, base_url) for row in rows[:page.limit]], has_more=has_more)

    def list_for_conversation(self, user_id: int, conversation_id: str, page: Page, include_revoked: bool,
                              base_url: str) -> dict:
        with self.db.read() as conn:
            conversation = self._conversation(conn, user_id, conversation_id)
            return self._list(conn, (conversation_shares.c.conversation_id == conversation.id)
                              & (conversation_shares.c.owner_user_id == user_id), page, include_revoked, base_url)

    def list_for_user(self, user_id: int, page: Page, include_revoked: bool, base_url: str) -> dict:
        with self.db.read() as conn:
            return self._list(conn, conversation_shares.c.owner_user_id == user_id, page, include_revoked, base_url)

    def revoke(self, user_id: int, share_id: str, conversation_id: str | None = None) -> dict:
        """Revoke one of the caller's shares (of that conversation, when named). 400 if already revoked."""
        with self.db.transaction() as conn:
            condition = ((conversation_shares.c.public_id == share_id)
                         & (conversation_shares.c.owner_user_id == user_id)
                         & (conversations.c.id == conversation_shares.c.conversation_id)
                         & (conversations.c.user_id == user_id) & conversations.c.deleted_at.is_(None))
            if conversation_id is not None:
                condition = condition & (conversations.c.public_id == conversation_id)
            row = conn.execute(select(conversation_shares.c.id, conversation_shares.c.revoked_at)
                               .where(condition).with_for_update(of=conversation_shares)).first()
            if row is None:
                raise NotFound("share not found")
            if row.revoked_at is not None:
                raise BadRequest("share is already revoked")
            conn.execute(update(conversation_shares).where(conversation_shares.c.id == row.id)
                         .values(revoked_at=func.now(), updated_at=func.now()))
        return {"id": share_id, "object": "share.deleted", "deleted": True}

    # Public read ---------------------------------------------------------------------------------------------

    def limit_public_reads(self, client: str) -> None:
        """429 once this client address has used up the public-read limits (shared by every pod)."""
        self.limiter.enforce(PUBLIC_SCOPE, client, self.public_limits)

    def public(self, slug: str, *, count_view: bool) -> dict:
        """The public view of a live share; 410 for an unknown, revoked or deleted one. A GET counts a view in
        the same statement that reads the share; HEAD does not."""
        if not SLUG.fullmatch(slug):
            raise BadRequest("invalid share link", param="slug")
        live = ((conversation_shares.c.slug == slug) & conversation_shares.c.revoked_at.is_(None)
                & (conversations.c.id == conversation_shares.c.conversation_id) & conversations.c.deleted_at.is_(None)
                & (users.c.id == conversations.c.user_id) & users.c.deleted_at.is_(None))
        columns = (conversation_shares.c.slug, conversation_shares.c.title, conversation_shares.c.created_at,
                   conversation_shares.c.snapshot)
        if count_view:
            statement = update(conversation_shares).where(live).values(
                view_count=conversation_shares.c.view_count + 1, last_viewed_at=func.now()).returning(*columns)
            with self.db.transaction() as conn:
                row = conn.execute(statement).first()
        else:
            with self.db.read() as conn:
                row = conn.execute(select(*columns).where(live)).first()
        if row is None:
            raise Gone("This share has been revoked", code="share_revoked")
        body = {"object": "public_share", "slug": row.slug}
        if row.title is not None:
            body["title"] = row.title
        body.update(created_at=_unix(row.created_at), snapshot=row.snapshot)
        return body

