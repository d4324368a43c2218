"""Providers: any OpenAI-compatible endpoint (vLLM, remote APIs, the local model server), and model sync."""
from __future__ import annotations

import datetime as dt
import logging
import re
import time

from sqlalchemy import func, insert, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.exc import IntegrityError

from shared.times import unix as _unix
from shared import ids
from shared.db import Database
from shared.errors import ApiError, BadRequest, Conflict, NotFound
from shared.inference import Endpoint, InferenceClient
from shared.domain.models.tables import model_catalogs, provider_models, providers
from shared.domain.models.crypto import SecretBox, key_hint

log = logging.getLogger("jan.llm.providers")

_SLUG_JUNK = re.compile(r"[^a-z0-9._/-]+")
# model_catalogs.public_id and provider_models' model ids are VARCHAR(255).
MAX_MODEL_ID_LENGTH = 255
# The TTL refresh runs inside a model listing: a provider whose sync just failed (down, hanging, rejecting our
# key) is retried by it no sooner than this, per process, so it cannot slow every listing. Admin syncs always try.
SYNC_RETRY_SECONDS = 60.0


def canonical_model_id(upstream_id: str, vendor: str) -> str:
    """Jan's canonical `<vendor>/<model>` id: lower-case, `_` and spaces → `-`; an upstream id that already
    names its vendor (`meta-llama/Llama-3.1-8B`) keeps it."""
    slug = _slug(upstream_id)
    if "/" in slug:
        return slug
    return f"{_slug(vendor).replace('/', '-') or 'unknown'}/{slug}"


def _slug(value: str) -> str:
    return _SLUG_JUNK.sub("-", (value or "").strip().lower().replace("_", "-").replace(" ", "-")).strip("-/")


def provider_body(row, *, counts: tuple[int, int] | None = None, public: bool = False) -> dict:
    body = {"id": row.public_id, "name": row.name, "vendor": row.vendor, "active": row.active,
            "category": row.category}
    if not public:
        body.update({
            "base_url": row.base_url,
            "endpoints": [{"url": row.base_url, "weight": 1, "priority": 0, "healthy": row.last_sync_error is None}],
            "api_key_hint": row.api_key_hint,
            "metadata": row.metadata or {},
            "last_synced_at": _unix(row.last_synced_at),
            "last_sync_error": row.last_sync_error,
            "created_at": _unix(row.created_at),
            "updated_at": _unix(row.updated_at),
        })
    if counts is not None:
        body["model_count"], body["model_active_count"] = counts
    return body


def _active(body: dict, *, default: bool | None = None) -> bool | None:
    value = body.get("active", default)
    if not isinstance(value, bool):
        raise BadRequest("active must be a boolean", param="active")
    return value


def _category(body: dict) -> str | None:
    value = body.get("category")
    if value is None:
        return None
    if not isinstance(value, str):
        raise BadRequest("category must be a string", param="category")
    if len(value.strip()) > 16:
        raise BadRequest("category must be at most 16 characters", param="category")
    return value.strip()


def _base_url(body: dict) -> str | None:
    value = body.get("base_url") or body.get("url")
    endpoints = body.get("endpoints")
    if not value and isinstance(endpoints, list) and endpoints:
        first = endpoints[0]
        value = first.get("url") if isinstance(first, dict) else first
    if value is None:
        return None
    if not isinstance(value, str) or not re.match(r"^https?://[^\s]+$", value.strip()):
        raise BadRequest("base_url must be an http(s) URL", param="base_url")
    return value.strip().rstrip("/")


