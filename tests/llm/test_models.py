"""Models, catalogs and providers through HTTP: the public /v1/models surface (OpenAI's list shape plus Jan's
fields), model sync from each provider's /v1/models, provider keys encrypted at rest, TTL refresh, and Jan's
admin routes for providers, catalogs and provider-models."""
from __future__ import annotations

import re
import uuid

import pytest
from sqlalchemy import select, text

from shared.errors import ERROR_TYPES, NotFound
from shared.domain.models.tables import model_catalogs, provider_models, providers
from tests.conftest import TEST_MODEL, TEST_MODEL_ID
from tests.doubles import ScriptedUpstream

pytestmark = pytest.mark.usefixtures("provider")

PUBLIC_PROVIDER_KEYS = {"id", "name", "vendor", "active", "category"}


def assert_error(response, status: int, message: str, *, code: str | None = None, param: str | None = None):
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.json == {
        "error": {"message": message, "type": ERROR_TYPES[status], "param": param, "code": code},
        "message": message,
        "request_id": response.headers["X-Request-Id"],
    }


def model_ids(account, **headers) -> list[str]:
    response = account.get("/v1/models", headers=headers)
    assert response.status_code == 200, response.json
    return [entry["id"] for entry in response.json["data"]]


def unique(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:8]}"


class Providers:
    """Extra providers for one test: each a ScriptedUpstream of its own, removed again afterwards."""

    def __init__(self, llm):
        self.llm = llm
        self.upstreams: list[ScriptedUpstream] = []
        self.ids: list[str] = []

    def upstream(self, models, api_key: str | None = None) -> ScriptedUpstream:
        server = ScriptedUpstream(models=models, api_key=api_key).start()
        self.upstreams.append(server)
        return server

    def make(self, models, *, api_key: str | None = None, vendor: str | None = None) -> tuple[dict, ScriptedUpstream]:
        server = self.upstream(models, api_key)
        body = {"name": unique("prov-"), "vendor": vendor or unique("v"), "base_url": server.base_url}
        if api_key:
            body["api_key"] = api_key
        created = self.llm.providers.register(body)
        self.track(created["id"])
        self.llm.catalog.invalidate_routes()
        return created, server

    def track(self, public_id: str) -> None:
        self.ids.append(public_id)

    def close(self) -> None:
        for public_id in self.ids:
            try:
                self.llm.providers.delete(public_id)
            except NotFound:
                pass
        self.llm.catalog.invalidate_routes()
        for server in self.upstreams:
            server.stop()


@pytest.fixture
def extra(llm):
    made = Providers(llm)
    yield made
    made.close()


@pytest.fixture
def db(app):
    return app.extensions["jan"].db


def provider_row(db, public_id: str):
    with db.read() as conn:
        return conn.execute(select(providers).where(providers.c.public_id == public_id)).one()


def chat(account, model: str):
    return account.post("/v1/chat/completions", json={"model": model, "messages": [{"role": "user", "content": "hi"}]})


# /v1/models -------------------------------------------------------------------------------------------------

def test_model_list_is_openai_list_with_jan_fields(guest):
    response = guest.get("/v1/models")
    assert response.status_code == 200
    body = response.json
    assert set(body) == {"object", "data", "first_id", "last_id", "has_more"}
    assert body["object"] == "list" and body["has_more"] is False
    assert body["first_id"] == body["data"][0]["id"] and body["last_id"] == body["data"][-1]["id"]
    entry = next(entry for entry in body["data"] if entry["id"] == TEST_MODEL_ID)
    assert isinstance(entry.pop("created"), int)
    assert entry == {"id": TEST_MODEL_ID, "object": "model", "owned_by": "scripted", "model_display_name": TEST_MODEL,
                     "category": "chat", "category_order_number": 0, "model_order_number": 0}


def test_model_list_is_ordered_by_category_then_model_order_with_unset_zero_last(guest, extra, db):
    """Jan: category_order_number, then model_order_number, each with 0 ("unset") after every set number."""
    created, _server = extra.make(["z-a", "z-b", "z-c", "z-d", "z-e"])
    orders = {"z-a": (0, 1), "z-b": (2, 0), "z-c": (1, 2), "z-d": (1, 0), "z-e": (1, 1)}
    with db.transaction() as conn:
        for model in created["models"]:
            category, position = orders[model["id"].split("/", 1)[1]]
            conn.execute(provider_models.update().where(provider_models.c.model_public_id == model["id"])
                         .values(category_order_number=category, model_order_number=position))
    ours = {model["id"] for model in created["models"]}
    mine = [model_id.split("/", 1)[1] for model_id in model_ids(guest) if model_id in ours]
    assert mine == ["z-e", "z-c", "z-d", "z-b", "z-a"]


def test_model_list_also_served_under_llm_prefix(guest):
    assert guest.get("/llm/v1/models").json == guest.get("/v1/models").json


def test_model_list_dedups_by_id_and_provider_data_header_gives_one_row_per_provider(guest, extra, provider):
    mirror, _ = extra.make([TEST_MODEL], vendor="scripted")
    assert model_ids(guest).count(TEST_MODEL_ID) == 1

    response = guest.get("/v1/models", headers={"X-PROVIDER-DATA": "true"})
    rows = [entry for entry in response.json["data"] if entry["id"] == TEST_MODEL_ID]
    assert [(row["provider_id"], row["provider_vendor"], row["provider_name"]) for row in rows] == [
        (provider["id"], "scripted", "scripted"), (mirror["id"], "scripted", mirror["name"])]
    assert [row["owned_by"] for row in rows] == ["scripted", mirror["name"]]


