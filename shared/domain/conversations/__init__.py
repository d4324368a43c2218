"""Conversations and their items (Jan's conversation store, OpenAI's Conversations shapes): create, list,
update and delete conversations; append, edit, regenerate and write back items; branches; titles; validating
input items in OpenAI's and Jan's forms. The tables are in `.tables`."""
from shared.domain import lazy_exports

_EXPORTS = {
    "ConversationService": "service",
    "NewItem": "validation",
    "branch_name": "validation",
    "check_content_limits": "validation",
    "clean_title": "validation",
    "parse_input_item": "validation",
    "parse_input_items": "validation",
    "validate_metadata": "validation",
    "MAIN": "validation",
    "MAX_CALL_ID_LENGTH": "validation",
    "MAX_ITEMS_PER_REQUEST": "validation",
    "MAX_NAME_LENGTH": "validation",
    "MAX_REFERRER_LENGTH": "validation",
    "MAX_TEXT_LENGTH": "validation",
    "MAX_TITLE_LENGTH": "validation",
    "WRITE_BACK_STATUSES": "validation",
    "chat_content_from_message": "content",
    "normalise_content": "content",
    "text_of_content": "content",
    "conversation_body": "shapes",
    "item_body": "shapes",
    "revoke_for_conversations": "conversations",
    "TitleService": "titles",
}
__all__ = sorted(_EXPORTS)
__getattr__ = lazy_exports(__name__, _EXPORTS)
