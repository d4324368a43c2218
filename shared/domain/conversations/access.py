"""Who may touch a conversation: the caller's own live conversations and projects, found (and locked) here."""
from __future__ import annotations

from sqlalchemy import select

from shared.errors import NotFound
from shared.domain.conversations.tables import conversations, projects


def conversation_select():
    """The conversations columns plus the linked project's public id (null once the project is deleted)."""
    project_public_id = (select(projects.c.public_id)
                         .where(projects.c.id == conversations.c.project_id, projects.c.deleted_at.is_(None))
                         .scalar_subquery().label("project_public_id"))
    return select(conversations, project_public_id)


def owned(conn, user_id: int, public_id: str, *, lock: bool = False):
    """The caller's live conversation, or 404 — the same answer for another user's id and a missing one.
    With `lock`, the row is locked until the transaction ends: every change to a conversation's branches and
    items takes this lock first, so they apply one after another."""
    query = conversation_select().where(conversations.c.public_id == public_id,
                                        conversations.c.user_id == user_id,
                                        conversations.c.deleted_at.is_(None))
    if lock:
        query = query.with_for_update(of=conversations)
    row = conn.execute(query).first()
    if row is None:
        raise NotFound("conversation not found")
    return row


def owned_project_id(conn, user_id: int, project_public_id: str) -> int:
    """The internal id of one of the caller's live projects; 404 otherwise (another user's looks missing)."""
    project_id = conn.execute(select(projects.c.id).where(
        projects.c.public_id == project_public_id, projects.c.user_id == user_id,
        projects.c.deleted_at.is_(None))).scalar()
    if project_id is None:
        raise NotFound("project not found", param="project_id")
    return project_id
