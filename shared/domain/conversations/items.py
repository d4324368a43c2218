"""Conversation items: list, add, get; Jan's delete / edit / regenerate (fork + swap to MAIN, never a model
call); MCP result write-back by call id; and the chat side (history prepend, persistence of an exchange)."""
from __future__ import annotations

import datetime as dt

from sqlalchemy import case, func, insert, select, update

from shared import ids
from shared.db import Database
from shared.errors import BadRequest, NotFound
from shared.pagination import Page, list_body
from shared.domain.conversations.tables import conversation_items, conversations
from shared.domain.conversations.access import owned
from shared.domain.conversations.branches import describe, fork, swap_to_main, unique_branch_name
from shared.domain.conversations.content import item_to_messages, merge_tool_call_messages, text_of_content
from shared.domain.conversations.shapes import item_body
from shared.domain.conversations.validation import MAIN, TERMINAL_STATUSES, NewItem


def append_items(conn, conversation_id: int, branch: str, items) -> list:
    """Append items at the end of a branch (the caller holds the conversation lock, so sequence numbers are
    never handed out twice). Returns the stored rows, oldest first."""
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
    conn.execute(update(conversations).where(conversations.c.id == conversation_id).values(updated_at=func.now()))
    return sorted(rows, key=lambda row: row.sequence_number)


def item_row(conn, conversation_id: int, item_id: str):
    row = conn.execute(select(conversation_items).where(
        conversation_items.c.conversation_id == conversation_id,
        conversation_items.c.public_id == item_id)).first()
    if row is None:
        raise NotFound("item not found")
    return row


def _swap_result(conn, conversation, backup: str) -> dict:
    return {"branch": MAIN, "old_main_backup": backup, "branch_created": True,
            "new_branch": describe(conn, conversation, MAIN, active_branch=MAIN)}