def test_model_list_without_provider_data_header_has_no_provider_fields(guest):
    for entry in guest.get("/v1/models", headers={"X-PROVIDER-DATA": "false"}).json["data"]:
        assert not {"provider_id", "provider_vendor", "provider_name"} & set(entry)


def test_get_model_with_slash_in_id_returns_the_list_entry(guest):
    listed = next(entry for entry in guest.get("/v1/models").json["data"] if entry["id"] == TEST_MODEL_ID)
    for path in (f"/v1/models/{TEST_MODEL_ID}", f"/llm/v1/models/{TEST_MODEL_ID}"):
        response = guest.get(path)
        assert response.status_code == 200
        assert response.json == listed


def test_get_unknown_model_is_404_not_found_error(guest, snapshot):
    before = snapshot()
    for model in ("nobody/nothing", "test-model", "scripted/test-model/extra"):
        assert_error(guest.get(f"/v1/models/{model}"), 404, f"model '{model}' not found", code="model_not_found",
                     param="model")
    assert snapshot() == before


# /v1/models/catalogs/{id…} -----------------------------------------------------------------------------------

CATALOG_KEYS = {
    "id", "public_id", "model_display_name", "description", "supported_parameters", "architecture", "tags", "notes",
    "context_length", "is_moderated", "active", "extras", "status", "family", "experimental",
    "requires_feature_flag", "last_synced_at", "created_at", "updated_at",
    *(f"supports_{c}" for c in ("images", "embeddings", "reasoning", "instruct", "audio", "video", "tools",
                                "browser")),
}


def test_catalog_entry_by_id_with_slash_or_encoded_slash(guest):
    plain = guest.get(f"/v1/models/catalogs/{TEST_MODEL_ID}")
    assert plain.status_code == 200
    assert set(plain.json) == CATALOG_KEYS
    assert plain.json["id"] == plain.json["public_id"] == TEST_MODEL_ID
    assert plain.json["model_display_name"] == TEST_MODEL
    assert plain.json["experimental"] is False and plain.json["active"] is True
    assert isinstance(plain.json["last_synced_at"], int)
    encoded = guest.get("/v1/models/catalogs/scripted%2Ftest-model")
    assert encoded.status_code == 200
    assert encoded.json == plain.json
    assert guest.get(f"/llm/v1/models/catalogs/{TEST_MODEL_ID}").json == plain.json


def test_unknown_catalog_is_404(guest):
    assert_error(guest.get("/v1/models/catalogs/nobody/nothing"), 404, "model catalog not found")


@pytest.mark.parametrize("change", [{"experimental": True}, {"requires_feature_flag": "beta-models"}])
def test_experimental_or_flagged_catalog_hidden_from_public_route_but_visible_to_admin(guest, admin, extra, change):
    _, _ = extra.make(["hidden-one"], vendor=(vendor := unique("v")))
    model = f"{vendor}/hidden-one"
    assert guest.get(f"/v1/models/catalogs/{model}").status_code == 200

    assert admin.patch(f"/v1/admin/models/catalogs/{model}", json=change).status_code == 200
    assert_error(guest.get(f"/v1/models/catalogs/{model}"), 404, "model catalog not found")
    shown = admin.get(f"/v1/admin/models/catalogs/{model}")
    assert shown.status_code == 200
    assert {key: shown.json[key] for key in change} == change


# /v1/models/providers ---------------------------------------------------------------------------------------

def test_public_provider_list_is_bare_array_without_url_or_key(guest, extra):
    secret = "sk-public-list-secret-9876"
    created, _ = extra.make(["p-model"], api_key=secret)
    response = guest.get("/v1/models/providers")
    assert response.status_code == 200
    assert isinstance(response.json, list)
    for entry in response.json:
        assert set(entry) == PUBLIC_PROVIDER_KEYS
    assert {"id": created["id"], "name": created["name"], "vendor": created["vendor"], "active": True,
            "category": "llm"} in response.json
    raw = response.get_data(as_text=True)
    assert secret not in raw and "9876" not in raw and "127.0.0.1" not in raw


def test_public_provider_list_omits_inactive_providers(guest, admin, extra):
    created, _ = extra.make(["q-model"])
    assert admin.patch(f"/v1/admin/providers/{created['id']}", json={"active": False}).status_code == 200
    assert created["id"] not in [entry["id"] for entry in guest.get("/v1/models/providers").json]


# Sync and canonical ids -------------------------------------------------------------------------------------

def test_registering_a_provider_through_admin_api_syncs_its_models(admin, guest, extra):
    server = extra.upstream(["Alpha_One", "Beta Model 2", "meta-llama/Llama-3.1-8B"])
    name = unique("second-")
    response = admin.post("/v1/admin/providers",
                          json={"name": name, "vendor": "Acme", "base_url": server.base_url + "/"})
    assert response.status_code == 200, response.json
    created = response.json
    extra.track(created["id"])
    assert re.fullmatch(r"prov_[0-9a-z]{16}", created["id"])
    assert created["name"] == name and created["vendor"] == "acme" and created["active"] is True
    assert created["base_url"] == server.base_url
    assert created["endpoints"] == [{"url": server.base_url, "weight": 1, "priority": 0, "healthy": True}]
    assert created["api_key_hint"] is None and created["last_sync_error"] is None
    assert isinstance(created["last_synced_at"], int)
    assert sorted(model["id"] for model in created["models"]) == [
        "acme/alpha-one", "acme/beta-model-2", "meta-llama/llama-3.1-8b"]
    assert all(model["object"] == "model" and model["owned_by"] == name for model in created["models"])
    assert [request.path for request in server.requests] == ["/v1/models"]

    listed = model_ids(guest)
    assert {"acme/alpha-one", "acme/beta-model-2", "meta-llama/llama-3.1-8b"} <= set(listed)


