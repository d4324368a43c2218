"""Conversation routes (Jan's paths; OpenAI's shapes where OpenAI defines them). Handlers parse and authorise;
the work is in the conversation service. Items and branches are nested blueprints of this one, so they are
served wherever it is (also under /llm)."""
from __future__ import annotations

from flask import Blueprint, request

from shared.auth import authenticated, current_principal
from shared.pagination import Page
from shared.protocol.flask import body, paginated, returns
from shared.domain.conversations import parse_input_items
from functions.llm.conversations.branch_routes import bp as branches_bp
from functions.llm.conversations.item_routes import bp as items_bp
from functions.llm.conversations.protocol import (
    Conversation,
    ConversationDeleted,
    ConversationList,
    CreateConversationRequest,
    UpdateConversationRequest,
)
from functions.llm.services import services

bp = Blueprint("conversations", __name__, url_prefix="/v1/conversations")
bp.register_blueprint(items_bp)
bp.register_blueprint(branches_bp)


@bp.get("")
@authenticated
@paginated()
@returns(ConversationList)
def list_conversations(page: Page):
    """The caller's conversations, newest first: `limit` (1–100), `after`, `order`, `referrer`, `project_id`."""
    return services().conversations.list(current_principal().user_id, page,
                                         referrer=request.args.get("referrer") or None,
                                         project_id=request.args.get("project_id") or None)


@bp.post("")
@authenticated
@body(CreateConversationRequest, optional=True)
@returns(Conversation)
def create_conversation(body: CreateConversationRequest):
    """Create a conversation, optionally with up to 20 items and in one of the caller's projects."""
    items = parse_input_items(body.items)
    return services().conversations.create(
        current_principal().user_id, title=body.title, metadata=body.metadata, referrer=body.referrer, items=items,
        project_id=body.project_id,
    )


@bp.delete("")
@authenticated
def delete_all_conversations():
    """Delete all of the caller's conversations (soft; their shares are revoked)."""
    return services().conversations.delete_all(current_principal().user_id)


@bp.get("/<conversation_id>")
@authenticated
@returns(Conversation)
def get_conversation(conversation_id: str):
    """One of the caller's conversations."""
    return services().conversations.get(current_principal().user_id, conversation_id)


@bp.route("/<conversation_id>", methods=["POST", "PATCH"])
@authenticated
@body(UpdateConversationRequest, optional=True)
@returns(Conversation)
def update_conversation(conversation_id: str, body: UpdateConversationRequest):
    """Update title, metadata (replaced), referrer or project_id ("" unlinks); POST as Jan, PATCH too."""
    return services().conversations.update(
        current_principal().user_id, conversation_id, title=body.title, metadata=body.metadata,
        referrer=body.referrer, project_id=body.project_id,
    )


@bp.delete("/<conversation_id>")
@authenticated
@returns(ConversationDeleted)
def delete_conversation(conversation_id: str):
    """Delete a conversation (soft; its shares are revoked); afterwards it answers 404."""
    return services().conversations.delete(current_principal().user_id, conversation_id)
