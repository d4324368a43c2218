"""Item routes: `/v1/conversations/{id}/items…` (nested in the conversations blueprint)."""
from __future__ import annotations

import json

from flask import Blueprint, request

from shared.auth import authenticated, current_principal
from shared.errors import BadRequest, NotFound
from shared.pagination import Page
from shared.protocol.flask import body, paginated, returns
from shared.domain.conversations import (
    MAX_CALL_ID_LENGTH,
    MAX_TEXT_LENGTH,
    branch_name,
    check_content_limits,
    normalise_content,
    parse_input_items,
)
from functions.llm.conversations.protocol import (
    AddItemsRequest,
    ConversationItem,
    EditItemRequest,
    ItemList,
    RegenerateItemRequest,
    WriteBackRequest,
)
from functions.llm.services import services

bp = Blueprint("items", __name__, url_prefix="/<conversation_id>/items")


def _items():
    return services().conversations.items


@bp.get("")
@authenticated
@paginated()
@returns(ItemList)
def list_items(conversation_id: str, page: Page):
    """Items of a branch (default: the active one): `limit` (1–100), `after`, `order` (desc), `branch`."""
    branch = request.args.get("branch")
    return _items().list(current_principal().user_id, conversation_id, page,
                         branch_name(branch) if branch is not None else None)


@bp.post("")
@authenticated
@body(AddItemsRequest)
@returns(ItemList)
def add_items(conversation_id: str, body: AddItemsRequest):
    """Append up to 20 items to the active branch."""
    items = parse_input_items(body.items, required=True)
    return _items().add(current_principal().user_id, conversation_id, items)


@bp.get("/<item_id>")
@authenticated
@returns(ConversationItem)
def get_item(conversation_id: str, item_id: str):
    """One item of the conversation."""
    return _items().get(current_principal().user_id, conversation_id, item_id)


@bp.delete("/<item_id>")
@authenticated
def delete_item(conversation_id: str, item_id: str):
    """Delete an item the way Jan does: MAIN is forked before it; the previous MAIN is kept as a backup."""
    return _items().delete(current_principal().user_id, conversation_id, item_id)


@bp.post("/<item_id>/edit")
@authenticated
@body(EditItemRequest)
def edit_item(conversation_id: str, item_id: str, body: EditItemRequest):
    """Edit a user message: fork before it, add the new text, swap to MAIN. The next chat request answers."""
    content = body.content
    if content is None or (isinstance(content, str) and not content.strip()):
        raise BadRequest("content is required", param="content")
    parts = check_content_limits(normalise_content(content, "user"))
    if not parts:
        raise BadRequest("content is required", param="content")
    return _items().edit(current_principal().user_id, conversation_id, item_id, parts)


@bp.post("/<item_id>/regenerate")
@authenticated
@body(RegenerateItemRequest, optional=True)
def regenerate_item(conversation_id: str, item_id: str, body: RegenerateItemRequest):
    """Prepare a new answer: MAIN becomes the history up to the user message; the next chat request answers."""
    return _items().regenerate(current_principal().user_id, conversation_id, item_id)


def _text(name: str, value) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        value = json.dumps(value, ensure_ascii=False)
    if len(value) > MAX_TEXT_LENGTH:
        raise BadRequest(f"{name} must be at most {MAX_TEXT_LENGTH} characters", param=name)
    return value


@bp.patch("/by-call-id/<call_id>")
@authenticated
@body(WriteBackRequest)
@returns(ConversationItem)
def write_back_by_call_id(conversation_id: str, call_id: str, body: WriteBackRequest):
    """MCP result write-back onto the function_call item with this call id: `{status, output?, error?, name?,
    arguments?, server_label?}`."""
    fields = body.sent()
    for name in ("output", "error", "arguments"):
        if name in fields:
            fields[name] = _text(name, fields[name])
    if len(call_id) > MAX_CALL_ID_LENGTH:
        raise NotFound("item not found")
    return _items().write_back(current_principal().user_id, conversation_id, call_id, fields)
