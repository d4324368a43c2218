"""Admin routes for providers, catalogs and provider-models (Jan's /v1/admin/… shapes)."""
from __future__ import annotations

from flask import Blueprint, jsonify, request

from shared.audit_routes import audited
from shared.auth import admin_required
from shared.body import bool_field, int_field, json_object, object_field, string_field
from shared.errors import BadRequest
from functions.llm.models.catalog import CAPABILITIES, bool_filters
from shared.pagination import offset_params
from functions.llm.services import services

bp = Blueprint("admin_models", __name__, url_prefix="/v1/admin")


def _offset_page() -> tuple[int, int, str]:
    order = request.args.get("order") or "desc"
    if order not in ("asc", "desc"):
        raise BadRequest("order must be 'asc' or 'desc'", param="order")
    return (*offset_params(), order)


# PATCH bodies: a field that is present must fit its column. JSON null clears a nullable column only; for a
# NOT NULL column it is a 400, never a database error.
_INT32 = 2**31 - 1


def _not_null(body: dict, name: str) -> None:
    if name in body and body[name] is None:
        raise BadRequest(f"{name} must not be null", param=name)


def _string_list(body: dict, name: str, limit: int = 1000) -> list[str]:
    value = body.get(name) or []
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise BadRequest(f"{name} must be a list of strings", param=name)
    if len(value) > limit:
        raise BadRequest(f"{name} may hold at most {limit} entries", param=name)
    return value


# Every write below leaves one audit entry (shared/audit_routes.py), with the target's state before and after.
def _provider(provider_id: str) -> dict:
    return services().providers.get(provider_id)


def _catalog(catalog_id: str) -> dict:
    return services().catalog.get_catalog(catalog_id, admin=True)


def _provider_model(model_id: str) -> dict:
    return services().catalog.admin_get_provider_model(model_id)


# Providers ---------------------------------------------------------------------------------------------

@bp.get("/providers")
@admin_required
def list_providers():
    """All providers with model counts (bare array)."""
    return jsonify(services().providers.list())


@bp.post("/providers")
@admin_required
@audited("provider.create", "provider", load=_provider)
def register_provider():
    """Register an OpenAI-compatible provider and sync its models."""
    created = services().providers.register(json_object())
    services().catalog.invalidate_routes()
    return created


@bp.get("/providers/<provider_id>")
@admin_required
def get_provider(provider_id: str):
    """One provider."""
    return services().providers.get(provider_id)


@bp.patch("/providers/<provider_id>")
@admin_required
@audited("provider.update", "provider", target_arg="provider_id", load=_provider)
def update_provider(provider_id: str):
    """Change a provider's name, URL, API key, state or metadata."""
    updated = services().providers.update(provider_id, json_object())
    services().catalog.invalidate_routes()
    return updated


@bp.delete("/providers/<provider_id>")
@admin_required
@audited("provider.delete", "provider", target_arg="provider_id", load=_provider)
def delete_provider(provider_id: str):
    """Remove a provider; its models stop being served (204)."""
    services().providers.delete(provider_id)
    services().catalog.invalidate_routes()
    return "", 204


@bp.post("/providers/<provider_id>/sync")
@admin_required
@audited("provider.sync", "provider", target_arg="provider_id", load=_provider)
def sync_provider(provider_id: str):
    """Refresh a provider's models from its /models now."""
    models = services().providers.sync(provider_id)
    services().catalog.invalidate_routes()
    return {"object": "list", "data": models}


# Catalogs ----------------------------------------------------------------------------------------------

_CATALOG_BOOL_FILTERS = ("is_moderated", "active", *(f"supports_{c}" for c in CAPABILITIES))


@bp.get("/models/catalogs")
@admin_required
def list_catalogs():
    """Catalog entries with filters, `limit`/`offset`."""
    limit, offset, order = _offset_page()
    filters = bool_filters(request.args, _CATALOG_BOOL_FILTERS)
    filters.update({key: request.args[key] for key in ("status", "family") if request.args.get(key)})
    return services().catalog.admin_list_catalogs(filters, limit, offset, order)