def test_chat_with_a_canonical_id_reaches_upstream_with_its_original_id(guest, extra):
    _, server = extra.make(["Beta_Model 2"], vendor="Acme Labs")
    models = model_ids(guest)
    canonical = next(model for model in models if model.endswith("/beta-model-2") and "acme" in model)
    response = chat(guest, canonical)
    assert response.status_code == 200, response.json
    assert server.requests[-1].body["model"] == "Beta_Model 2"


def test_models_that_disappear_upstream_become_inactive_and_unroutable(admin, guest, extra):
    created, server = extra.make(["stays", "goes"], vendor=(vendor := unique("v")))
    assert chat(guest, f"{vendor}/goes").status_code == 200

    server.models.remove("goes")
    response = admin.post(f"/v1/admin/providers/{created['id']}/sync")
    assert response.status_code == 200
    assert response.json["object"] == "list"
    assert [model["id"] for model in response.json["data"]] == [f"{vendor}/stays"]

    assert f"{vendor}/goes" not in model_ids(guest)
    assert f"{vendor}/stays" in model_ids(guest)
    assert_error(chat(guest, f"{vendor}/goes"), 404, f"model '{vendor}/goes' not found", code="model_not_found",
                 param="model")
    assert_error(guest.get(f"/v1/models/{vendor}/goes"), 404, f"model '{vendor}/goes' not found",
                 code="model_not_found", param="model")
    rows = admin.get("/v1/admin/models/provider-models", query_string={"provider_id": created["id"]}).json["data"]
    assert {row["model_public_id"]: row["active"] for row in rows} == {f"{vendor}/stays": True,
                                                                       f"{vendor}/goes": False}


def test_sync_of_unknown_provider_is_404(admin):
    assert_error(admin.post("/v1/admin/providers/prov_0000000000000000/sync"), 404, "provider not found")


def test_sync_of_a_provider_that_is_down_is_502_and_recorded(admin, db, extra):
    created, server = extra.make(["m"])
    server.stop()
    response = admin.post(f"/v1/admin/providers/{created['id']}/sync")
    assert response.status_code == 502
    assert response.json["error"]["type"] == "upstream_error"
    assert provider_row(db, created["id"]).last_sync_error


# Provider API keys ------------------------------------------------------------------------------------------

def test_provider_api_key_is_encrypted_at_rest_and_sent_upstream_as_bearer(admin, guest, db, snapshot, extra):
    secret = "sk-upstream-" + uuid.uuid4().hex
    server = extra.upstream(["keyed-model"], api_key=secret)
    response = admin.post("/v1/admin/providers", json={"name": unique("keyed-"), "vendor": (vendor := unique("v")),
                                                       "base_url": server.base_url, "api_key": secret})
    assert response.status_code == 200, response.json
    extra.track(response.json["id"])
    assert response.json["api_key_hint"] == "…" + secret[-4:]
    assert [model["id"] for model in response.json["models"]] == [f"{vendor}/keyed-model"]
    assert secret not in response.get_data(as_text=True)

    row = provider_row(db, response.json["id"])
    assert row.api_key_hint == "…" + secret[-4:]
    assert row.encrypted_api_key.startswith("v1:") and secret not in row.encrypted_api_key
    assert secret not in repr(snapshot())  # nowhere in any table

    assert server.requests[-1].headers["authorization"] == f"Bearer {secret}"
    assert chat(guest, f"{vendor}/keyed-model").status_code == 200
    assert server.requests[-1].headers["authorization"] == f"Bearer {secret}"

    shown = admin.get(f"/v1/admin/providers/{response.json['id']}")
    assert secret not in shown.get_data(as_text=True)
    assert "api_key" not in shown.json and "encrypted_api_key" not in shown.json


def test_wrong_provider_key_records_sync_error_and_serves_no_models(admin, db, extra):
    server = extra.upstream(["locked"], api_key="sk-the-right-key-0001")
    response = admin.post("/v1/admin/providers", json={"name": unique("wrong-"), "vendor": unique("v"),
                                                       "base_url": server.base_url, "api_key": "sk-wrong-key-0002"})
    assert response.status_code == 200, response.json
    extra.track(response.json["id"])
    assert response.json["models"] == []
    assert response.json["last_sync_error"]
    assert "401" in provider_row(db, response.json["id"]).last_sync_error


def test_patching_provider_key_reencrypts_and_next_sync_uses_it(admin, db, extra):
    created, server = extra.make(["rotating"], api_key="sk-first-key-aaaa1111")
    old = provider_row(db, created["id"]).encrypted_api_key
    server.api_key = "sk-second-key-bbbb2222"
    response = admin.patch(f"/v1/admin/providers/{created['id']}", json={"api_key": "sk-second-key-bbbb2222"})
    assert response.status_code == 200
    assert response.json["api_key_hint"] == "…2222"
    row = provider_row(db, created["id"])
    assert row.encrypted_api_key != old and "sk-second-key" not in row.encrypted_api_key
    assert admin.post(f"/v1/admin/providers/{created['id']}/sync").status_code == 200
    assert server.requests[-1].headers["authorization"] == "Bearer sk-second-key-bbbb2222"


# TTL refresh ------------------------------------------------------------------------------------------------

def make_stale(db, public_id: str) -> None:
    with db.transaction() as conn:
        conn.execute(text("UPDATE providers SET last_synced_at = now() - interval '30 days' WHERE public_id = :id"),
                     {"id": public_id})


