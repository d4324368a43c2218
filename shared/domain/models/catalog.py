"""The model catalog as clients see it, and routing a public model id to a provider endpoint.

Routes are cached in-process for a few seconds: a chat request should not pay a catalog query, and an admin
change reaches every pod within ROUTE_CACHE_SECONDS.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from sqlalchemy import func, select, update

from shared.times import unix as _unix
from shared.db import Database
from shared.errors import BadRequest, NotFound
from shared.inference import Endpoint
from shared.domain.models.tables import model_catalogs, provider_models, providers
from shared.domain.models.providers import ProviderService

ROUTE_CACHE_SECONDS = 5.0
CAPABILITIES = ("images", "embeddings", "reasoning", "instruct", "audio", "video", "tools", "browser")


@dataclass(frozen=True)
class ModelRoute:
    model_public_id: str
    upstream_model: str
    provider_id: int
    provider_name: str
    endpoint: Endpoint
    context_length: int | None


def catalog_body(row) -> dict:
    body = {
        "id": row.public_id, "public_id": row.public_id, "model_display_name": row.model_display_name,
        "description": row.description, "supported_parameters": row.supported_parameters or {},
        "architecture": row.architecture or {}, "tags": row.tags or [], "notes": row.notes,
        "context_length": row.context_length, "is_moderated": row.is_moderated, "active": row.active,
        "extras": row.extras or {}, "status": row.status, "family": row.family, "experimental": row.experimental,
        "requires_feature_flag": row.requires_feature_flag,
        "last_synced_at": _unix(row.last_synced_at), "created_at": _unix(row.created_at),
        "updated_at": _unix(row.updated_at),
    }
    body.update({f"supports_{name}": getattr(row, f"supports_{name}") for name in CAPABILITIES})
    return body


def provider_model_body(row) -> dict:
    body = {
        "id": row.public_id, "provider_id": row.provider_public_id, "provider_vendor": row.provider_vendor,
        "model_catalog_id": row.catalog_public_id, "model_public_id": row.model_public_id,
        "provider_original_model_id": row.provider_original_model_id, "model_display_name": row.model_display_name,
        "category": row.category, "category_order_number": row.category_order_number,
        "model_order_number": row.model_order_number, "pricing": row.pricing or {}, "token_limits": row.token_limits,
        "family": row.family, "active": row.active, "instruct_model_public_id": row.instruct_model_public_id,
        "created_at": _unix(row.created_at), "updated_at": _unix(row.updated_at),
    }
    body.update({f"supports_{name}": getattr(row, f"supports_{name}") for name in CAPABILITIES})
    return body


_PROVIDER_MODEL_QUERY = (
    select(provider_models, providers.c.public_id.label("provider_public_id"),
           providers.c.vendor.label("provider_vendor"), model_catalogs.c.public_id.label("catalog_public_id"))
    .join(providers, providers.c.id == provider_models.c.provider_id)
    .outerjoin(model_catalogs, model_catalogs.c.id == provider_models.c.model_catalog_id)
    .where(providers.c.deleted_at.is_(None))
)


class ModelCatalog:
    def __init__(self, db: Database, providers_service: ProviderService, *, ttl_seconds: float):
        self.db = db
        self.providers = providers_service
        self.ttl = ttl_seconds
        self._routes: dict[str, ModelRoute] = {}
        self._routes_loaded_at = 0.0
        self._lock = threading.Lock()

    def _served_rows(self, conn):
        """Active provider-models of active providers whose catalog entry is active, in display order."""
        return conn.execute(
            select(provider_models, providers.c.name.label("provider_name"), providers.c.public_id.label("provider_public_id"),
                   providers.c.vendor.label("provider_vendor"), providers.c.base_url,
                   providers.c.encrypted_api_key, model_catalogs.c.context_length,
                   model_catalogs.c.created_at.label("catalog_created_at"))
            .join(providers, providers.c.id == provider_models.c.provider_id)
            .outerjoin(model_catalogs, model_catalogs.c.id == provider_models.c.model_catalog_id)
            .where(providers.c.active, providers.c.deleted_at.is_(None), provider_models.c.active,
                   func.coalesce(model_catalogs.c.active, True))
            # Jan's order: by category, then by model, each with 0 ("unset") after every set number.
            .order_by(provider_models.c.category_order_number == 0, provider_models.c.category_order_number,
                      provider_models.c.model_order_number == 0, provider_models.c.model_order_number,
                      provider_models.c.id)
        ).all()

    # Public listing ------------------------------------------------------------------------------------

    def list_models(self, *, per_provider: bool = False) -> list[dict]:
        self.providers.try_sync_stale(self.ttl)
        with self.db.read() as conn:
            rows = self._served_rows(conn)
        seen: set[str] = set()
        data = []
        for row in rows:
            if not per_provider and row.model_public_id in seen:
                continue
            seen.add(row.model_public_id)
            item = {"id": row.model_public_id, "object": "model",
                    "created": _unix(row.catalog_created_at or row.created_at), "owned_by": row.provider_name,
                    "model_display_name": row.model_display_name, "category": row.category,
                    "category_order_number": row.category_order_number, "model_order_number": row.model_order_number}
            if per_provider:
                item.update(provider_id=row.provider_public_id, provider_vendor=row.provider_vendor,
                            provider_name=row.provider_name)
            data.append(item)
        return data

    def get_model(self, model_id: str) -> dict:
        for item in self.list_models():
            if item["id"] == model_id:
                return item
        raise NotFound(f"model '{model_id}' not found", code="model_not_found", param="model")

    def get_catalog(self, public_id: str, *, admin: bool = False) -> dict:
        with self.db.read() as conn:
            row = conn.execute(select(model_catalogs).where(model_catalogs.c.public_id == public_id)).first()
        if row is None or (not admin and (row.experimental or row.requires_feature_flag)):
            raise NotFound("model catalog not found")
        return catalog_body(row)

    # Routing --------------------------------------------------------------------------------------------

    def _load_routes(self) -> dict[str, ModelRoute]:
        with self.db.read() as conn:
            rows = self._served_rows(conn)
        routes: dict[str, ModelRoute] = {}
        for row in rows:
            if row.model_public_id in routes:
                continue
            routes[row.model_public_id] = ModelRoute(
                model_public_id=row.model_public_id, upstream_model=row.provider_original_model_id,
                provider_id=row.provider_id, provider_name=row.provider_name,
                endpoint=self.providers.endpoint(row), context_length=row.context_length)
        return routes

    def route(self, model_id: str) -> ModelRoute:
        if time.monotonic() - self._routes_loaded_at > ROUTE_CACHE_SECONDS:
            with self._lock:
                if time.monotonic() - self._routes_loaded_at > ROUTE_CACHE_SECONDS:
                    self._routes = self._load_routes()
                    self._routes_loaded_at = time.monotonic()
        route = self._routes.get(model_id)
        if route is None:
            raise NotFound(f"model '{model_id}' not found", code="model_not_found", param="model")
        return route

    def invalidate_routes(self) -> None:
        self._routes_loaded_at = 0.0

    # Admin ----------------------------------------------------------------------------------------------

    def admin_list_catalogs(self, filters: dict, limit: int, offset: int, order: str) -> dict:
        query = select(model_catalogs)
        for key in ("status", "family"):
            if filters.get(key):
                query = query.where(getattr(model_catalogs.c, key) == filters[key])
        for key in ("is_moderated", "active", *(f"supports_{c}" for c in CAPABILITIES)):
            if key in filters:
                query = query.where(getattr(model_catalogs.c, key).is_(filters[key]))
        return self._page(query, model_catalogs.c.id, catalog_body, limit, offset, order)

    def admin_list_provider_models(self, filters: dict, limit: int, offset: int, order: str) -> dict:
        query = _PROVIDER_MODEL_QUERY
        if filters.get("provider_id"):
            query = query.where(providers.c.public_id == filters["provider_id"])
        if filters.get("model_key"):
            query = query.where(provider_models.c.model_public_id == filters["model_key"])
        if "active" in filters:
            query = query.where(provider_models.c.active.is_(filters["active"]))
        if "supports_images" in filters:
            query = query.where(provider_models.c.supports_images.is_(filters["supports_images"]))
        if filters.get("search"):
            pattern = "%" + filters["search"].replace("%", r"\%").replace("_", r"\_") + "%"
            query = query.where(provider_models.c.model_public_id.ilike(pattern)
                                | provider_models.c.model_display_name.ilike(pattern))
        return self._page(query, provider_models.c.id, provider_model_body, limit, offset, order)

    def _page(self, query, id_column, shape, limit: int, offset: int, order: str) -> dict:
        with self.db.read() as conn:
            total = conn.execute(select(func.count()).select_from(query.subquery())).scalar_one()
            ordering = id_column.asc() if order == "asc" else id_column.desc()
            rows = conn.execute(query.order_by(ordering).limit(limit).offset(offset)).all()
        return {"data": [shape(row) for row in rows], "total": total, "limit": limit}

    def admin_get_provider_model(self, public_id: str) -> dict:
        with self.db.read() as conn:
            row = conn.execute(_PROVIDER_MODEL_QUERY.where(provider_models.c.public_id == public_id)).first()
        if row is None:
            raise NotFound("provider model not found")
        return provider_model_body(row)

    def admin_update_catalog(self, public_id: str, values: dict) -> dict:
        with self.db.transaction() as conn:
            found = conn.execute(update(model_catalogs).where(model_catalogs.c.public_id == public_id)
                                 .values(**values, status="updated", updated_at=func.now())
                                 .returning(model_catalogs.c.id)).first()
        if found is None:
            raise NotFound("model catalog not found")
        self.invalidate_routes()
        return self.get_catalog(public_id, admin=True)

    def admin_update_provider_model(self, public_id: str, values: dict) -> dict:
        with self.db.transaction() as conn:
            found = conn.execute(update(provider_models).where(provider_models.c.public_id == public_id)
                                 .values(**values, updated_at=func.now()).returning(provider_models.c.id)).first()
        if found is None:
            raise NotFound("provider model not found")
        self.invalidate_routes()
        return self.admin_get_provider_model(public_id)

    def bulk_toggle_catalogs(self, enable: bool, catalog_ids: list[str], except_models: list[str]) -> dict:
        with self.db.transaction() as conn:
            if catalog_ids:
                known = set(conn.execute(select(model_catalogs.c.public_id)
                                         .where(model_catalogs.c.public_id.in_(catalog_ids))).scalars())
                missing = [cid for cid in catalog_ids if cid not in known]
                if missing:
                    raise NotFound(f"model catalog not found: {missing[0]}")
            statement = update(model_catalogs).values(active=enable, updated_at=func.now())
            if catalog_ids:
                statement = statement.where(model_catalogs.c.public_id.in_(catalog_ids))
            if except_models:
                statement = statement.where(model_catalogs.c.public_id.notin_(except_models))
            updated = conn.execute(statement).rowcount
            total = conn.execute(select(func.count()).select_from(model_catalogs)).scalar_one()
        self.invalidate_routes()
        return {"updated_count": updated, "skipped_count": (len(catalog_ids) or total) - updated,
                "failed_count": 0, "total_checked": len(catalog_ids) or total}

    def bulk_toggle_provider_models(self, enable: bool, provider_public_id: str | None,
                                    except_models: list[str]) -> dict:
        with self.db.transaction() as conn:
            statement = update(provider_models).values(active=enable, updated_at=func.now())
            if provider_public_id:
                provider_id = conn.execute(select(providers.c.id).where(
                    providers.c.public_id == provider_public_id, providers.c.deleted_at.is_(None))).scalar()
                if provider_id is None:
                    raise NotFound("provider not found")
                statement = statement.where(provider_models.c.provider_id == provider_id)
            if except_models:
                statement = statement.where(provider_models.c.model_public_id.notin_(except_models))
            updated = conn.execute(statement).rowcount
        self.invalidate_routes()
        return {"updated_count": updated}


def bool_filters(args, names) -> dict:
    """Query-string booleans for admin filters; anything but true/false is a 400."""
    found = {}
    for name in names:
        raw = args.get(name)
        if raw is None:
            continue
        if raw.lower() not in ("true", "false"):
            raise BadRequest(f"{name} must be true or false", param=name)
        found[name] = raw.lower() == "true"
    return found