class ProviderService:
    def __init__(self, db: Database, inference: InferenceClient, *, encryption_key: str,
                 sync_timeout_seconds: float):
        self.db = db
        self.box = SecretBox(encryption_key)
        self.inference = inference
        self.sync_timeout = sync_timeout_seconds
        self._failed_at: dict[str, float] = {}

    def endpoint(self, row) -> Endpoint:
        api_key = self.box.decrypt(row.encrypted_api_key) if row.encrypted_api_key else None
        return Endpoint(base_url=row.base_url, api_key=api_key)

    def _get_row(self, conn, public_id: str):
        row = conn.execute(select(providers).where(providers.c.public_id == public_id,
                                                   providers.c.deleted_at.is_(None))).first()
        if row is None:
            raise NotFound("provider not found")
        return row

    def get(self, public_id: str) -> dict:
        with self.db.read() as conn:
            return provider_body(self._get_row(conn, public_id))

    def list(self, *, public: bool = False) -> list[dict]:
        counts = (
            select(provider_models.c.provider_id,
                   func.count().label("total"),
                   func.count().filter(provider_models.c.active).label("active_count"))
            .group_by(provider_models.c.provider_id).subquery()
        )
        query = (select(providers, counts.c.total, counts.c.active_count)
                 .outerjoin(counts, counts.c.provider_id == providers.c.id)
                 .where(providers.c.deleted_at.is_(None)).order_by(providers.c.id))
        if public:
            query = query.where(providers.c.active)
        with self.db.read() as conn:
            rows = conn.execute(query).all()
        return [provider_body(row, counts=None if public else (row.total or 0, row.active_count or 0), public=public)
                for row in rows]

    def register(self, body: dict, *, sync: bool = True) -> dict:
        name = body.get("name")
        vendor = body.get("vendor") or body.get("type")
        if not isinstance(name, str) or not name.strip() or len(name) > 255:
            raise BadRequest("name is required", param="name")
        if not isinstance(vendor, str) or not vendor.strip() or len(vendor) > 64:
            raise BadRequest("vendor is required", param="vendor")
        base_url = _base_url(body)
        if base_url is None:
            raise BadRequest("base_url is required", param="base_url")
        values = {"public_id": ids.public_id("prov"), "name": name.strip(), "vendor": vendor.strip().lower(),
                  "base_url": base_url, "active": _active(body, default=True),
                  "category": _category(body) or "llm", "metadata": self._metadata(body)}
        values.update(self._api_key_values(body))
        try:
            with self.db.transaction() as conn:
                row = conn.execute(insert(providers).values(**values).returning(providers)).first()
        except IntegrityError:
            raise Conflict("a provider with this name already exists", param="name") from None
        result = provider_body(row)
        if sync:
            result["models"] = self.sync(row.public_id, raise_errors=False)
            result.update({k: v for k, v in self.get(row.public_id).items() if k in ("last_synced_at", "last_sync_error")})
        return result

    def upsert_from_config(self, entry: dict) -> dict:
        """Config-file bootstrap: create the provider by name, or update its URL, key and state. `context_length`
        declares the context of every model the provider serves (a llama.cpp or vLLM server runs one)."""
        entry = dict(entry)
        context_length = entry.pop("context_length", None)
        if context_length is not None and (not isinstance(context_length, int) or context_length <= 0):
            raise BadRequest("context_length must be a positive integer", param="context_length")
        name = entry.get("name")
        with self.db.read() as conn:
            existing = conn.execute(select(providers.c.public_id).where(
                providers.c.name == name, providers.c.deleted_at.is_(None))).scalar()
        if existing is None:
            result = self.register(entry)
        else:
            update_body = {key: entry[key] for key in ("base_url", "url", "api_key", "active", "metadata", "category")
                           if key in entry}
            self.update(existing, update_body)
            result = {**self.get(existing), "models": self.sync(existing, raise_errors=False)}
        if context_length is not None and result["models"]:
            with self.db.transaction() as conn:
                conn.execute(update(model_catalogs)
                             .where(model_catalogs.c.public_id.in_([model["id"] for model in result["models"]]))
                             .values(context_length=context_length))
        return result

    def _metadata(self, body: dict) -> dict:
        metadata = body.get("metadata")
        if metadata is None:
            return {}
        if not isinstance(metadata, dict):
            raise BadRequest("metadata must be an object", param="metadata")
        return metadata

    def _api_key_values(self, body: dict) -> dict:
        api_key = body.get("api_key")
        if api_key in (None, ""):
            return {"encrypted_api_key": None, "api_key_hint": None} if "api_key" in body else {}
        if not isinstance(api_key, str):
            raise BadRequest("api_key must be a string", param="api_key")
        return {"encrypted_api_key": self.box.encrypt(api_key), "api_key_hint": key_hint(api_key)}

    def update(self, public_id: str, body: dict) -> dict:
        values: dict = {}
        if "name" in body:
            if not isinstance(body["name"], str) or not body["name"].strip():
                raise BadRequest("name must be a non-empty string", param="name")
            if len(body["name"].strip()) > 255:
                raise BadRequest("name must be at most 255 characters", param="name")
            values["name"] = body["name"].strip()
        base_url = _base_url(body)
        if base_url:
            values["base_url"] = base_url
        if "active" in body:
            values["active"] = _active(body)
        if "metadata" in body:
            values["metadata"] = self._metadata(body)
        if "category" in body:
            if body["category"] is None:
                raise BadRequest("category must be a string", param="category")
            values["category"] = _category(body)
        values.update(self._api_key_values(body))
        try:
            with self.db.transaction() as conn:
                self._get_row(conn, public_id)
                if values:
                    conn.execute(update(providers).where(providers.c.public_id == public_id)
                                 .values(**values, updated_at=func.now()))
        except IntegrityError:
            raise Conflict("a provider with this name already exists", param="name") from None
        return self.get(public_id)

    def delete(self, public_id: str) -> None:
        with self.db.transaction() as conn:
            row = self._get_row(conn, public_id)
            # The unique name index covers live rows only, so the name is free again without renaming.
            conn.execute(update(providers).where(providers.c.id == row.id).values(deleted_at=func.now(), active=False))
            conn.execute(update(provider_models).where(provider_models.c.provider_id == row.id).values(active=False))

    def sync(self, public_id: str, *, raise_errors: bool = True) -> list[dict]:
        """Fetch the provider's /models and upsert catalog entries and provider-models."""
        with self.db.read() as conn:
            row = self._get_row(conn, public_id)
        try:
            upstream = self.inference.list_models(self.endpoint(row), timeout=self.sync_timeout)
        except ApiError as exc:
            self._failed_at[public_id] = time.monotonic()
            with self.db.transaction() as conn:
                conn.execute(update(providers).where(providers.c.id == row.id).values(last_sync_error=exc.message[:500]))
            log.warning("model sync of provider %s failed: %s", row.name, exc.message)
            if raise_errors:
                raise
            return []
        with self.db.transaction() as conn:
            stored = self._store_models(conn, row, upstream)
        self._failed_at.pop(public_id, None)
        return stored

    def _store_models(self, conn, provider, upstream: list[dict]) -> list[dict]:
        now = dt.datetime.now(dt.timezone.utc)
        seen: list[str] = []
        for entry in upstream:
            model_id = canonical_model_id(entry["id"], provider.vendor)
            if len(entry["id"]) > MAX_MODEL_ID_LENGTH or len(model_id) > MAX_MODEL_ID_LENGTH or not model_id:
                log.warning("provider %s lists a model id that cannot be stored: %.80r", provider.name, entry["id"])
                continue
            seen.append(model_id)
            catalog_id = conn.execute(
                pg_insert(model_catalogs).values(public_id=model_id, model_display_name=entry["id"],
                                                 last_synced_at=now)
                .on_conflict_do_update(index_elements=[model_catalogs.c.public_id],
                                       set_={"last_synced_at": now})
                .returning(model_catalogs.c.id)).scalar_one()
            conn.execute(
                pg_insert(provider_models).values(
                    public_id=ids.public_id("pmdl"), provider_id=provider.id, model_catalog_id=catalog_id,
                    model_public_id=model_id, provider_original_model_id=entry["id"],
                    model_display_name=entry["id"], active=True)
                .on_conflict_do_update(
                    index_elements=[provider_models.c.provider_id, provider_models.c.model_public_id],
                    set_={"provider_original_model_id": entry["id"], "model_catalog_id": catalog_id,
                          "updated_at": now}))
        # Models the provider no longer serves must not be routed to.
        conn.execute(update(provider_models).where(
            provider_models.c.provider_id == provider.id, provider_models.c.model_public_id.notin_(seen))
            .values(active=False, updated_at=now))
        conn.execute(update(providers).where(providers.c.id == provider.id)
                     .values(last_synced_at=now, last_sync_error=None))
        rows = conn.execute(select(provider_models).where(provider_models.c.provider_id == provider.id,
                                                          provider_models.c.model_public_id.in_(seen))).all()
        return [{"id": row.model_public_id, "object": "model", "created": int(row.created_at.timestamp()),
                 "owned_by": provider.name} for row in rows]

    def stale_provider_ids(self, ttl_seconds: int) -> list[str]:
        cutoff = dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=ttl_seconds)
        with self.db.read() as conn:
            return list(conn.execute(select(providers.c.public_id).where(
                providers.c.deleted_at.is_(None), providers.c.active,
                (providers.c.last_synced_at.is_(None)) | (providers.c.last_synced_at < cutoff))).scalars())

    def try_sync_stale(self, ttl_seconds: int) -> None:
        """Refresh stale providers, one pod at a time (a transaction-scoped advisory lock), never failing the caller."""
        now = time.monotonic()
        stale = [public_id for public_id in self.stale_provider_ids(ttl_seconds)
                 if now - self._failed_at.get(public_id, float("-inf")) >= SYNC_RETRY_SECONDS]
        if not stale:
            return
        with self.db.transaction() as conn:
            if not conn.execute(text("SELECT pg_try_advisory_xact_lock(727001)")).scalar():
                return
            for public_id in stale:
                try:
                    self.sync(public_id, raise_errors=False)
                except Exception:  # a misbehaving provider must never fail the caller's listing
                    self._failed_at[public_id] = time.monotonic()
                    log.exception("model sync of provider %s failed", public_id)