def test_model_listing_resyncs_a_provider_whose_catalog_is_older_than_the_ttl(guest, db, extra):
    created, server = extra.make(["first"], vendor=(vendor := unique("v")))
    server.models.append("second")
    assert f"{vendor}/second" not in model_ids(guest)  # fresh: no sync per listing

    make_stale(db, created["id"])
    assert f"{vendor}/second" in model_ids(guest)
    assert [request.path for request in server.requests] == ["/v1/models", "/v1/models"]
    row = provider_row(db, created["id"])
    assert row.last_sync_error is None
    with db.read() as conn:
        assert conn.execute(text("SELECT now() - :t < interval '1 minute'"), {"t": row.last_synced_at}).scalar()


def test_a_provider_that_is_down_does_not_fail_the_listing_and_records_the_error(guest, db, extra):
    created, server = extra.make(["down-model"])
    server.stop()
    make_stale(db, created["id"])
    response = guest.get("/v1/models")
    assert response.status_code == 200
    assert TEST_MODEL_ID in [entry["id"] for entry in response.json["data"]]
    assert provider_row(db, created["id"]).last_sync_error


def test_a_failing_provider_is_not_retried_on_every_listing(guest, admin, db, extra, monkeypatch):
    server = extra.upstream(["guarded"], api_key="sk-right-key-0001")
    response = admin.post("/v1/admin/providers", json={"name": unique("failing-"), "vendor": unique("v"),
                                                       "base_url": server.base_url, "api_key": "sk-wrong-key-0002"})
    extra.track(response.json["id"])
    assert response.json["last_sync_error"]
    make_stale(db, response.json["id"])
    for _ in range(3):
        assert guest.get("/v1/models").status_code == 200
    assert len(server.requests) == 1  # the registration's sync only

    assert admin.post(f"/v1/admin/providers/{response.json['id']}/sync").status_code == 502  # admin always tries
    assert len(server.requests) == 2

    from shared.domain.models import providers as providers_module
    monkeypatch.setattr(providers_module, "SYNC_RETRY_SECONDS", 0.0)
    guest.get("/v1/models")
    assert len(server.requests) == 3


def test_a_provider_listing_a_bad_model_id_does_not_fail_the_listing(guest, db, extra):
    created, server = extra.make(["fine-model"], vendor=(vendor := unique("v")))
    server.models.append("x" * 300)
    make_stale(db, created["id"])
    response = guest.get("/v1/models")
    assert response.status_code == 200
    assert f"{vendor}/fine-model" in [entry["id"] for entry in response.json["data"]]


# Admin: providers -------------------------------------------------------------------------------------------

def test_admin_provider_get_list_patch(admin, extra):
    created, server = extra.make(["m1", "m2"], vendor=(vendor := unique("v")))
    shown = admin.get(f"/v1/admin/providers/{created['id']}")
    assert shown.status_code == 200
    assert {key: shown.json[key] for key in ("id", "name", "vendor", "base_url", "active", "category")} == {
        "id": created["id"], "name": created["name"], "vendor": vendor, "base_url": server.base_url, "active": True,
        "category": "llm"}

    listed = admin.get("/v1/admin/providers")
    assert listed.status_code == 200 and isinstance(listed.json, list)
    row = next(entry for entry in listed.json if entry["id"] == created["id"])
    assert (row["model_count"], row["model_active_count"]) == (2, 2)

    new_name = unique("renamed-")
    response = admin.patch(f"/v1/admin/providers/{created['id']}",
                           json={"name": new_name, "metadata": {"team": "ml"}, "category": "image"})
    assert response.status_code == 200
    assert (response.json["name"], response.json["metadata"], response.json["category"]) == (
        new_name, {"team": "ml"}, "image")
    assert admin.get(f"/v1/admin/providers/{created['id']}").json["name"] == new_name


def test_deactivating_a_provider_removes_its_models_from_the_list(admin, guest, extra):
    created, _ = extra.make(["off-model"], vendor=(vendor := unique("v")))
    assert f"{vendor}/off-model" in model_ids(guest)
    assert admin.patch(f"/v1/admin/providers/{created['id']}", json={"active": False}).json["active"] is False
    assert f"{vendor}/off-model" not in model_ids(guest)
    assert chat(guest, f"{vendor}/off-model").status_code == 404
    assert admin.patch(f"/v1/admin/providers/{created['id']}", json={"active": True}).status_code == 200
    assert f"{vendor}/off-model" in model_ids(guest)


def test_deleting_a_provider_removes_it_and_its_models(admin, guest, extra):
    created, _ = extra.make(["gone-model"], vendor=(vendor := unique("v")))
    assert chat(guest, f"{vendor}/gone-model").status_code == 200
    response = admin.delete(f"/v1/admin/providers/{created['id']}")
    assert response.status_code == 204 and response.data == b""
    assert f"{vendor}/gone-model" not in model_ids(guest)
    assert chat(guest, f"{vendor}/gone-model").status_code == 404
    assert_error(admin.get(f"/v1/admin/providers/{created['id']}"), 404, "provider not found")
    assert_error(admin.delete(f"/v1/admin/providers/{created['id']}"), 404, "provider not found")
    assert created["id"] not in [entry["id"] for entry in admin.get("/v1/admin/providers").json]
    assert created["id"] not in [entry["id"] for entry in guest.get("/v1/models/providers").json]


def test_a_deleted_providers_name_can_be_reused(admin, extra):
    created, server = extra.make(["reuse"])
    assert admin.delete(f"/v1/admin/providers/{created['id']}").status_code == 204
    again = admin.post("/v1/admin/providers", json={"name": created["name"], "vendor": "x",
                                                    "base_url": server.base_url})
    assert again.status_code == 200, again.json
    extra.track(again.json["id"])


