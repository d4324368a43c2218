"""Public model routes: /v1/models, /v1/models/{id}, /v1/models/catalogs/{id…}, /v1/models/providers."""
from __future__ import annotations

from flask import Blueprint, jsonify, request

from shared.auth import authenticated
from shared.pagination import list_body
from shared.protocol.flask import returns
from functions.llm.models.protocol import Model, ModelList
from functions.llm.services import services

bp = Blueprint("models", __name__, url_prefix="/v1/models")


@bp.get("")
@authenticated
@returns(ModelList)
def list_models():
    """OpenAI model list of every model served by an active provider (`X-PROVIDER-DATA: true`: one row per provider)."""
    per_provider = request.headers.get("X-PROVIDER-DATA", "").lower() == "true"
    data = services().catalog.list_models(per_provider=per_provider)
    return list_body(data, has_more=False)


@bp.get("/providers")
@authenticated
def list_providers():
    """Active providers (a bare array, as Jan), without URLs or keys."""
    return jsonify(services().providers.list(public=True))


@bp.get("/catalogs/<path:catalog_id>")
@authenticated
def get_catalog(catalog_id: str):
    """One catalog entry; the id contains a slash (`vendor/model`, `%2F` accepted)."""
    return services().catalog.get_catalog(catalog_id)


@bp.get("/<path:model_id>")
@authenticated
@returns(Model)
def get_model(model_id: str):
    """One model in OpenAI's shape."""
    return services().catalog.get_model(model_id)
