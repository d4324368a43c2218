"""Conversations: create, read, list (Jan's fields and `total`, project filter), update and soft delete (which
revokes the conversation's shares)."""
from __future__ import annotations

from sqlalchemy import func, insert, select, update

from shared import ids
from shared.db import Database
from shared.errors import BadRequest
from shared.pagination import Page, list_body
from shared.domain.conversations.tables import conversation_items, conversation_shares, conversations
from shared.domain.conversations.access import conversation_select, owned, owned_project_id
from shared.domain.conversations.items import append_items
from shared.domain.conversations.shapes import conversation_body
from shared.domain.conversations.validation import NewItem, clean_title, validate_metadata

_UNSET = object()


def revoke_for_conversations(conn, conversation_ids: list[int]) -> int:
    """Revoke the live shares of these conversations (internal ids) inside the caller's transaction; the
    number revoked. Called when conversations are deleted, one or all."""
    if not conversation_ids:
        return 0
    result = conn.execute(update(conversation_shares).where(
        conversation_shares.c.conversation_id.in_(list(conversation_ids)), conversation_shares.c.revoked_at.is_(None))
        .values(revoked_at=func.now(), updated_at=func.now()))
    return result.rowcount


class ConversationStore:
    def __init__(self, db: Database):
        self.db = db

    def create(self, user_id: int, *, title: str | None = None, metadata: dict | None = None,
               referrer: str | None = None, items: list[NewItem] = (), project_id: str | None = None) -> dict:
        metadata = {**validate_metadata(metadata), "title_locked": "false"}
        with self.db.transaction() as conn:
            internal_project_id = owned_project_id(conn, user_id, project_id) if project_id else None
            row = conn.execute(insert(conversations).values(
                public_id=ids.public_id("conv"), user_id=user_id, title=clean_title(title),
                metadata=metadata, referrer=referrer or None, project_id=internal_project_id)
                .returning(conversations)).first()
            if items:
                append_items(conn, row.id, row.active_branch, items)
        body = conversation_body(row)
        body["project_id"] = project_id or None
        return body

    def get(self, user_id: int, public_id: str) -> dict:
        with self.db.read() as conn:
            return conversation_body(owned(conn, user_id, public_id))

    def list(self, user_id: int, page: Page, *, referrer: str | None = None,
             project_id: str | None = None) -> dict:
        """The caller's live conversations by creation (id) order, newest first by default; `total` counts every
        conversation matching the filters, not only this page. Two queries whatever the page size (three with a
        cursor, four with a project filter)."""
        with self.db.read() as conn:
            where = [conversations.c.user_id == user_id, conversations.c.deleted_at.is_(None)]
            if referrer:
                where.append(conversations.c.referrer == referrer)
            if project_id:
                where.append(conversations.c.project_id == owned_project_id(conn, user_id, project_id))
            query = conversation_select().where(*where)
            if page.after:
                cursor = conn.execute(select(conversations.c.id).where(
                    conversations.c.public_id == page.after, conversations.c.user_id == user_id,
                    conversations.c.deleted_at.is_(None))).scalar()
                if cursor is None:
                    raise BadRequest("after does not name one of your conversations", param="after")
                query = query.where(conversations.c.id < cursor if page.order == "desc"
                                    else conversations.c.id > cursor)
            ordering = conversations.c.id.desc() if page.order == "desc" else conversations.c.id.asc()
            rows = conn.execute(query.order_by(ordering).limit(page.limit + 1)).all()
            total = conn.execute(select(func.count()).select_from(conversations).where(*where)).scalar_one()
        return list_body([conversation_body(row) for row in rows[:page.limit]], has_more=len(rows) > page.limit,
                         total=total)

    def update(self, user_id: int, public_id: str, *, title=_UNSET, metadata=_UNSET, referrer=_UNSET,
               project_id=_UNSET) -> dict:
        """Jan's update: `metadata` replaces the stored map (the title lock survives unless the new map sets
        it); a title set once the active branch holds more than one item locks it against auto-titles;
        `project_id` "" unlinks, and any project change drops the conversation's instruction snapshot."""
        with self.db.transaction() as conn:
            row = owned(conn, user_id, public_id, lock=True)
            values: dict = {}
            stored = dict(row.metadata or {})
            new_metadata = dict(stored)
            if metadata is not _UNSET and metadata is not None:
                new_metadata = dict(validate_metadata(metadata))
                if "title_locked" not in new_metadata and "title_locked" in stored:
                    new_metadata["title_locked"] = stored["title_locked"]
            if title is not _UNSET and title is not None:
                values["title"] = clean_title(title)
                if values["title"] is not None and self._active_item_count(conn, row) > 1:
                    new_metadata["title_locked"] = "true"
            if new_metadata != stored:
                values["metadata"] = new_metadata
            if referrer is not _UNSET and referrer is not None:
                values["referrer"] = referrer or None
            project_public_id = row.project_public_id
            if project_id is not _UNSET and project_id is not None:
                values["project_id"] = owned_project_id(conn, user_id, project_id) if project_id else None
                values["instruction_snapshot"] = None
                project_public_id = project_id or None
            if values:
                row = conn.execute(update(conversations).where(conversations.c.id == row.id)
                                   .values(**values, updated_at=func.now()).returning(conversations)).first()
        body = conversation_body(row)
        body["project_id"] = project_public_id
        return body

    @staticmethod
    def _active_item_count(conn, row) -> int:
        return conn.execute(select(func.count()).select_from(conversation_items).where(
            conversation_items.c.conversation_id == row.id,
            conversation_items.c.branch == row.active_branch)).scalar_one()

    def delete(self, user_id: int, public_id: str) -> dict:
        """Soft delete; its shares are revoked in the same transaction. Afterwards the id answers 404."""
        with self.db.transaction() as conn:
            row = owned(conn, user_id, public_id, lock=True)
            conn.execute(update(conversations).where(conversations.c.id == row.id)
                         .values(deleted_at=func.now(), updated_at=func.now()))
            revoke_for_conversations(conn, [row.id])
        return {"id": row.public_id, "object": "conversation.deleted", "deleted": True}

    def delete_all(self, user_id: int) -> dict:
        """Soft delete every live conversation of the caller (idempotent) and revoke their shares."""
        with self.db.transaction() as conn:
            deleted = conn.execute(update(conversations).where(
                conversations.c.user_id == user_id, conversations.c.deleted_at.is_(None))
                .values(deleted_at=func.now(), updated_at=func.now()).returning(conversations.c.id)).scalars().all()
            if deleted:
                revoke_for_conversations(conn, list(deleted))
        return {"object": "conversations.deleted", "deleted": True, "deleted_count": len(deleted)}

    def for_chat(self, user_id: int, public_id: str):
        """The conversation a chat request names (404 if not the caller's)."""
        with self.db.read() as conn:
            return owned(conn, user_id, public_id)