def test_deleting_a_provider_with_a_maximal_name_works(admin, extra):
    server = extra.upstream(["long"])
    response = admin.post("/v1/admin/providers", json={"name": "n" * 247 + uuid.uuid4().hex[:8], "vendor": "x",
                                                       "base_url": server.base_url})
    assert response.status_code == 200, response.json
    extra.track(response.json["id"])
    assert admin.delete(f"/v1/admin/providers/{response.json['id']}").status_code == 204


def test_duplicate_provider_name_is_409(admin, snapshot, extra):
    created, server = extra.make(["dup"])
    before = snapshot()
    response = admin.post("/v1/admin/providers", json={"name": created["name"], "vendor": "other",
                                                       "base_url": server.base_url})
    assert_error(response, 409, "a provider with this name already exists", param="name")
    other, _ = extra.make(["dup2"])
    before = snapshot()
    assert_error(admin.patch(f"/v1/admin/providers/{other['id']}", json={"name": created["name"]}), 409,
                 "a provider with this name already exists", param="name")
    assert snapshot() == before


@pytest.mark.parametrize("body, message, param", [
    ({"vendor": "x", "base_url": "http://127.0.0.1:1/v1"}, "name is required", "name"),
    ({"name": "x", "base_url": "http://127.0.0.1:1/v1"}, "vendor is required", "vendor"),
    ({"name": "x", "vendor": "x"}, "base_url is required", "base_url"),
    ({"name": "x", "vendor": "x", "base_url": "ftp://example.com"}, "base_url must be an http(s) URL", "base_url"),
    ({"name": "x", "vendor": "x", "base_url": 7}, "base_url must be an http(s) URL", "base_url"),
    ({"name": 7, "vendor": "x", "base_url": "http://127.0.0.1:1/v1"}, "name is required", "name"),
    ({"name": "x", "vendor": "x", "base_url": "http://127.0.0.1:1/v1", "api_key": 5}, "api_key must be a string",
     "api_key"),
    ({"name": "x", "vendor": "x", "base_url": "http://127.0.0.1:1/v1", "metadata": []}, "metadata must be an object",
     "metadata"),
    ({"name": "x", "vendor": "x", "base_url": "http://127.0.0.1:1/v1", "active": "yes"}, "active must be a boolean",
     "active"),
    ({"name": "x", "vendor": "x", "base_url": "http://127.0.0.1:1/v1", "category": 5}, "category must be a string",
     "category"),
    ({"name": "x", "vendor": "x", "base_url": "http://127.0.0.1:1/v1", "category": "c" * 17},
     "category must be at most 16 characters", "category"),
])
def test_register_provider_with_bad_body_is_400_and_stores_nothing(admin, snapshot, body, message, param):
    before = snapshot()
    assert_error(admin.post("/v1/admin/providers", json=body), 400, message, param=param)
    assert snapshot() == before


@pytest.mark.parametrize("body, message, param", [
    ({"name": None}, "name must be a non-empty string", "name"),
    ({"name": "  "}, "name must be a non-empty string", "name"),
    ({"name": "n" * 256}, "name must be at most 255 characters", "name"),
    ({"active": None}, "active must be a boolean", "active"),
    ({"active": "no"}, "active must be a boolean", "active"),
    ({"base_url": "not a url"}, "base_url must be an http(s) URL", "base_url"),
    ({"metadata": "x"}, "metadata must be an object", "metadata"),
    ({"category": None}, "category must be a string", "category"),
    ({"category": "c" * 17}, "category must be at most 16 characters", "category"),
])
def test_patch_provider_with_bad_body_is_400_and_changes_nothing(admin, snapshot, extra, body, message, param):
    created, _ = extra.make(["patch-me"])
    before = snapshot()
    assert_error(admin.patch(f"/v1/admin/providers/{created['id']}", json=body), 400, message, param=param)
    assert snapshot() == before


def test_unknown_provider_is_404_on_every_admin_provider_route(admin, snapshot):
    before = snapshot()
    missing = "prov_zzzzzzzzzzzzzzzz"
    for response in (admin.get(f"/v1/admin/providers/{missing}"),
                     admin.patch(f"/v1/admin/providers/{missing}", json={"active": False}),
                     admin.delete(f"/v1/admin/providers/{missing}"),
                     admin.post(f"/v1/admin/providers/{missing}/sync")):
        assert_error(response, 404, "provider not found")
    assert snapshot() == before


# Admin: catalogs --------------------------------------------------------------------------------------------

@pytest.fixture
def family(admin, extra):
    """Three catalog entries of a provider of their own, tagged with a family no other test uses."""
    _, _ = extra.make(["c-one", "c-two", "c-three"], vendor=(vendor := unique("v")))
    name = unique("fam-")
    ids = [f"{vendor}/c-one", f"{vendor}/c-two", f"{vendor}/c-three"]
    for catalog_id in ids:
        assert admin.patch(f"/v1/admin/models/catalogs/{catalog_id}", json={"family": name}).status_code == 200
    return name, ids


def test_admin_catalog_list_shape_filter_and_paging(admin, family):
    name, ids = family
    response = admin.get("/v1/admin/models/catalogs", query_string={"family": name})
    assert response.status_code == 200
    assert set(response.json) == {"data", "total", "limit"}
    assert (response.json["total"], response.json["limit"]) == (3, 20)
    assert [entry["id"] for entry in response.json["data"]] == ids[::-1]  # default order: newest first
    assert all(set(entry) == CATALOG_KEYS for entry in response.json["data"])

    ascending = admin.get("/v1/admin/models/catalogs", query_string={"family": name, "order": "asc"}).json
    assert [entry["id"] for entry in ascending["data"]] == ids
    first = admin.get("/v1/admin/models/catalogs", query_string={"family": name, "order": "asc", "limit": 2}).json
    second = admin.get("/v1/admin/models/catalogs",
                       query_string={"family": name, "order": "asc", "limit": 2, "offset": 2}).json
    assert (first["total"], first["limit"], [e["id"] for e in first["data"]]) == (3, 2, ids[:2])
    assert (second["total"], [e["id"] for e in second["data"]]) == (3, ids[2:])
    beyond = admin.get("/v1/admin/models/catalogs", query_string={"family": name, "offset": 10}).json
    assert (beyond["data"], beyond["total"]) == ([], 3)


