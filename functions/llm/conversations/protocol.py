"""Conversation, item and branch bodies (OpenAI's and Jan's forms) and their response shapes. Items are checked
one by one by `validation.parse_input_items`, which knows both forms and Jan's limits."""
from __future__ import annotations

from typing import Annotated, Any, Literal

from msgspec import Meta

from shared.protocol import UNSET, RequestModel, ResponseModel, UnsetType
from shared.domain.conversations import (
    MAX_CALL_ID_LENGTH,
    MAX_ITEMS_PER_REQUEST,
    MAX_NAME_LENGTH,
    MAX_REFERRER_LENGTH,
    WRITE_BACK_STATUSES,
)

# An input item: `{"type": "message", "role", "content"}` (content a string or parts), `function_call` or
# `function_call_output` (OpenAI), or Jan's `{"role", "content"}` without a type.
InputItems = Annotated[list[Any], Meta(
    description=f"at most {MAX_ITEMS_PER_REQUEST} items, OpenAI's or Jan's form",
    extra_json_schema={"items": {"type": "object", "properties": {
        "type": {"enum": ["message", "function_call", "function_call_output"]},
        "role": {"enum": ["user", "assistant", "system", "developer"]},
        "content": {"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "object"}}]},
        "call_id": {"type": "string", "maxLength": MAX_CALL_ID_LENGTH},
        "name": {"type": "string"}, "arguments": {"type": "string"}, "output": {},
        "status": {"type": "string"}}}})]
Metadata = Annotated[Any, Meta(description="up to 16 string values",
                               extra_json_schema={"type": ["object", "null"], "additionalProperties": {"type": "string"}})]
Referrer = Annotated[str, Meta(max_length=MAX_REFERRER_LENGTH)]


class CreateConversationRequest(RequestModel):
    """A long title is truncated (as Jan), not rejected."""

    __trimmed__ = ("title", "referrer", "project_id")

    title: str | None = None
    metadata: Metadata = None
    referrer: Referrer | None = None
    project_id: str | None = None
    items: InputItems | None = None


class UpdateConversationRequest(RequestModel):
    """Metadata is replaced; `project_id: ""` unlinks the project."""

    __trimmed__ = ("title", "referrer", "project_id")

    title: str | None = None
    metadata: Metadata = None
    referrer: Referrer | None = None
    project_id: str | None = None


class AddItemsRequest(RequestModel):
    items: InputItems | None = None


class EditItemRequest(RequestModel):
    """`regenerate` is Jan's flag: the client sends the follow-up chat request itself."""

    content: Annotated[Any, Meta(extra_json_schema={
        "anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "object"}}, {"type": "null"}]})] = None
    regenerate: bool | None = None


class RegenerateItemRequest(RequestModel):
    """Jan's optional `{model, temperature, max_tokens}` are accepted and not used: the next chat request answers."""


Text = Annotated[Any, Meta(description="a string; other JSON is stored as its JSON text")]
ItemName = Annotated[str, Meta(max_length=MAX_NAME_LENGTH)]


class WriteBackRequest(RequestModel):
    """MCP result write-back onto a function_call item; only the fields sent are changed."""

    status: Annotated[Literal[tuple(sorted(WRITE_BACK_STATUSES))], Meta(
        extra={"error": "status must be one of: " + ", ".join(sorted(WRITE_BACK_STATUSES))})]
    output: Text | UnsetType = UNSET
    error: Text | UnsetType = UNSET
    arguments: Text | UnsetType = UNSET
    name: ItemName | None | UnsetType = UNSET
    server_label: ItemName | None | UnsetType = UNSET


BranchName = Annotated[Any, Meta(description="1 to 64 letters, digits, '_', '.' or '-'; `main` means MAIN",
                                 extra_json_schema={"type": ["string", "null"], "pattern": "^[A-Za-z0-9_.-]{1,64}$"})]


class CreateBranchRequest(RequestModel):
    __trimmed__ = ("fork_from_item_id", "description")

    name: BranchName = None
    parent_branch: BranchName = None
    fork_from_item_id: str | None = None
    description: str | None = None


# Responses ----------------------------------------------------------------------------------------------------

class Conversation(ResponseModel):
    id: str
    object: Literal["conversation"]
    title: str | None
    created_at: int
    updated_at: int
    metadata: dict[str, str]
    referrer: str | None
    project_id: str | None


class ConversationList(ResponseModel):
    object: Literal["list"]
    data: list[Conversation]
    first_id: str | None
    last_id: str | None
    has_more: bool
    total: int | None = None


class ConversationDeleted(ResponseModel):
    id: str
    object: Literal["conversation.deleted"]
    deleted: bool


class ConversationItem(ResponseModel):
    """A message (`role`, `content` parts) or a function call / output; times are RFC 3339 as in Jan."""

    id: str
    object: Literal["conversation.item"]
    type: str
    branch: str
    sequence_number: int
    created_at: str
    status: str
    role: str | None = None
    content: list[dict[str, Any]] | None = None
    call_id: str | None = None
    name: str | None = None
    arguments: str | None = None
    output: str | None = None
    error: str | None = None
    model: str | None = None
    usage: dict[str, Any] | None = None
    finish_reason: str | None = None
    completed_at: str | None = None


class ItemList(ResponseModel):
    object: Literal["list"]
    data: list[ConversationItem]
    first_id: str | None
    last_id: str | None
    has_more: bool


class Branch(ResponseModel):
    name: str
    description: str | None
    parent_branch: str | None
    forked_at: int | None
    forked_from_item_id: str | None
    item_count: int
    created_at: int | None
    updated_at: int | None
    is_active: bool
