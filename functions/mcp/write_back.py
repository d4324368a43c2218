"""Jan's result write-back: a `tools/call` carrying `X-Conversation-ID` and `X-Tool-Call-ID` also stores the
tool's result on that conversation's item with that call id, through the shared conversation store (the same
write the llm function's `PATCH …/items/by-call-id/{call_id}` makes; no HTTP hop). Only the caller's own
conversation is written; anything else (another user's conversation, no such item) writes nothing, and the
caller still gets the tool's result."""
from __future__ import annotations

import logging

from shared.auth.principal import Principal
from shared.db import Database
from shared.domain.conversations import MAX_CALL_ID_LENGTH, MAX_TEXT_LENGTH
from shared.domain.conversations.service import ConversationService
from shared.errors import NotFound

log = logging.getLogger("jan.mcp.write_back")

CONVERSATION_HEADER = "x-conversation-id"
CALL_ID_HEADER = "x-tool-call-id"


class ResultWriter:
    def __init__(self, db: Database):
        self.items = ConversationService(db).items

    def write(self, principal: Principal, conversation_id: str, call_id: str, text: str, *, failed: bool) -> bool:
        """Store `text` as the item's output (or error, when the tool failed); True when an item was written."""
        if not conversation_id or len(conversation_id) > 255 or not call_id or len(call_id) > MAX_CALL_ID_LENGTH:
            return False
        if len(text) > MAX_TEXT_LENGTH:
            fields = {"status": "failed", "error": f"tool result too large to store ({len(text)} characters)"}
        elif failed:
            fields = {"status": "failed", "error": text}
        else:
            fields = {"status": "completed", "output": text}
        try:
            self.items.write_back(principal.user_id, conversation_id, call_id, fields)
        except NotFound:
            log.info("write-back skipped: no item %s in the caller's conversation %s", call_id, conversation_id)
            return False
        return True