def test_admin_catalog_list_boolean_and_status_filters(admin, family):
    name, ids = family
    assert admin.patch(f"/v1/admin/models/catalogs/{ids[0]}",
                       json={"supports_tools": True, "is_moderated": True}).status_code == 200

    def listed(**query):
        response = admin.get("/v1/admin/models/catalogs", query_string={"family": name, **query})
        assert response.status_code == 200, response.json
        return sorted(entry["id"] for entry in response.json["data"])

    assert listed(supports_tools="true") == [ids[0]]
    assert listed(supports_tools="false") == sorted(ids[1:])
    assert listed(is_moderated="true") == [ids[0]]
    assert listed(status="updated") == sorted(ids)
    assert listed(status="init") == []
    assert listed(active="true") == sorted(ids)
    assert listed(active="FALSE") == []


@pytest.mark.parametrize("query, message, param", [
    ({"limit": "0"}, "limit must be between 1 and 1000", "limit"),
    ({"limit": "1001"}, "limit must be between 1 and 1000", "limit"),
    ({"limit": "x"}, "limit must be an integer", "limit"),
    ({"offset": "-1"}, "offset must be between 0 and 1000000000", "offset"),
    ({"offset": "1.5"}, "offset must be an integer", "offset"),
    ({"order": "sideways"}, "order must be 'asc' or 'desc'", "order"),
    ({"active": "maybe"}, "active must be true or false", "active"),
    ({"supports_images": "1"}, "supports_images must be true or false", "supports_images"),
])
@pytest.mark.parametrize("path", ["/v1/admin/models/catalogs", "/v1/admin/models/provider-models"])
def test_admin_list_pagination_and_filter_validation(admin, path, query, message, param):
    assert_error(admin.get(path, query_string=query), 400, message, param=param)


def test_patch_catalog_changes_fields_and_marks_it_updated_so_sync_keeps_it(admin, db, extra):
    created, server = extra.make(["editable"], vendor=(vendor := unique("v")))
    catalog_id = f"{vendor}/editable"
    assert admin.get(f"/v1/admin/models/catalogs/{catalog_id}").json["status"] == "init"
    change = {"model_display_name": "Editable Model", "description": "a test model", "context_length": 8192,
              "supports_tools": True, "supports_images": True, "tags": ["fast", "small"],
              "supported_parameters": {"names": ["temperature"], "default": {"temperature": 0.7}},
              "extras": {"k": "v"}, "notes": "n", "is_moderated": False}
    response = admin.patch(f"/v1/admin/models/catalogs/{catalog_id}", json=change)
    assert response.status_code == 200, response.json
    assert {key: response.json[key] for key in change} == change
    assert response.json["status"] == "updated"

    assert admin.post(f"/v1/admin/providers/{created['id']}/sync").status_code == 200
    after = admin.get(f"/v1/admin/models/catalogs/{catalog_id}").json
    assert after["status"] == "updated"
    assert {key: after[key] for key in change} == change


@pytest.mark.parametrize("body, message, param", [
    ({"active": None}, "active must not be null", "active"),
    ({"experimental": None}, "experimental must not be null", "experimental"),
    ({"supports_tools": None}, "supports_tools must not be null", "supports_tools"),
    ({"active": "yes"}, "active must be a boolean", "active"),
    ({"context_length": 0}, "context_length must be at least 1", "context_length"),
    ({"context_length": "big"}, "context_length must be an integer", "context_length"),
    ({"context_length": 2**40}, "context_length must be at most 2147483647", "context_length"),
    ({"tags": "x"}, "tags must be a list of strings", "tags"),
    ({"extras": []}, "extras must be an object", "extras"),
    ({"model_display_name": 5}, "model_display_name must be a string", "model_display_name"),
    ({"family": "f" * 129}, "family must be at most 128 characters", "family"),
    ({"requires_feature_flag": "f" * 129}, "requires_feature_flag must be at most 128 characters",
     "requires_feature_flag"),
    ({"model_display_name": "m" * 256}, "model_display_name must be at most 255 characters", "model_display_name"),
])
def test_patch_catalog_with_bad_body_is_400_and_changes_nothing(admin, snapshot, body, message, param):
    before = snapshot()
    assert_error(admin.patch(f"/v1/admin/models/catalogs/{TEST_MODEL_ID}", json=body), 400, message, param=param)
    assert snapshot() == before


def test_patch_unknown_catalog_is_404(admin, snapshot):
    before = snapshot()
    assert_error(admin.patch("/v1/admin/models/catalogs/nobody/nothing", json={"notes": "x"}), 404,
                 "model catalog not found")
    assert_error(admin.get("/v1/admin/models/catalogs/nobody/nothing"), 404, "model catalog not found")
    assert snapshot() == before


