"""Conversation routes of the spine: create, get, and list items (the full surface is issue 3)."""
from __future__ import annotations

from flask import Blueprint, request

from shared.auth import authenticated, current_principal
from shared.body import json_object, string_field
from shared.errors import BadRequest
from shared.pagination import page_params
from functions.llm.conversations.service import parse_input_items
from functions.llm.services import services

bp = Blueprint("conversations", __name__, url_prefix="/v1/conversations")


@bp.post("")
@authenticated
def create_conversation():
    """Create a conversation, optionally with up to 20 items."""
    body = json_object(optional=True)
    items = parse_input_items(body.get("items"))
    return services().conversations.create(
        current_principal().user_id,
        title=string_field(body, "title"),  # Jan truncates a long title rather than rejecting it
        metadata=body.get("metadata"),
        referrer=string_field(body, "referrer", max_length=64),
        items=items,
    )


@bp.get("/<conversation_id>")
@authenticated
def get_conversation(conversation_id: str):
    """One of the caller's conversations."""
    return services().conversations.get(current_principal().user_id, conversation_id)


@bp.get("/<conversation_id>/items")
@authenticated
def list_items(conversation_id: str):
    """Items of a conversation's branch (default: the active one), newest first by default."""
    branch = request.args.get("branch")
    if branch is not None and not (0 < len(branch) <= 64):
        raise BadRequest("branch is not a valid branch name", param="branch")
    return services().conversations.list_items(current_principal().user_id, conversation_id,
                                               page_params(), branch.upper() if branch else None)
