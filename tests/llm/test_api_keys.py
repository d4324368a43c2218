"""API keys through HTTP: one-time secrets, SHA-256-only storage, both header forms, revocation, expiry, TTLs,
the per-user limit, and Jan's validate-api-key contract."""
from __future__ import annotations

import datetime as dt
import hashlib
import re
import uuid

import pytest
from sqlalchemy import func, select, update

from shared.schema import api_keys

ERROR_TYPES = {400: "invalid_request_error", 401: "authentication_error", 404: "not_found_error"}
DAY = 86400
ITEM_KEYS = {"id", "name", "prefix", "suffix", "created_at", "expires_at", "status"}


def assert_error(response, status: int, message: str, *, param=None, code=None) -> None:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.json == {"error": {"message": message, "type": ERROR_TYPES[status], "param": param, "code": code},
                             "message": message, "request_id": response.headers["X-Request-Id"]}


@pytest.fixture
def bare(app):
    return app.test_client(use_cookies=False)


def parse_time(value: str) -> dt.datetime:
    assert value.endswith("Z"), value
    return dt.datetime.fromisoformat(value[:-1] + "+00:00")


def ttl_of(body: dict) -> float:
    return (parse_time(body["expires_at"]) - parse_time(body["created_at"])).total_seconds()


def create_key(account, **body) -> dict:
    response = account.post("/auth/api-keys", json={"name": "test key", **body})
    assert response.status_code == 201, response.json
    return response.json


def stored_row(app, key_id: str):
    with app.extensions["jan"].db.read() as conn:
        return conn.execute(select(api_keys).where(api_keys.c.id == key_id)).one()


def set_key(app, key_id: str, **values) -> None:
    with app.extensions["jan"].db.transaction() as conn:
        conn.execute(update(api_keys).where(api_keys.c.id == key_id).values(**values))


def test_create_returns_201_and_the_secret_once(user, app):
    body = create_key(user, name="laptop")
    assert set(body) == ITEM_KEYS | {"key"}
    assert re.fullmatch(r"sk_live_[0-9a-f]{48}", body["key"])
    assert uuid.UUID(body["id"]).version == 4
    assert (body["name"], body["prefix"], body["suffix"], body["status"]) == (
        "laptop", "sk_live", body["key"][-4:], "active")
    assert ttl_of(body) == pytest.approx(90 * DAY, abs=1)
    row = stored_row(app, body["id"])
    assert row.key_hash == hashlib.sha256(body["key"].encode()).hexdigest()
    assert body["key"] not in repr(tuple(row)) and body["key"][8:] not in repr(tuple(row))


def test_list_shows_items_without_secrets_or_hashes(user):
    created = create_key(user)
    response = user.get("/auth/api-keys")
    assert response.status_code == 200
    assert list(response.json) == ["items"]
    (item,) = [item for item in response.json["items"] if item["id"] == created["id"]]
    assert item == {name: created[name] for name in ITEM_KEYS}
    text = response.get_data(as_text=True)
    assert created["key"] not in text
    assert hashlib.sha256(created["key"].encode()).hexdigest() not in text


def test_keys_are_listed_under_the_llm_prefix_too(user):
    created = create_key(user)
    assert [item["id"] for item in user.get("/llm/auth/api-keys").json["items"]] == [created["id"]]


@pytest.mark.parametrize("headers", [
    lambda key: {"X-API-Key": key},
    lambda key: {"Authorization": f"Bearer {key}"},
], ids=["X-API-Key", "Bearer sk_"])
def test_a_key_authenticates_as_its_owner(user, bare, headers):
    key = create_key(user)["key"]
    response = bare.get("/auth/me", headers=headers(key))
    assert response.status_code == 200, response.json
    assert (response.json["id"], response.json["auth_method"]) == (user.user_id, "apikey")
    assert response.headers["X-Auth-Method"] == "apikey"
    assert response.headers["X-User-ID"] == response.headers["X-Principal-Id"] == user.user_id