def test_bulk_toggle_catalogs_disables_and_reenables_models(admin, guest, family):
    _, ids = family
    response = admin.post("/v1/admin/models/catalogs/bulk-toggle",
                          json={"enable": False, "catalog_ids": ids, "except_models": [ids[2]]})
    assert response.status_code == 200, response.json
    assert response.json == {"updated_count": 2, "skipped_count": 1, "failed_count": 0, "total_checked": 3}
    listed = model_ids(guest)
    assert ids[0] not in listed and ids[1] not in listed and ids[2] in listed
    assert chat(guest, ids[0]).status_code == 404
    assert admin.get(f"/v1/admin/models/catalogs/{ids[0]}").json["active"] is False

    response = admin.post("/v1/admin/models/catalogs/bulk-toggle", json={"enable": True, "catalog_ids": ids[:2]})
    assert response.json["updated_count"] == 2
    assert set(ids) <= set(model_ids(guest))
    assert chat(guest, ids[0]).status_code == 200


def test_bulk_toggle_all_catalogs_honours_except_models(admin, guest):
    everything = [entry["id"] for entry in admin.get("/v1/admin/models/catalogs",
                                                     query_string={"limit": 1000}).json["data"]]
    response = admin.post("/v1/admin/models/catalogs/bulk-toggle", json={"enable": False,
                                                                         "except_models": everything})
    assert response.status_code == 200
    assert response.json["updated_count"] == 0
    assert TEST_MODEL_ID in model_ids(guest)


@pytest.mark.parametrize("body, status, message, param", [
    ({"enable": True, "catalog_ids": ["nobody/nothing"]}, 404, "model catalog not found: nobody/nothing", None),
    ({"enable": False, "catalog_ids": [TEST_MODEL_ID, "nobody/nothing"]}, 404,
     "model catalog not found: nobody/nothing", None),
    ({"enable": False, "except_models": [f"m{i}" for i in range(1001)]}, 400,
     "except_models may hold at most 1000 entries", "except_models"),
    ({"catalog_ids": [TEST_MODEL_ID]}, 400, "enable is required", "enable"),
    ({"enable": None, "catalog_ids": [TEST_MODEL_ID]}, 400, "enable is required", "enable"),
    ({"enable": "false", "catalog_ids": [TEST_MODEL_ID]}, 400, "enable must be a boolean", "enable"),
    ({"enable": False, "catalog_ids": TEST_MODEL_ID}, 400, "catalog_ids must be a list of strings", "catalog_ids"),
    ({"enable": False, "catalog_ids": [1]}, 400, "catalog_ids must be a list of strings", "catalog_ids"),
])
def test_bulk_toggle_catalogs_rejects_bad_requests_without_change(admin, snapshot, body, status, message, param):
    before = snapshot()
    assert_error(admin.post("/v1/admin/models/catalogs/bulk-toggle", json=body), status, message, param=param)
    assert snapshot() == before


def test_bulk_toggle_with_malformed_body_is_400_not_500(admin, snapshot):
    before = snapshot()
    for path in ("/v1/admin/models/catalogs/bulk-toggle", "/v1/admin/models/provider-models/bulk-toggle"):
        assert_error(admin.post(path, data='{"enable": fal', content_type="application/json"), 400,
                     "invalid JSON in request body")
    assert snapshot() == before


# Admin: provider-models -------------------------------------------------------------------------------------

PROVIDER_MODEL_KEYS = {
    "id", "provider_id", "provider_vendor", "model_catalog_id", "model_public_id", "provider_original_model_id",
    "model_display_name", "category", "category_order_number", "model_order_number", "pricing", "token_limits",
    "family", "active", "instruct_model_public_id", "created_at", "updated_at",
    *(f"supports_{c}" for c in ("images", "embeddings", "reasoning", "instruct", "audio", "video", "tools",
                                "browser")),
}


def test_provider_models_list_filters_and_get(admin, extra):
    created, _ = extra.make(["Pm_One", "pm-two"], vendor=(vendor := unique("v")))
    response = admin.get("/v1/admin/models/provider-models", query_string={"provider_id": created["id"]})
    assert response.status_code == 200
    assert set(response.json) == {"data", "total", "limit"}
    assert response.json["total"] == 2
    rows = {row["model_public_id"]: row for row in response.json["data"]}
    assert set(rows) == {f"{vendor}/pm-one", f"{vendor}/pm-two"}
    one = rows[f"{vendor}/pm-one"]
    assert set(one) == PROVIDER_MODEL_KEYS
    assert re.fullmatch(r"pmdl_[0-9a-z]{16}", one["id"])
    assert (one["provider_id"], one["provider_vendor"], one["model_catalog_id"], one["provider_original_model_id"],
            one["active"]) == (created["id"], vendor, f"{vendor}/pm-one", "Pm_One", True)

    def listed(**query):
        page = admin.get("/v1/admin/models/provider-models", query_string={"provider_id": created["id"], **query})
        assert page.status_code == 200, page.json
        return sorted(row["model_public_id"] for row in page.json["data"])

    assert listed(model_key=f"{vendor}/pm-two") == [f"{vendor}/pm-two"]
    assert listed(search="PM_O") == [f"{vendor}/pm-one"]  # case-insensitive; `_` is literal
    assert listed(search="%") == []
    assert listed(active="false") == []
    assert listed(supports_images="false") == sorted(rows)
    assert listed(limit=1)[0] in rows

    shown = admin.get(f"/v1/admin/models/provider-models/{one['id']}")
    assert shown.status_code == 200 and shown.json == one
    assert_error(admin.get("/v1/admin/models/provider-models/pmdl_zzzzzzzzzzzzzzzz"), 404, "provider model not found")


