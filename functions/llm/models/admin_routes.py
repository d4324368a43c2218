"""Admin routes for providers, catalogs and provider-models (Jan's /v1/admin/… shapes)."""
from __future__ import annotations

from flask import Blueprint, jsonify, request

from shared.audit_routes import audited
from shared.auth import admin_required
from shared.errors import BadRequest
from shared.protocol.flask import body, offset_params
from shared.domain.models import CAPABILITIES, bool_filters
from functions.llm.models.protocol import (
    BulkToggleCatalogsRequest,
    BulkToggleProviderModelsRequest,
    ProviderRequest,
    UpdateCatalogRequest,
    UpdateProviderModelRequest,
)
from functions.llm.services import services

bp = Blueprint("admin_models", __name__, url_prefix="/v1/admin")


def _offset_page() -> tuple[int, int, str]:
    order = request.args.get("order") or "desc"
    if order not in ("asc", "desc"):
        raise BadRequest("order must be 'asc' or 'desc'", param="order")
    return (*offset_params(), order)


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
@body(ProviderRequest)
def register_provider(body: ProviderRequest):
    """Register an OpenAI-compatible provider and sync its models."""
    created = services().providers.register(body.raw)
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
@body(ProviderRequest)
def update_provider(provider_id: str, body: ProviderRequest):
    """Change a provider's name, URL, API key, state or metadata."""
    updated = services().providers.update(provider_id, body.raw)
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
@body(BulkToggleCatalogsRequest)
def bulk_toggle_catalogs(body: BulkToggleCatalogsRequest):
    """Enable or disable many catalog entries."""
    return services().catalog.bulk_toggle_catalogs(body.enable, body.catalog_ids or [], body.except_models or [])


@bp.get("/models/catalogs/<path:catalog_id>")
@admin_required
def get_catalog(catalog_id: str):
    """One catalog entry, experimental ones included."""
    return services().catalog.get_catalog(catalog_id, admin=True)


@bp.patch("/models/catalogs/<path:catalog_id>")
@admin_required
@audited("model_catalog.update", "model_catalog", target_arg="catalog_id", load=_catalog)
@body(UpdateCatalogRequest)
def update_catalog(catalog_id: str, body: UpdateCatalogRequest):
    """Edit a catalog entry; model sync never overwrites an edited one."""
    values = body.sent()
    for name in ("supported_parameters", "architecture", "extras"):  # NOT NULL columns: null means empty
        if name in values:
            values[name] = values[name] or {}
    if "tags" in values:
        values["tags"] = values["tags"] or []
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
@body(BulkToggleProviderModelsRequest)
def bulk_toggle_provider_models(body: BulkToggleProviderModelsRequest):
    """Enable or disable many provider-models."""
    return services().catalog.bulk_toggle_provider_models(body.enable, body.provider_id, body.except_models or [])


@bp.get("/models/provider-models/<model_id>")
@admin_required
def get_provider_model(model_id: str):
    """One provider-model."""
    return services().catalog.admin_get_provider_model(model_id)


@bp.patch("/models/provider-models/<model_id>")
@admin_required
@audited("provider_model.update", "provider_model", target_arg="model_id", load=_provider_model)
@body(UpdateProviderModelRequest)
def update_provider_model(model_id: str, body: UpdateProviderModelRequest):
    """Edit a provider-model's display, ordering, pricing, limits, capabilities or state."""
    return services().catalog.admin_update_provider_model(model_id, body.sent())
