"""Response shapes: conversations (unix seconds), items (RFC 3339, as Jan) and branches (unix seconds)."""
from __future__ import annotations

from shared.times import rfc3339, unix


def conversation_body(row) -> dict:
    """`row` is a conversations row; its project's public id comes as `project_public_id` when selected."""
    return {"id": row.public_id, "object": "conversation", "title": row.title, "created_at": unix(row.created_at),
            "updated_at": unix(row.updated_at), "metadata": row.metadata or {}, "referrer": row.referrer,
            "project_id": getattr(row, "project_public_id", None)}


def item_body(row) -> dict:
    body = {"id": row.public_id, "object": "conversation.item", "type": row.type, "branch": row.branch,
            "sequence_number": row.sequence_number, "created_at": rfc3339(row.created_at)}
    if row.type == "message":
        body.update(role=row.role, content=row.content or [], status=row.status or "completed")
    else:
        body["status"] = row.status or "completed"
    for name in ("call_id", "name", "server_label", "arguments", "output", "error", "model", "usage",
                 "finish_reason", "rating", "incomplete_details"):
        value = getattr(row, name)
        if value is not None:
            body[name] = value
    if row.completed_at is not None:
        body["completed_at"] = rfc3339(row.completed_at)
    return body


def branch_body(name: str, row, *, item_count: int, active_branch: str, conversation=None) -> dict:
    """A branch as Jan shows it. MAIN may have no row (it exists implicitly): then its times are the
    conversation's."""
    source = row if row is not None else conversation
    return {
        "name": name,
        "description": getattr(row, "description", None),
        "parent_branch": getattr(row, "parent_branch", None),
        "forked_at": unix(getattr(row, "forked_at", None)),
        "forked_from_item_id": getattr(row, "forked_from_item_id", None),
        "item_count": item_count,
        "created_at": unix(source.created_at) if source is not None else None,
        "updated_at": unix(source.updated_at) if source is not None else None,
        "is_active": name == active_branch,
    }