def test_using_a_key_records_when_it_was_last_used(user, bare):
    created = create_key(user)
    assert "last_used_at" not in user.get("/auth/api-keys").json["items"][0]
    bare.get("/auth/me", headers={"X-API-Key": created["key"]})
    (item,) = user.get("/auth/api-keys").json["items"]
    assert parse_time(item["last_used_at"]) >= parse_time(created["created_at"])


def test_delete_revokes_the_key(user, bare):
    created = create_key(user)
    response = user.delete(f"/auth/api-keys/{created['id']}")
    assert response.status_code == 204
    assert response.get_data() == b""
    assert_error(bare.get("/auth/me", headers={"X-API-Key": created["key"]}), 401, "invalid api key")
    assert_error(bare.get("/auth/me", headers={"Authorization": f"Bearer {created['key']}"}), 401, "invalid api key")
    (item,) = user.get("/auth/api-keys").json["items"]
    assert item["status"] == "revoked" and "revoked_at" in item


def test_another_users_key_is_404_like_an_unknown_one(new_user, bare, snapshot):
    owner, stranger = new_user(), new_user()
    created = create_key(owner)
    before = snapshot()
    foreign = stranger.delete(f"/auth/api-keys/{created['id']}")
    unknown = stranger.delete(f"/auth/api-keys/{uuid.uuid4()}")
    not_a_uuid = stranger.delete("/auth/api-keys/sk_live_1234")
    for response in (foreign, unknown, not_a_uuid):
        assert_error(response, 404, "api key not found")
    assert snapshot() == before
    assert bare.get("/auth/me", headers={"X-API-Key": created["key"]}).json["id"] == owner.user_id


@pytest.mark.parametrize("key_id", ["null", "undefined"])
def test_a_placeholder_key_id_is_400(user, snapshot, key_id):
    before = snapshot()
    assert_error(user.delete(f"/auth/api-keys/{key_id}"), 400, "api key id is required", param="id")
    assert snapshot() == before


def test_the_per_user_limit_counts_only_usable_keys(user, app, llm_settings, snapshot):
    keys = [create_key(user, name=f"key {n}") for n in range(llm_settings.api_key_max_per_user)]
    before = snapshot()
    assert_error(user.post("/auth/api-keys", json={"name": "one too many"}), 400, "api key limit reached",
                 code="api_key_limit")
    assert snapshot() == before
    user.delete(f"/auth/api-keys/{keys[0]['id']}")
    set_key(app, keys[1]["id"], expires_at=func.now() - dt.timedelta(seconds=1))
    create_key(user, name="replaces the revoked one")
    create_key(user, name="replaces the expired one")


def test_an_expired_key_is_rejected(user, bare, app, snapshot):
    created = create_key(user)
    set_key(app, created["id"], expires_at=func.now() - dt.timedelta(seconds=1))
    before = snapshot()
    assert_error(bare.get("/auth/me", headers={"X-API-Key": created["key"]}), 401, "invalid api key")
    assert_error(bare.post("/auth/validate-api-key", json={"api_key": created["key"]}), 401, "invalid api key")
    assert snapshot() == before
    assert user.get("/auth/api-keys").json["items"][0]["status"] == "expired"


@pytest.mark.parametrize("body, ttl", [
    ({"expires_in": 3600}, 3600),
    ({"expires_in_days": 2}, 2 * DAY),
    ({"expires_in": 0}, 90 * DAY),
    ({"expires_in": 10**12}, 365 * DAY),
    ({"expires_in_days": 10**6}, 365 * DAY),
    ({"expires_in": 7200.0}, 7200),
], ids=["seconds", "days", "zero means default", "seconds clamped", "days clamped", "integral float"])
def test_key_lifetimes_are_seconds_or_days_clamped_to_the_maximum(user, body, ttl):
    assert ttl_of(create_key(user, **body)) == pytest.approx(ttl, abs=1)


