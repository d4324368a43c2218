"""The conversation surface as one service object (`services().conversations`): conversations, their items and
branches, each in its own module."""
from __future__ import annotations

from shared.db import Database
from shared.domain.conversations.branches import BranchStore
from shared.domain.conversations.conversations import ConversationStore
from shared.domain.conversations.items import ItemStore
from shared.domain.conversations.validation import NewItem


class ConversationService(ConversationStore):
    """Conversation CRUD (inherited), plus `items` and `branches`; the chat flow's entry points delegate."""

    def __init__(self, db: Database):
        super().__init__(db)
        self.items = ItemStore(db)
        self.branches = BranchStore(db)

    def history(self, conversation_id: int, branch: str, incoming: list[dict] | None = None) -> list[dict]:
        return self.items.history(conversation_id, branch, incoming)

    def append_to_conversation(self, conversation_id: int, items: list[NewItem], *,
                               skip_duplicate_user_text: str | None = None) -> list:
        return self.items.append_to_conversation(conversation_id, items,
                                                 skip_duplicate_user_text=skip_duplicate_user_text)
