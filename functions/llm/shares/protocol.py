"""Share bodies and responses (Jan's shapes)."""
from __future__ import annotations

from typing import Annotated, Literal

from msgspec import Meta

from shared.errors import BadRequest
from shared.protocol import RequestModel, ResponseModel
from functions.llm.shares.service import MAX_TITLE_LENGTH

MAX_BRANCH_LENGTH = 64
MAX_ITEM_ID_LENGTH = 64


class CreateShareRequest(RequestModel):
    """`scope: "item"` shares one assistant message (`item_id`); `?branch=` wins over the body's `branch`."""

    __trimmed__ = ("item_id", "branch", "title")

    scope: Annotated[Literal["conversation", "item"], Meta(
        extra={"error": "scope must be 'conversation' or 'item'", "required": "scope is required"})]
    item_id: Annotated[str, Meta(max_length=MAX_ITEM_ID_LENGTH)] | None = None
    branch: str | None = None
    title: Annotated[str, Meta(max_length=MAX_TITLE_LENGTH)] | None = None
    include_images: bool | None = None
    include_context_messages: bool | None = None

    def __post_init__(self):
        super().__post_init__()
        if self.scope == "item" and not self.item_id:
            raise BadRequest("item_id is required when scope is 'item'", param="item_id")


class ShareOptions(ResponseModel):
    include_images: bool
    include_context_messages: bool


class Share(ResponseModel):
    """Optional fields only when set; times are unix seconds."""

    id: str
    object: Literal["share"]
    slug: str
    share_url: str
    visibility: str
    view_count: int
    snapshot_version: int
    share_options: ShareOptions
    scope: str
    conversation_id: str | None
    created_at: int
    updated_at: int
    title: str | None = None
    item_id: str | None = None
    revoked_at: int | None = None
    last_viewed_at: int | None = None