class ItemStore:
    def __init__(self, db: Database):
        self.db = db

    # Reading ---------------------------------------------------------------------------------------------

    def list(self, user_id: int, conversation_id: str, page: Page, branch: str | None = None) -> dict:
        """A branch's items (default: the active one) by sequence, newest first by default. Two queries
        whatever the page size (three with a cursor)."""
        with self.db.read() as conn:
            conversation = owned(conn, user_id, conversation_id)
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
        return list_body([item_body(row) for row in rows[:page.limit]], has_more=len(rows) > page.limit)

    def get(self, user_id: int, conversation_id: str, item_id: str) -> dict:
        """One item, on whichever branch it is."""
        with self.db.read() as conn:
            conversation = owned(conn, user_id, conversation_id)
            return item_body(item_row(conn, conversation.id, item_id))

    # Writing ---------------------------------------------------------------------------------------------

    def add(self, user_id: int, conversation_id: str, items: list[NewItem]) -> dict:
        """Append up to 20 items to the active branch."""
        with self.db.transaction() as conn:
            conversation = owned(conn, user_id, conversation_id, lock=True)
            rows = append_items(conn, conversation.id, conversation.active_branch, items)
        return list_body([item_body(row) for row in rows], has_more=False)

    def delete(self, user_id: int, conversation_id: str, item_id: str) -> dict:
        """Jan's delete: MAIN becomes the item's branch up to (not including) the item; the previous MAIN is kept
        as the `old_main_backup` branch."""
        with self.db.transaction() as conn:
            conversation = owned(conn, user_id, conversation_id, lock=True)
            item = item_row(conn, conversation.id, item_id)
            name = unique_branch_name(conn, conversation.id, "DELETE")
            fork(conn, conversation.id, item.branch, name, through_sequence=item.sequence_number - 1,
                 description="Deleted message branch")
            backup = swap_to_main(conn, conversation.id, name)
        return {"branch": MAIN, "old_main_backup": backup, "branch_created": True, "deleted": True}

    def edit(self, user_id: int, conversation_id: str, item_id: str, content: list[dict]) -> dict:
        """Jan's edit of a user message: a new branch with the items before it on the item's own branch (the
        active one, or e.g. the backup an earlier edit left it on) plus the edited message becomes MAIN (the
        previous MAIN is kept as a backup). The model is not called; the client's next chat request answers."""
        with self.db.transaction() as conn:
            conversation = owned(conn, user_id, conversation_id, lock=True)
            item = item_row(conn, conversation.id, item_id)
            if item.type != "message" or item.role != "user":
                raise BadRequest("only user messages can be edited", param="item_id")
            name = unique_branch_name(conn, conversation.id, "EDIT")
            fork(conn, conversation.id, item.branch, name, through_sequence=item.sequence_number - 1,
                 description="Edited message branch")
            (edited,) = append_items(conn, conversation.id, name,
                                     [NewItem(type="message", role="user", content=content)])
            backup = swap_to_main(conn, conversation.id, name)
            result = _swap_result(conn, conversation, backup)
        return {**result, "user_item": {**item_body(edited), "branch": MAIN}}

    def regenerate(self, user_id: int, conversation_id: str, item_id: str) -> dict:
        """Jan's regenerate: MAIN becomes the item's branch up to and including the user message that the item
        answers (or the user message itself); the previous MAIN is kept as a backup. The client's next chat
        request with that message produces the new answer (the message is not stored twice)."""
        with self.db.transaction() as conn:
            conversation = owned(conn, user_id, conversation_id, lock=True)
            item = item_row(conn, conversation.id, item_id)
            if item.type != "message" or item.role not in ("user", "assistant"):
                raise BadRequest("only user or assistant messages can be regenerated", param="item_id")
            through = item.sequence_number
            if item.role == "assistant":
                through = conn.execute(select(conversation_items.c.sequence_number).where(
                    conversation_items.c.conversation_id == conversation.id,
                    conversation_items.c.branch == item.branch, conversation_items.c.type == "message",
                    conversation_items.c.role == "user",
                    conversation_items.c.sequence_number < item.sequence_number)
                    .order_by(conversation_items.c.sequence_number.desc()).limit(1)).scalar()
                if through is None:
                    raise NotFound("user message not found for regeneration")
            name = unique_branch_name(conn, conversation.id, "REGEN")
            copies = fork(conn, conversation.id, item.branch, name, through_sequence=through,
                          description="Regenerated response branch")
            backup = swap_to_main(conn, conversation.id, name)
            result = _swap_result(conn, conversation, backup)
        return {**result, "user_item_id": copies[-1].public_id}

    def write_back(self, user_id: int, conversation_id: str, call_id: str, fields: dict) -> dict:
        """An MCP tool result written onto the `function_call` item with this call id (the copy on the active
        branch when forks copied it)."""
        with self.db.transaction() as conn:
            conversation = owned(conn, user_id, conversation_id, lock=True)
            target = conn.execute(select(conversation_items.c.id).where(
                conversation_items.c.conversation_id == conversation.id,
                conversation_items.c.call_id == call_id, conversation_items.c.type == "function_call")
                .order_by(case((conversation_items.c.branch == conversation.active_branch, 0), else_=1),
                          conversation_items.c.id.desc()).limit(1)).scalar()
            if target is None:
                raise NotFound("item not found")
            values = dict(fields)
            values["completed_at"] = func.now() if fields["status"] in TERMINAL_STATUSES else None
            row = conn.execute(update(conversation_items).where(conversation_items.c.id == target)
                               .values(**values).returning(conversation_items)).first()
            conn.execute(update(conversations).where(conversations.c.id == conversation.id)
                         .values(updated_at=func.now()))
        return item_body(row)

    # Chat ------------------------------------------------------------------------------------------------

    def history(self, conversation_id: int, branch: str, incoming: list[dict] | None = None) -> list[dict]:
        """Chat messages from the branch's completed items, oldest first (Jan's history prepend). When the branch
        ends with the user message the request repeats (the turn after an edit or regenerate), that stored
        message is left out so the model sees it once."""
        with self.db.read() as conn:
            rows = conn.execute(select(conversation_items).where(
                conversation_items.c.conversation_id == conversation_id, conversation_items.c.branch == branch,
                (conversation_items.c.status == "completed") | conversation_items.c.status.is_(None))
                .order_by(conversation_items.c.sequence_number)).all()
        messages: list[dict] = []
        for row in rows:
            messages.extend(item_to_messages(row))
        messages = merge_tool_call_messages(messages)
        if (incoming and messages and messages[-1]["role"] == "user" and incoming[-1].get("role") == "user"
                and text_of_content(messages[-1]["content"]) == text_of_content(incoming[-1].get("content"))):
            messages.pop()
        return messages

    @staticmethod
    def last_user_text(conn, conversation_id: int, branch: str) -> str | None:
        row = conn.execute(select(conversation_items.c.content).where(
            conversation_items.c.conversation_id == conversation_id, conversation_items.c.branch == branch,
            conversation_items.c.type == "message", conversation_items.c.role == "user")
            .order_by(conversation_items.c.sequence_number.desc()).limit(1)).scalar()
        if not row:
            return None
        return "".join(part.get("text", "") for part in row if isinstance(part, dict))

    def append_to_conversation(self, conversation_id: int, items: list[NewItem], *,
                               skip_duplicate_user_text: str | None = None) -> list:
        """Persist chat results on the active branch, under the conversation lock. A user message identical to the
        last stored user message of that branch is not stored again (the turn after an edit or regenerate)."""
        with self.db.transaction() as conn:
            conversation = conn.execute(select(conversations.c.id, conversations.c.active_branch).where(
                conversations.c.id == conversation_id, conversations.c.deleted_at.is_(None))
                .with_for_update()).first()
            if conversation is None:
                return []
            if skip_duplicate_user_text is not None and items and items[0].role == "user":
                if self.last_user_text(conn, conversation.id, conversation.active_branch) == skip_duplicate_user_text:
                    items = items[1:]
            return append_items(conn, conversation.id, conversation.active_branch, items)
