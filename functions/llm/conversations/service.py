"""The conversation surface as one service object (`services().conversations`): conversations, their items and
branches, each in its own module. The names other modules import from here stay importable from here."""
from __future__ import annotations

from shared.db import Database
from shared.pagination import Page
from functions.llm.conversations.access import owned, owned_project_id  # noqa: F401  (re-exported)
from functions.llm.conversations.branches import BranchStore
from functions.llm.conversations.conversations import ConversationStore
from functions.llm.conversations.items import ItemStore
from functions.llm.conversations.shapes import conversation_body, item_body, rfc3339  # noqa: F401
from functions.llm.conversations.validation import (  # noqa: F401
    MAIN,
    MAX_ITEMS_PER_REQUEST,
    MAX_METADATA_KEYS,
    MAX_TITLE_LENGTH,
    NewItem,
    parse_input_item,
    parse_input_items,
    validate_metadata,
)


class ConversationService(ConversationStore):
    """Conversation CRUD (inherited), plus `items` and `branches`; the chat flow's entry points delegate."""

    def __init__(self, db: Database):
        super().__init__(db)
        self.items = ItemStore(db)
        self.branches = BranchStore(db)

    def owned(self, conn, user_id: int, public_id: str, *, lock: bool = False):
        return owned(conn, user_id, public_id, lock=lock)

    def list_items(self, user_id: int, public_id: str, page: Page, branch: str | None = None) -> dict:
        return self.items.list(user_id, public_id, page, branch)

    def add_items(self, user_id: int, public_id: str, items: list[NewItem]) -> list[dict]:
        return self.items.add(user_id, public_id, items)["data"]

    def history(self, conversation_id: int, branch: str, incoming: list[dict] | None = None) -> list[dict]:
        return self.items.history(conversation_id, branch, incoming)

    def last_user_text(self, conn, conversation_id: int, branch: str) -> str | None:
        return self.items.last_user_text(conn, conversation_id, branch)

    def append_to_conversation(self, conversation_id: int, items: list[NewItem], *,
                               skip_duplicate_user_text: str | None = None) -> list:
        return self.items.append_to_conversation(conversation_id, items,
                                                 skip_duplicate_user_text=skip_duplicate_user_text)