def test_patch_provider_model_changes_what_v1_models_shows(admin, guest, extra):
    created, _ = extra.make(["shown"], vendor=(vendor := unique("v")))
    row = admin.get("/v1/admin/models/provider-models", query_string={"provider_id": created["id"]}).json["data"][0]
    change = {"model_display_name": "Shown Model", "category": "vision", "category_order_number": 7,
              "model_order_number": 3, "pricing": {"prompt": 1}, "token_limits": {"context": 4096},
              "family": "fam", "supports_tools": True, "instruct_model_public_id": "x/y"}
    response = admin.patch(f"/v1/admin/models/provider-models/{row['id']}", json=change)
    assert response.status_code == 200, response.json
    assert {key: response.json[key] for key in change} == change

    entry = next(e for e in guest.get("/v1/models").json["data"] if e["id"] == f"{vendor}/shown")
    assert (entry["model_display_name"], entry["category"], entry["category_order_number"],
            entry["model_order_number"]) == ("Shown Model", "vision", 7, 3)

    assert admin.patch(f"/v1/admin/models/provider-models/{row['id']}", json={"active": False}).status_code == 200
    assert f"{vendor}/shown" not in model_ids(guest)
    assert chat(guest, f"{vendor}/shown").status_code == 404


@pytest.mark.parametrize("body, message, param", [
    ({"active": None}, "active must not be null", "active"),
    ({"supports_images": None}, "supports_images must not be null", "supports_images"),
    ({"category_order_number": None}, "category_order_number must not be null", "category_order_number"),
    ({"model_order_number": "1"}, "model_order_number must be an integer", "model_order_number"),
    ({"model_order_number": 2**31}, "model_order_number must be at most 2147483647", "model_order_number"),
    ({"model_display_name": None}, "model_display_name must not be null", "model_display_name"),
    ({"category": None}, "category must not be null", "category"),
    ({"category": "c" * 65}, "category must be at most 64 characters", "category"),
    ({"pricing": None}, "pricing must not be null", "pricing"),
    ({"pricing": [1]}, "pricing must be an object", "pricing"),
    ({"active": 1}, "active must be a boolean", "active"),
    ({"family": "f" * 129}, "family must be at most 128 characters", "family"),
])
def test_patch_provider_model_with_bad_body_is_400_and_changes_nothing(admin, snapshot, body, message, param):
    row = admin.get("/v1/admin/models/provider-models", query_string={"model_key": TEST_MODEL_ID}).json["data"][0]
    before = snapshot()
    assert_error(admin.patch(f"/v1/admin/models/provider-models/{row['id']}", json=body), 400, message, param=param)
    assert snapshot() == before


def test_patch_provider_model_token_limits_may_be_cleared(admin, extra):
    created, _ = extra.make(["limits"])
    row = admin.get("/v1/admin/models/provider-models", query_string={"provider_id": created["id"]}).json["data"][0]
    path = f"/v1/admin/models/provider-models/{row['id']}"
    assert admin.patch(path, json={"token_limits": {"context": 1}}).json["token_limits"] == {"context": 1}
    assert admin.patch(path, json={"token_limits": None}).json["token_limits"] is None


def test_patch_unknown_provider_model_is_404(admin, snapshot):
    before = snapshot()
    assert_error(admin.patch("/v1/admin/models/provider-models/pmdl_zzzzzzzzzzzzzzzz", json={"active": True}), 404,
                 "provider model not found")
    assert snapshot() == before


def test_bulk_toggle_provider_models_of_one_provider(admin, guest, extra):
    created, _ = extra.make(["b-one", "b-two", "b-three"], vendor=(vendor := unique("v")))
    response = admin.post("/v1/admin/models/provider-models/bulk-toggle",
                          json={"enable": False, "provider_id": created["id"], "except_models": [f"{vendor}/b-two"]})
    assert response.status_code == 200, response.json
    assert response.json == {"updated_count": 2}
    listed = model_ids(guest)
    assert f"{vendor}/b-one" not in listed and f"{vendor}/b-three" not in listed and f"{vendor}/b-two" in listed
    assert chat(guest, f"{vendor}/b-one").status_code == 404

    response = admin.post("/v1/admin/models/provider-models/bulk-toggle",
                          json={"enable": True, "provider_id": created["id"]})
    assert response.json == {"updated_count": 3}
    assert {f"{vendor}/b-one", f"{vendor}/b-two", f"{vendor}/b-three"} <= set(model_ids(guest))


@pytest.mark.parametrize("body, status, message, param", [
    ({"enable": True, "provider_id": "prov_zzzzzzzzzzzzzzzz"}, 404, "provider not found", None),
    ({"provider_id": "prov_zzzzzzzzzzzzzzzz"}, 400, "enable is required", "enable"),
    ({"enable": 0}, 400, "enable must be a boolean", "enable"),
    ({"enable": True, "provider_id": 5}, 400, "provider_id must be a string", "provider_id"),
    ({"enable": True, "except_models": [f"m{i}" for i in range(1001)]}, 400,
     "except_models may hold at most 1000 entries", "except_models"),
])
def test_bulk_toggle_provider_models_rejects_bad_requests_without_change(admin, snapshot, body, status, message,
                                                                          param):
    before = snapshot()
    assert_error(admin.post("/v1/admin/models/provider-models/bulk-toggle", json=body), status, message, param=param)
    assert snapshot() == before


def test_provider_models_rows_reference_their_catalog(db, extra):
    created, _ = extra.make(["linked"], vendor=(vendor := unique("v")))
    with db.read() as conn:
        row = conn.execute(
            select(provider_models.c.model_public_id, model_catalogs.c.public_id.label("catalog"))
            .join(model_catalogs, model_catalogs.c.id == provider_models.c.model_catalog_id)
            .join(providers, providers.c.id == provider_models.c.provider_id)
            .where(providers.c.public_id == created["id"])).one()
    assert row.model_public_id == row.catalog == f"{vendor}/linked"