@bp.post("/models/catalogs/bulk-toggle")
@admin_required
@audited("model_catalog.bulk_toggle", "model_catalog", with_request=True)
def bulk_toggle_catalogs():
    """Enable or disable many catalog entries."""
    body = json_object()
    enable = bool_field(body, "enable", required=True)
    return services().catalog.bulk_toggle_catalogs(enable, _string_list(body, "catalog_ids"),
                                                   _string_list(body, "except_models"))


@bp.get("/models/catalogs/<path:catalog_id>")
@admin_required
def get_catalog(catalog_id: str):
    """One catalog entry, experimental ones included."""
    return services().catalog.get_catalog(catalog_id, admin=True)


@bp.patch("/models/catalogs/<path:catalog_id>")
@admin_required
@audited("model_catalog.update", "model_catalog", target_arg="catalog_id", load=_catalog)
def update_catalog(catalog_id: str):
    """Edit a catalog entry; model sync never overwrites an edited one."""
    body = json_object()
    values: dict = {}
    for name, limit in (("model_display_name", 255), ("description", 4000), ("notes", 4000), ("family", 128),
                        ("requires_feature_flag", 128)):
        if name in body:
            values[name] = string_field(body, name, max_length=limit)
    if "is_moderated" in body:
        values["is_moderated"] = bool_field(body, "is_moderated")
    for name in ("active", "experimental", *(f"supports_{c}" for c in CAPABILITIES)):
        if name in body:
            _not_null(body, name)
            values[name] = bool_field(body, name)
    if "context_length" in body:
        values["context_length"] = int_field(body, "context_length", minimum=1, maximum=_INT32)
    for name in ("supported_parameters", "architecture", "extras"):
        if name in body:
            values[name] = object_field(body, name) or {}
    if "tags" in body:
        values["tags"] = _string_list(body, "tags", 100)
    return services().catalog.admin_update_catalog(catalog_id, values)


# Provider-models ---------------------------------------------------------------------------------------

@bp.get("/models/provider-models")
@admin_required
def list_provider_models():
    """Provider-models with filters, `limit`/`offset`."""
    limit, offset, order = _offset_page()
    filters = bool_filters(request.args, ("active", "supports_images"))
    filters.update({key: request.args[key] for key in ("provider_id", "model_key", "search") if request.args.get(key)})
    return services().catalog.admin_list_provider_models(filters, limit, offset, order)


@bp.post("/models/provider-models/bulk-toggle")
@admin_required
@audited("provider_model.bulk_toggle", "provider_model", with_request=True)
def bulk_toggle_provider_models():
    """Enable or disable many provider-models."""
    body = json_object()
    enable = bool_field(body, "enable", required=True)
    return services().catalog.bulk_toggle_provider_models(
        enable, string_field(body, "provider_id"), _string_list(body, "except_models"))


@bp.get("/models/provider-models/<model_id>")
@admin_required
def get_provider_model(model_id: str):
    """One provider-model."""
    return services().catalog.admin_get_provider_model(model_id)


@bp.patch("/models/provider-models/<model_id>")
@admin_required
@audited("provider_model.update", "provider_model", target_arg="model_id", load=_provider_model)
def update_provider_model(model_id: str):
    """Edit a provider-model's display, ordering, pricing, limits, capabilities or state."""
    body = json_object()
    values: dict = {}
    for name, limit, nullable in (("model_display_name", 255, False), ("category", 64, False), ("family", 128, True),
                                  ("instruct_model_public_id", 255, True)):
        if name in body:
            if not nullable:
                _not_null(body, name)
            values[name] = string_field(body, name, max_length=limit)
    for name in ("category_order_number", "model_order_number"):
        if name in body:
            _not_null(body, name)
            values[name] = int_field(body, name, minimum=-_INT32, maximum=_INT32)
    for name in ("active", *(f"supports_{c}" for c in CAPABILITIES)):
        if name in body:
            _not_null(body, name)
            values[name] = bool_field(body, name)
    if "pricing" in body:
        _not_null(body, "pricing")
        values["pricing"] = object_field(body, "pricing")
    if "token_limits" in body:
        values["token_limits"] = object_field(body, "token_limits")
    return services().catalog.admin_update_provider_model(model_id, values)
