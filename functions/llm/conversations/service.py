"""Conversation store: create and read conversations, list items, append items, history for chat."""
from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass

from sqlalchemy import func, insert, select

from shared import ids
from shared.db import Database
from shared.errors import BadRequest, NotFound
from shared.pagination import Page, list_body
from shared.schema import conversation_items, conversations
from functions.llm.conversations.content import item_to_messages, merge_tool_call_messages, normalise_content

MAX_ITEMS_PER_REQUEST = 20
MAX_METADATA_KEYS = 16
MAX_METADATA_KEY_BYTES = 64
MAX_METADATA_VALUE_BYTES = 512
MAX_TITLE_LENGTH = 256
MAX_CALL_ID_LENGTH = 128
MAX_NAME_LENGTH = 255
MAIN = "MAIN"

ITEM_STATUSES = {"completed", "incomplete", "in_progress", "failed", "cancelled"}


def _unix(value: dt.datetime | None) -> int | None:
    return int(value.timestamp()) if value else None


def rfc3339(value: dt.datetime | None) -> str | None:
    return value.astimezone(dt.timezone.utc).isoformat().replace("+00:00", "Z") if value else None


def conversation_body(row) -> dict:
    return {"id": row.public_id, "object": "conversation", "title": row.title, "created_at": _unix(row.created_at),
            "updated_at": _unix(row.updated_at), "metadata": row.metadata or {}, "referrer": row.referrer,
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


def validate_metadata(metadata) -> dict:
    if metadata is None:
        return {}
    if not isinstance(metadata, dict):
        raise BadRequest("metadata must be an object of string values", param="metadata")
    if len(metadata) > MAX_METADATA_KEYS:
        raise BadRequest(f"metadata may hold at most {MAX_METADATA_KEYS} keys", param="metadata")
    for key, value in metadata.items():
        if len(key.encode()) > MAX_METADATA_KEY_BYTES:
            raise BadRequest(f"metadata keys must be at most {MAX_METADATA_KEY_BYTES} bytes", param="metadata")
        if not isinstance(value, str) or len(value.encode()) > MAX_METADATA_VALUE_BYTES:
            raise BadRequest(f"metadata values must be strings of at most {MAX_METADATA_VALUE_BYTES} bytes",
                             param="metadata")
    return metadata


@dataclass(frozen=True)
class NewItem:
    """An item to append, already validated."""

    type: str
    role: str | None = None
    content: list | None = None
    status: str = "completed"
    call_id: str | None = None
    name: str | None = None
    arguments: str | None = None
    output: str | None = None
    model: str | None = None
    usage: dict | None = None
    finish_reason: str | None = None
    error: str | None = None
    incomplete_details: dict | None = None


def _item_status(raw: dict) -> str:
    status = raw.get("status") or "completed"
    if not isinstance(status, str) or status not in ITEM_STATUSES:
        raise BadRequest("item status is not valid", param="items")
    return status


def parse_input_item(raw) -> NewItem:
    """An item from a request body, in OpenAI's form (message, function_call, function_call_output) or Jan's."""
    if not isinstance(raw, dict):
        raise BadRequest("each item must be an object", param="items")
    kind = raw.get("type") or "message"
    if kind == "message":
        role = raw.get("role")
        if role not in ("user", "assistant", "system", "developer"):
            raise BadRequest("item role must be user, assistant, system or developer", param="items")
        status = _item_status(raw)
        return NewItem(type="message", role=role, content=normalise_content(raw.get("content"), role), status=status)
    if kind in ("function_call", "function_call_output"):
        call_id = raw.get("call_id")
        if not isinstance(call_id, str) or not call_id or len(call_id) > MAX_CALL_ID_LENGTH:
            raise BadRequest(f"{kind} items need a call_id of at most {MAX_CALL_ID_LENGTH} characters",
                             param="items")
        name = raw.get("name")
        if kind == "function_call" and not isinstance(name, str):
            raise BadRequest("function_call items need a name", param="items")
        if name is not None and (not isinstance(name, str) or len(name) > MAX_NAME_LENGTH):
            raise BadRequest(f"item name must be a string of at most {MAX_NAME_LENGTH} characters", param="items")
        arguments = raw.get("arguments")
        if arguments is not None and not isinstance(arguments, str):
            raise BadRequest("function_call arguments must be a JSON-encoded string", param="items")
        output = raw.get("output")
        if output is not None and not isinstance(output, str):
            output = json.dumps(output, ensure_ascii=False)
        return NewItem(type=kind, call_id=call_id, name=name, arguments=arguments, output=output,
                       status=_item_status(raw))
    raise BadRequest(f"item type {kind!r} is not supported", param="items")


def parse_input_items(raw_items) -> list[NewItem]:
    if raw_items is None:
        return []
    if not isinstance(raw_items, list):
        raise BadRequest("items must be a list", param="items")
    if len(raw_items) > MAX_ITEMS_PER_REQUEST:
        raise BadRequest(f"at most {MAX_ITEMS_PER_REQUEST} items may be added at once", param="items")
    return [parse_input_item(item) for item in raw_items]


class ConversationService:
    def __init__(self, db: Database):
        self.db = db

    def create(self, user_id: int, *, title: str | None = None, metadata: dict | None = None,
               referrer: str | None = None, items: list[NewItem] = ()) -> dict:
        metadata = {**validate_metadata(metadata), "title_locked": "false"}
        if title is not None and title.strip() == "New Conversation":
            title = None
        if title:
            title = title[:MAX_TITLE_LENGTH].rstrip()  # Jan truncates rather than rejects
        with self.db.transaction() as conn:
            row = conn.execute(insert(conversations).values(
                public_id=ids.public_id("conv"), user_id=user_id, title=title or None,
                metadata=metadata, referrer=referrer).returning(conversations)).first()
            if items:
                self._append(conn, row.id, row.active_branch, items)
        return conversation_body(row)

    def owned(self, conn, user_id: int, public_id: str, *, lock: bool = False):
        """The caller's live conversation, or 404 — the same answer for another user's id and a missing one."""
        query = select(conversations).where(conversations.c.public_id == public_id,
                                            conversations.c.user_id == user_id,
                                            conversations.c.deleted_at.is_(None))
        if lock:
            query = query.with_for_update()
        row = conn.execute(query).first()
        if row is None:
            raise NotFound("conversation not found")
        return row

    def get(self, user_id: int, public_id: str) -> dict:
        with self.db.read() as conn:
            return conversation_body(self.owned(conn, user_id, public_id))

    def list_items(self, user_id: int, public_id: str, page: Page, branch: str | None = None) -> dict:
        with self.db.read() as conn:
            conversation = self.owned(conn, user_id, public_id)
            branch = branch or conversation.active_branch
            query = select(conversation_items).where(conversation_items.c.conversation_id == conversation.id,
                                                     conversation_items.c.branch == branch)
            if page.after:
                cursor = conn.execute(select(conversation_items.c.sequence_number).where(
                    conversation_items.c.conversation_id == conversation.id,
                    conversation_items.c.branch == branch,
                    conversation_items.c.public_id == page.after)).scalar()
                if cursor is None:
                    raise BadRequest("after does not name an item of this conversation", param="after")
                query = query.where(conversation_items.c.sequence_number > cursor if page.order == "asc"
                                    else conversation_items.c.sequence_number < cursor)
            ordering = conversation_items.c.sequence_number
            query = query.order_by(ordering.asc() if page.order == "asc" else ordering.desc()).limit(page.limit + 1)
            rows = conn.execute(query).all()
        has_more = len(rows) > page.limit
        return list_body([item_body(row) for row in rows[:page.limit]], has_more=has_more)

    def add_items(self, user_id: int, public_id: str, items: list[NewItem]) -> list[dict]:
        with self.db.transaction() as conn:
            conversation = self.owned(conn, user_id, public_id, lock=True)
            rows = self._append(conn, conversation.id, conversation.active_branch, items)
        return [item_body(row) for row in rows]

    def history(self, conversation_id: int, branch: str) -> list[dict]:
        """Chat messages from the branch's completed items, oldest first (Jan's history prepend)."""
        with self.db.read() as conn:
            rows = conn.execute(select(conversation_items).where(
                conversation_items.c.conversation_id == conversation_id, conversation_items.c.branch == branch,
                (conversation_items.c.status == "completed") | conversation_items.c.status.is_(None))
                .order_by(conversation_items.c.sequence_number)).all()
        messages: list[dict] = []
        for row in rows:
            messages.extend(item_to_messages(row))
        return merge_tool_call_messages(messages)

    def last_user_text(self, conn, conversation_id: int, branch: str) -> str | None:
        row = conn.execute(select(conversation_items.c.content).where(
            conversation_items.c.conversation_id == conversation_id, conversation_items.c.branch == branch,
            conversation_items.c.type == "message", conversation_items.c.role == "user")
            .order_by(conversation_items.c.sequence_number.desc()).limit(1)).scalar()
        if not row:
            return None
        return "".join(part.get("text", "") for part in row if isinstance(part, dict))

    def append_to_conversation(self, conversation_id: int, items: list[NewItem], *,
                               skip_duplicate_user_text: str | None = None) -> list:
        """Persist chat results on the active branch, under a row lock so parallel requests never collide."""
        with self.db.transaction() as conn:
            conversation = conn.execute(select(conversations.c.id, conversations.c.active_branch).where(
                conversations.c.id == conversation_id, conversations.c.deleted_at.is_(None))
                .with_for_update()).first()
            if conversation is None:
                return []
            if skip_duplicate_user_text is not None and items and items[0].role == "user":
                if self.last_user_text(conn, conversation.id, conversation.active_branch) == skip_duplicate_user_text:
                    items = items[1:]
            return self._append(conn, conversation.id, conversation.active_branch, items)

    @staticmethod
    def _append(conn, conversation_id: int, branch: str, items) -> list:
        if not items:
            return []
        next_sequence = conn.execute(select(func.coalesce(func.max(conversation_items.c.sequence_number), 0)).where(
            conversation_items.c.conversation_id == conversation_id, conversation_items.c.branch == branch)).scalar_one()
        now = dt.datetime.now(dt.timezone.utc)
        values = []
        for offset, item in enumerate(items, start=1):
            values.append({
                "public_id": ids.public_id("msg"), "conversation_id": conversation_id, "branch": branch,
                "sequence_number": next_sequence + offset, "type": item.type, "role": item.role,
                "content": item.content, "status": item.status, "call_id": item.call_id, "name": item.name,
                "arguments": item.arguments, "output": item.output, "model": item.model, "usage": item.usage,
                "finish_reason": item.finish_reason, "error": item.error,
                "incomplete_details": item.incomplete_details,
                "completed_at": now if item.status == "completed" else None,
            })
        rows = conn.execute(insert(conversation_items).returning(conversation_items), values).all()
        conn.execute(conversations.update().where(conversations.c.id == conversation_id).values(updated_at=func.now()))
        return sorted(rows, key=lambda row: row.sequence_number)

    def for_chat(self, user_id: int, public_id: str):
        """The conversation a chat request names (404 if not the caller's)."""
        with self.db.read() as conn:
            return self.owned(conn, user_id, public_id)