@pytest.mark.parametrize("body, message, param", [
    ({"name": "k", "expires_in": -1}, "expires_in must be positive", "expires_in"),
    ({"name": "k", "expires_in_days": -3}, "expires_in_days must be positive", "expires_in_days"),
    ({"name": "k", "expires_in": "3600"}, "expires_in must be an integer", "expires_in"),
    ({"name": "k", "expires_in": 1.5}, "expires_in must be an integer", "expires_in"),
    ({}, "name is required", "name"),
    ({"name": "   "}, "name must not be empty", "name"),
    ({"name": 7}, "name must be a string", "name"),
    ({"name": "x" * 256}, "name must be at most 255 characters", "name"),
], ids=["negative seconds", "negative days", "string seconds", "fractional seconds", "no name", "blank name",
        "name not a string", "name too long"])
def test_a_bad_create_is_400_and_changes_nothing(user, snapshot, body, message, param):
    before = snapshot()
    assert_error(user.post("/auth/api-keys", json=body), 400, message, param=param)
    assert snapshot() == before


def test_a_malformed_create_body_is_400(user, snapshot):
    before = snapshot()
    response = user.post("/auth/api-keys", data='{"name": ', content_type="application/json")
    assert_error(response, 400, "invalid JSON in request body")
    assert snapshot() == before


def test_keys_need_an_authenticated_caller(bare, snapshot):
    before = snapshot()
    assert_error(bare.post("/auth/api-keys", json={"name": "k"}), 401, "authentication required")
    assert_error(bare.get("/auth/api-keys"), 401, "authentication required")
    assert_error(bare.delete(f"/auth/api-keys/{uuid.uuid4()}"), 401, "authentication required")
    assert snapshot() == before


def test_a_guest_can_hold_keys(guest, bare):
    key = create_key(guest)["key"]
    assert bare.get("/auth/me", headers={"X-API-Key": key}).json["roles"] == ["guest"]


# --- POST /auth/validate-api-key (Jan's gateway contract) ---------------------------------------------------


def test_validate_returns_the_owner(guest, bare, app):
    email = f"ada-{uuid.uuid4().hex[:8]}@example.com"
    guest.post("/auth/upgrade", json={"email": email, "password": "long enough pw", "full_name": "Ada King Lovelace"})
    created = create_key(guest)
    response = bare.post("/auth/validate-api-key", json={"api_key": created["key"]})
    assert response.status_code == 200, response.json
    assert response.json == {"user_id": guest.user_id, "subject": guest.user_id, "username": guest.body["username"],
                             "email": email, "first_name": "Ada", "last_name": "King Lovelace", "roles": ["user"]}
    assert stored_row(app, created["id"]).last_used_at is None  # Jan: validation never marks a key used


@pytest.mark.parametrize("revoked", [False, True], ids=["unknown", "revoked"])
def test_validate_rejects_unknown_and_revoked_keys(user, bare, snapshot, revoked):
    key = "sk_live_" + "0" * 48
    if revoked:
        created = create_key(user)
        user.delete(f"/auth/api-keys/{created['id']}")
        key = created["key"]
    before = snapshot()
    assert_error(bare.post("/auth/validate-api-key", json={"api_key": key}), 401, "invalid api key")
    assert snapshot() == before


@pytest.mark.parametrize("kwargs, message, param", [
    ({}, "request body must be a JSON object", None),
    ({"json": {}}, "api_key is required", "api_key"),
    ({"json": {"api_key": 12}}, "api_key must be a string", "api_key"),
], ids=["no body", "no api_key", "api_key not a string"])
def test_validate_with_a_bad_body_is_400(bare, snapshot, kwargs, message, param):
    before = snapshot()
    assert_error(bare.post("/auth/validate-api-key", **kwargs), 400, message, param=param)
    assert snapshot() == before
