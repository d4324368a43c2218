"""Model, provider and catalog bodies (Jan's /v1/admin shapes) and OpenAI's model list.

PATCH bodies change only the fields sent: a field that is present must fit its column; JSON null clears a
nullable column and is a 400 for a NOT NULL one (those are typed without None)."""
from __future__ import annotations

from typing import Annotated, Any, Literal

from msgspec import Meta

from shared.protocol import UNSET, RequestModel, ResponseModel, UnsetType

INT32 = 2**31 - 1


def _text(limit: int):
    return Annotated[str, Meta(max_length=limit)]


def _strings(limit: int, name: str):
    return Annotated[list[str], Meta(max_length=limit, extra={"error": f"{name} must be a list of strings"})]


class ProviderRequest(RequestModel):
    """Register (POST) or change (PATCH) an OpenAI-compatible provider. The provider service checks these
    fields (it also reads the providers file): `vendor` or Jan's `type`; `base_url`, `url` or Jan's
    `endpoints[0]`; an empty `api_key` clears the stored one."""

    name: Annotated[Any, Meta(extra_json_schema={"type": ["string", "null"], "maxLength": 255})] = None
    vendor: Annotated[Any, Meta(extra_json_schema={"type": ["string", "null"], "maxLength": 64})] = None
    type: Annotated[Any, Meta(extra_json_schema={"type": ["string", "null"]})] = None
    base_url: Annotated[Any, Meta(extra_json_schema={"type": ["string", "null"], "format": "uri"})] = None
    url: Annotated[Any, Meta(extra_json_schema={"type": ["string", "null"], "format": "uri"})] = None
    endpoints: Annotated[Any, Meta(extra_json_schema={"type": ["array", "null"]})] = None
    api_key: Annotated[Any, Meta(extra_json_schema={"type": ["string", "null"]})] = None
    active: Annotated[Any, Meta(extra_json_schema={"type": ["boolean", "null"]})] = None
    category: Annotated[Any, Meta(extra_json_schema={"type": ["string", "null"], "maxLength": 16})] = None
    metadata: Annotated[Any, Meta(extra_json_schema={"type": ["object", "null"]})] = None


class BulkToggleCatalogsRequest(RequestModel):
    enable: bool
    catalog_ids: _strings(1000, "catalog_ids") | None = None
    except_models: _strings(1000, "except_models") | None = None


class BulkToggleProviderModelsRequest(RequestModel):
    __trimmed__ = ("provider_id",)

    enable: bool
    provider_id: str | None = None
    except_models: _strings(1000, "except_models") | None = None


class UpdateCatalogRequest(RequestModel):
    """Model sync never overwrites an edited entry."""

    __trimmed__ = ("model_display_name", "description", "notes", "family", "requires_feature_flag")

    model_display_name: _text(255) | None | UnsetType = UNSET
    description: _text(4000) | None | UnsetType = UNSET
    notes: _text(4000) | None | UnsetType = UNSET
    family: _text(128) | None | UnsetType = UNSET
    requires_feature_flag: _text(128) | None | UnsetType = UNSET
    is_moderated: bool | None | UnsetType = UNSET
    active: bool | UnsetType = UNSET
    experimental: bool | UnsetType = UNSET
    supports_images: bool | UnsetType = UNSET
    supports_embeddings: bool | UnsetType = UNSET
    supports_reasoning: bool | UnsetType = UNSET
    supports_instruct: bool | UnsetType = UNSET
    supports_audio: bool | UnsetType = UNSET
    supports_video: bool | UnsetType = UNSET
    supports_tools: bool | UnsetType = UNSET
    supports_browser: bool | UnsetType = UNSET
    context_length: Annotated[int, Meta(ge=1, le=INT32)] | None | UnsetType = UNSET
    supported_parameters: dict[str, Any] | None | UnsetType = UNSET
    architecture: dict[str, Any] | None | UnsetType = UNSET
    extras: dict[str, Any] | None | UnsetType = UNSET
    tags: _strings(100, "tags") | None | UnsetType = UNSET


OrderNumber = Annotated[int, Meta(ge=-INT32, le=INT32)]


class UpdateProviderModelRequest(RequestModel):
    __trimmed__ = ("model_display_name", "category", "family", "instruct_model_public_id")

    model_display_name: _text(255) | UnsetType = UNSET
    category: _text(64) | UnsetType = UNSET
    family: _text(128) | None | UnsetType = UNSET
    instruct_model_public_id: _text(255) | None | UnsetType = UNSET
    category_order_number: OrderNumber | UnsetType = UNSET
    model_order_number: OrderNumber | UnsetType = UNSET
    active: bool | UnsetType = UNSET
    supports_images: bool | UnsetType = UNSET
    supports_embeddings: bool | UnsetType = UNSET
    supports_reasoning: bool | UnsetType = UNSET
    supports_instruct: bool | UnsetType = UNSET
    supports_audio: bool | UnsetType = UNSET
    supports_video: bool | UnsetType = UNSET
    supports_tools: bool | UnsetType = UNSET
    supports_browser: bool | UnsetType = UNSET
    pricing: dict[str, Any] | UnsetType = UNSET
    token_limits: dict[str, Any] | None | UnsetType = UNSET


# Responses ----------------------------------------------------------------------------------------------------

class Model(ResponseModel):
    """OpenAI's model object with Jan's display fields."""

    id: str
    object: Literal["model"]
    created: int
    owned_by: str
    model_display_name: str | None = None
    category: str | None = None
    category_order_number: int | None = None
    model_order_number: int | None = None
    provider_id: str | None = None
    provider_vendor: str | None = None
    provider_name: str | None = None


class ModelList(ResponseModel):
    object: Literal["list"]
    data: list[Model]
    first_id: str | None
    last_id: str | None
    has_more: bool
