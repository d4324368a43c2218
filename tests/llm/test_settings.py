"""User settings (Jan §2.3) through HTTP against PostgreSQL: defaults, lazy rows, replace vs merge, back-fill,
validation (each rejected request changes nothing), preferences, isolation, parallel merges."""
from __future__ import annotations

import datetime as dt
import threading

import pytest
from sqlalchemy import select, update

from shared.errors import ERROR_TYPES
from shared.schema import user_settings, users

pytestmark = pytest.mark.usefixtures("provider")

SETTINGS = "/v1/users/me/settings"
PREFERENCES = "/v1/users/me/settings/preferences"

MEMORY = {"enabled": True, "observe_enabled": True, "inject_user_core": True, "inject_semantic": True,
          "inject_episodic": False, "max_user_items": 3, "max_project_items": 5, "max_episodic_items": 3,
          "min_similarity": 0.75}
PROFILE = {"base_style": "Friendly", "custom_instructions": "", "nick_name": "", "occupation": "",
           "more_about_you": ""}
ADVANCED = {"web_search": False, "code_enabled": False}


def assert_error(response, status: int, message: str, *, param=None, code=None) -> None:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.json == {"error": {"message": message, "type": ERROR_TYPES[status], "param": param, "code": code},
                             "message": message, "request_id": response.headers["X-Request-Id"]}


def rfc3339(value: str) -> dt.datetime:
    assert value.endswith("Z")
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))


def stored(app, account):
    with app.extensions["jan"].db.read() as conn:
        return conn.execute(select(user_settings).join(users, users.c.id == user_settings.c.user_id)
                            .where(users.c.public_id == account.user_id)).all()


def first_model(account) -> str:
    return account.get("/v1/models").json["data"][0]["id"]


def default_preferences(account) -> dict:
    return {"selected_model": first_model(account), "enable_deep_research": False, "enable_thinking": False,
            "enable_search": True, "enable_browser": False}


# Defaults and the lazy row ------------------------------------------------------------------------------------

def test_first_read_creates_the_row_with_jans_defaults(app, guest):
    assert stored(app, guest) == []
    response = guest.get(SETTINGS)
    assert response.status_code == 200
    body = response.json
    assert body == {
        "id": guest.user_id, "user_id": guest.user_id, "memory_config": MEMORY, "profile_settings": PROFILE,
        "advanced_settings": ADVANCED, "enable_trace": False, "enable_tools": True,
        "preferences": default_preferences(guest), "server_capabilities": {"image_generation_enabled": False},
        "created_at": body["created_at"], "updated_at": body["updated_at"],
    }
    assert list(body) == ["id", "user_id", "memory_config", "profile_settings", "advanced_settings", "enable_trace",
                          "enable_tools", "preferences", "server_capabilities", "created_at", "updated_at"]
    assert abs(rfc3339(body["created_at"]) - dt.datetime.now(dt.timezone.utc)) < dt.timedelta(minutes=1)
    assert body["created_at"] == body["updated_at"]
    (row,) = stored(app, guest)
    assert row.memory_config == MEMORY and row.profile_settings == PROFILE and row.advanced_settings == ADVANCED
    # The default model is looked up at read time, not frozen into the row.
    assert row.preferences == {}
    again = guest.get(SETTINGS)
    assert again.json == body and len(stored(app, guest)) == 1


def test_the_llm_prefix_and_api_keys_reach_the_same_settings(guest):
    guest.patch(SETTINGS, json={"enable_trace": True})
    key = guest.post("/auth/api-keys", json={"name": "k"}).json["key"]
    via_key = guest.client.get(SETTINGS, headers={"X-API-Key": key})
    assert via_key.status_code == 200 and via_key.json["enable_trace"] is True
    assert guest.get("/llm" + SETTINGS).json == via_key.json


def test_missing_keys_are_back_filled_on_read(app, guest):
    guest.get(SETTINGS)
    with app.extensions["jan"].db.transaction() as conn:
        conn.execute(update(user_settings)
                     .where(user_settings.c.user_id == select(users.c.id).where(users.c.public_id == guest.user_id)
                            .scalar_subquery())
                     .values(memory_config={"enabled": False}, profile_settings={}, advanced_settings={"web_search": True},
                             preferences={"enable_search": False, "theme": "dark"}))
    body = guest.get(SETTINGS).json
    assert body["memory_config"] == {**MEMORY, "enabled": False}
    assert body["profile_settings"] == PROFILE
    assert body["advanced_settings"] == {**ADVANCED, "web_search": True}
    assert body["preferences"] == {**default_preferences(guest), "enable_search": False, "theme": "dark"}
    assert guest.get(PREFERENCES).json == {"preferences": body["preferences"]}


# PATCH: objects replace, preferences merge -------------------------------------------------------------------------

def test_an_object_in_a_patch_replaces_the_stored_object(app, guest):
    first = guest.patch(SETTINGS, json={"memory_config": {"enabled": False, "max_user_items": 7}})
    assert first.status_code == 200
    assert first.json["memory_config"] == {**MEMORY, "enabled": False, "max_user_items": 7}
    second = guest.patch(SETTINGS, json={"memory_config": {"max_project_items": 9}})
    # enabled and max_user_items were not sent this time: they are back to their defaults.
    assert second.json["memory_config"] == {**MEMORY, "max_project_items": 9}
    (row,) = stored(app, guest)
    assert row.memory_config == {"max_project_items": 9}
    assert second.json["profile_settings"] == PROFILE and second.json["advanced_settings"] == ADVANCED


def test_every_object_and_flag_can_be_set(guest):
    profile = {"base_style": "Concise", "custom_instructions": "Answer in French.", "nick_name": "Jo",
               "occupation": "pilot", "more_about_you": "likes clouds"}
    memory = {"enabled": False, "observe_enabled": False, "inject_user_core": False, "inject_semantic": False,
              "inject_episodic": True, "max_user_items": 20, "max_project_items": 50, "max_episodic_items": 20,
              "min_similarity": 1}
    response = guest.patch(SETTINGS, json={"memory_config": memory, "profile_settings": profile,
                                           "advanced_settings": {"web_search": True, "code_enabled": True},
                                           "enable_trace": True, "enable_tools": False})
    assert response.status_code == 200
    body = response.json
    assert body["memory_config"] == {**memory, "min_similarity": 1.0}
    assert body["profile_settings"] == profile
    assert body["advanced_settings"] == {"web_search": True, "code_enabled": True}
    assert body["enable_trace"] is True and body["enable_tools"] is False
    assert guest.get(SETTINGS).json == body
    # Absent fields stay as they are.
    later = guest.patch(SETTINGS, json={"enable_trace": False}).json
    assert later["enable_tools"] is False and later["profile_settings"] == profile and later["memory_config"] == body["memory_config"]


def test_boundary_values_are_accepted(guest):
    low = {"max_user_items": 0, "max_project_items": 0, "max_episodic_items": 0, "min_similarity": 0}
    assert guest.patch(SETTINGS, json={"memory_config": low}).json["memory_config"] == {**MEMORY, **low,
                                                                                        "min_similarity": 0.0}
    whole = guest.patch(SETTINGS, json={"memory_config": {"max_user_items": 4.0, "min_similarity": 0.5}})
    assert whole.status_code == 200
    assert whole.json["memory_config"]["max_user_items"] == 4 and whole.json["memory_config"]["min_similarity"] == 0.5
    empty_style = guest.patch(SETTINGS, json={"profile_settings": {"base_style": ""}})
    assert empty_style.status_code == 200 and empty_style.json["profile_settings"]["base_style"] == ""


def test_legacy_nickname_is_taken_as_nick_name(app, guest):
    response = guest.patch(SETTINGS, json={"profile_settings": {"nickname": "Old Client"}})
    assert response.json["profile_settings"]["nick_name"] == "Old Client"
    assert "nickname" not in response.json["profile_settings"]
    (row,) = stored(app, guest)
    assert row.profile_settings == {"nick_name": "Old Client"}
    both = guest.patch(SETTINGS, json={"profile_settings": {"nickname": "legacy", "nick_name": "current"}})
    assert both.json["profile_settings"]["nick_name"] == "current"


def test_unknown_keys_are_ignored_so_a_whole_settings_object_can_be_sent_back(app, guest):
    body = guest.get(SETTINGS).json
    body["memory_config"]["max_user_items"] = 11
    body["memory_config"]["future_knob"] = True
    body["advanced_settings"]["unknown"] = "x"
    body["server_capabilities"] = {"image_generation_enabled": True}
    body["id"] = "someone-else"
    body["created_at"] = "1999-01-01T00:00:00Z"
    body["whatever"] = {"a": 1}
    response = guest.patch(SETTINGS, json=body)
    assert response.status_code == 200
    assert response.json["memory_config"] == {**MEMORY, "max_user_items": 11}
    assert response.json["server_capabilities"] == {"image_generation_enabled": False}
    assert response.json["id"] == guest.user_id and response.json["created_at"] != "1999-01-01T00:00:00Z"
    (row,) = stored(app, guest)
    assert "future_knob" not in row.memory_config and "unknown" not in row.advanced_settings


def test_null_fields_in_a_patch_leave_the_settings_unchanged(guest):
    guest.patch(SETTINGS, json={"enable_trace": True, "memory_config": {"enabled": False}})
    body = guest.patch(SETTINGS, json={"enable_trace": None, "memory_config": None, "preferences": None}).json
    assert body["enable_trace"] is True and body["memory_config"]["enabled"] is False


def test_a_patch_moves_updated_at_but_not_created_at(guest):
    first = guest.get(SETTINGS).json
    later = guest.patch(SETTINGS, json={"enable_tools": False}).json
    assert later["created_at"] == first["created_at"]
    assert rfc3339(later["updated_at"]) > rfc3339(first["updated_at"])


def test_preferences_merge_key_by_key_and_null_restores_the_default(app, guest):
    defaults = default_preferences(guest)
    first = guest.patch(SETTINGS, json={"preferences": {"enable_thinking": True, "theme": "dark"}}).json
    assert first["preferences"] == {**defaults, "enable_thinking": True, "theme": "dark"}
    second = guest.patch(SETTINGS, json={"preferences": {"selected_model": "other/model", "layout": {"wide": True}}})
    assert second.json["preferences"] == {**defaults, "enable_thinking": True, "theme": "dark",
                                          "selected_model": "other/model", "layout": {"wide": True}}
    third = guest.patch(PREFERENCES, json={"preferences": {"theme": None, "selected_model": None}})
    assert third.status_code == 200
    assert third.json == {"preferences": {**defaults, "enable_thinking": True, "layout": {"wide": True}}}
    (row,) = stored(app, guest)
    assert row.preferences == {"enable_thinking": True, "layout": {"wide": True}}
    assert guest.get(SETTINGS).json["preferences"] == third.json["preferences"]


def test_preferences_routes(app, guest):
    assert stored(app, guest) == []
    response = guest.get(PREFERENCES)
    assert response.status_code == 200 and response.json == {"preferences": default_preferences(guest)}
    assert len(stored(app, guest)) == 1
    patched = guest.patch(PREFERENCES, json={"preferences": {"enable_browser": True}})
    assert patched.json == {"preferences": {**default_preferences(guest), "enable_browser": True}}
    assert guest.get("/llm" + PREFERENCES).json == patched.json
    # Other settings are untouched by the preferences route.
    assert guest.get(SETTINGS).json["memory_config"] == MEMORY


def test_the_first_patch_creates_the_row(app, new_guest):
    fresh = new_guest()
    response = fresh.patch(PREFERENCES, json={"preferences": {"enable_search": False}})
    assert response.status_code == 200
    (row,) = stored(app, fresh)
    assert row.preferences == {"enable_search": False} and row.memory_config == MEMORY


# Validation -----------------------------------------------------------------------------------------------------

STYLES = "profile_settings.base_style must be one of: Concise, Friendly, Professional"

BAD_SETTINGS = [
    ({"profile_settings": {"base_style": "Casual"}}, STYLES, "profile_settings.base_style"),
    ({"profile_settings": {"base_style": "friendly"}}, STYLES, "profile_settings.base_style"),
    ({"profile_settings": {"base_style": 1}}, "profile_settings.base_style must be a string",
     "profile_settings.base_style"),
    ({"memory_config": {"max_user_items": 21}}, "memory_config.max_user_items must be between 0 and 20",
     "memory_config.max_user_items"),
    ({"memory_config": {"max_user_items": -1}}, "memory_config.max_user_items must be between 0 and 20",
     "memory_config.max_user_items"),
    ({"memory_config": {"max_project_items": 51}}, "memory_config.max_project_items must be between 0 and 50",
     "memory_config.max_project_items"),
    ({"memory_config": {"max_episodic_items": 21}}, "memory_config.max_episodic_items must be between 0 and 20",
     "memory_config.max_episodic_items"),
    ({"memory_config": {"max_user_items": "3"}}, "memory_config.max_user_items must be an integer",
     "memory_config.max_user_items"),
    ({"memory_config": {"max_user_items": 2.5}}, "memory_config.max_user_items must be an integer",
     "memory_config.max_user_items"),
    ({"memory_config": {"max_user_items": True}}, "memory_config.max_user_items must be an integer",
     "memory_config.max_user_items"),
    ({"memory_config": {"min_similarity": 1.5}}, "memory_config.min_similarity must be between 0 and 1",
     "memory_config.min_similarity"),
    ({"memory_config": {"min_similarity": -0.1}}, "memory_config.min_similarity must be between 0 and 1",
     "memory_config.min_similarity"),
    ({"memory_config": {"min_similarity": "0.5"}}, "memory_config.min_similarity must be a number",
     "memory_config.min_similarity"),
    ({"memory_config": {"min_similarity": False}}, "memory_config.min_similarity must be a number",
     "memory_config.min_similarity"),
    ({"memory_config": {"enabled": "yes"}}, "memory_config.enabled must be a boolean", "memory_config.enabled"),
    ({"memory_config": {"enabled": 1}}, "memory_config.enabled must be a boolean", "memory_config.enabled"),
    ({"memory_config": "on"}, "memory_config must be an object", "memory_config"),
    ({"memory_config": []}, "memory_config must be an object", "memory_config"),
    ({"profile_settings": ["x"]}, "profile_settings must be an object", "profile_settings"),
    ({"advanced_settings": True}, "advanced_settings must be an object", "advanced_settings"),
    ({"advanced_settings": {"web_search": 1}}, "advanced_settings.web_search must be a boolean",
     "advanced_settings.web_search"),
    ({"profile_settings": {"nick_name": 5}}, "profile_settings.nick_name must be a string",
     "profile_settings.nick_name"),
    ({"profile_settings": {"nickname": 5}}, "profile_settings.nick_name must be a string",
     "profile_settings.nick_name"),
    ({"profile_settings": {"occupation": "x" * 256}}, "profile_settings.occupation must be at most 255 characters",
     "profile_settings.occupation"),
    ({"profile_settings": {"custom_instructions": "x" * 32_769}},
     "profile_settings.custom_instructions must be at most 32768 characters", "profile_settings.custom_instructions"),
    ({"enable_trace": "true"}, "enable_trace must be a boolean", "enable_trace"),
    ({"enable_tools": 0}, "enable_tools must be a boolean", "enable_tools"),
    ({"preferences": "dark"}, "preferences must be an object", "preferences"),
    ({"preferences": {"enable_search": "yes"}}, "preferences.enable_search must be a boolean",
     "preferences.enable_search"),
    ({"preferences": {"selected_model": 5}}, "preferences.selected_model must be a string",
     "preferences.selected_model"),
    ({"preferences": {"selected_model": "m" * 256}}, "preferences.selected_model must be at most 255 characters",
     "preferences.selected_model"),
    ({"preferences": {f"k{i}": i for i in range(65)}}, "preferences may hold at most 64 keys", "preferences"),
    ({"preferences": {"k" * 65: 1}}, "preferences keys must be 1 to 64 characters", "preferences"),
    ({"preferences": {"": 1}}, "preferences keys must be 1 to 64 characters", "preferences"),
    ({"preferences": {"blob": "x" * 17_000}}, "preferences must be at most 16384 bytes as JSON", "preferences"),
    # One bad field rejects the whole patch, even when the other fields are fine.
    ({"enable_trace": True, "memory_config": {"max_user_items": 99}},
     "memory_config.max_user_items must be between 0 and 20", "memory_config.max_user_items"),
]


@pytest.mark.parametrize("body, message, param", BAD_SETTINGS)
def test_bad_settings_are_400_and_change_nothing(new_guest, snapshot, body, message, param):
    fresh, settled = new_guest(), new_guest()
    settled.patch(SETTINGS, json={"enable_trace": True, "preferences": {"theme": "dark"}})
    before = snapshot()
    assert_error(fresh.patch(SETTINGS, json=body), 400, message, param=param)  # no row created either
    assert_error(settled.patch(SETTINGS, json=body), 400, message, param=param)
    assert snapshot() == before


@pytest.mark.parametrize("raw, message", [
    ("{", "invalid JSON in request body"),
    ("[]", "request body must be a JSON object"),
    ("", "request body must be a JSON object"),
    ('{"enable_trace": NaN}', "invalid JSON in request body"),
])
def test_malformed_settings_bodies_are_400(guest, snapshot, raw, message):
    before = snapshot()
    for path in (SETTINGS, PREFERENCES):
        assert_error(guest.patch(path, data=raw, content_type="application/json"), 400, message)
    assert snapshot() == before


def test_a_merge_that_grows_preferences_past_the_limit_is_rejected(guest, snapshot):
    guest.patch(PREFERENCES, json={"preferences": {f"k{i}": i for i in range(60)}})
    before = snapshot()
    assert_error(guest.patch(PREFERENCES, json={"preferences": {f"n{i}": i for i in range(5)}}), 400,
                 "preferences may hold at most 64 keys", param="preferences")
    assert_error(guest.patch(PREFERENCES, json={"preferences": {"big": "x" * 16_000}}), 400,
                 "preferences must be at most 16384 bytes as JSON", param="preferences")
    assert snapshot() == before
    # Removing keys is always possible.
    assert guest.patch(PREFERENCES, json={"preferences": {"k0": None}}).status_code == 200


@pytest.mark.parametrize("body, message", [
    ({}, "preferences field is required"),
    ({"preferences": None}, "preferences field is required"),
    ({"enable_search": False}, "preferences field is required"),
])
def test_preferences_patch_needs_the_preferences_field(new_guest, snapshot, body, message):
    fresh = new_guest()
    before = snapshot()
    assert_error(fresh.patch(PREFERENCES, json=body), 400, message, param="preferences")
    assert_error(fresh.patch(PREFERENCES, json={"preferences": [1]}), 400, "preferences must be an object",
                 param="preferences")
    assert_error(fresh.patch(PREFERENCES, json={"preferences": {"enable_thinking": "no"}}), 400,
                 "preferences.enable_thinking must be a boolean", param="preferences.enable_thinking")
    assert snapshot() == before


def test_settings_need_credentials(client, snapshot):
    before = snapshot()
    for method, path in (("GET", SETTINGS), ("PATCH", SETTINGS), ("GET", PREFERENCES), ("PATCH", PREFERENCES)):
        assert_error(client.open(path, method=method, json={"enable_trace": True}), 401, "authentication required")
    assert snapshot() == before


# Isolation and concurrency -----------------------------------------------------------------------------------

def test_each_user_sees_and_changes_only_their_own_settings(app, guest, new_guest):
    other = new_guest()
    guest.patch(SETTINGS, json={"profile_settings": {"nick_name": "mine"}, "preferences": {"theme": "dark"}})
    theirs = other.get(SETTINGS).json
    assert theirs["user_id"] == other.user_id and theirs["profile_settings"] == PROFILE
    assert "theme" not in theirs["preferences"]
    other.patch(SETTINGS, json={"profile_settings": {"nick_name": "theirs"}})
    # Identity headers do not reach another user's row.
    forged = guest.get(SETTINGS, headers={"X-User-ID": other.user_id})
    assert forged.json["user_id"] == guest.user_id and forged.json["profile_settings"]["nick_name"] == "mine"
    assert other.get(SETTINGS).json["profile_settings"]["nick_name"] == "theirs"
    with app.extensions["jan"].db.read() as conn:
        owners = conn.execute(select(users.c.public_id).join(user_settings, user_settings.c.user_id == users.c.id)
                              .where(users.c.public_id.in_([guest.user_id, other.user_id]))).scalars().all()
    assert sorted(owners) == sorted([guest.user_id, other.user_id])


def test_parallel_preference_merges_lose_nothing(app, guest):
    """Each PATCH merges under a row lock: ten writers of ten different keys leave all ten keys."""
    barrier = threading.Barrier(10)
    statuses = []

    def write(index: int):
        client = app.test_client()
        barrier.wait()
        response = client.patch(PREFERENCES, headers=guest.headers, json={"preferences": {f"key{index}": index}})
        statuses.append(response.status_code)

    threads = [threading.Thread(target=write, args=(index,)) for index in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert statuses == [200] * 10
    preferences = guest.get(PREFERENCES).json["preferences"]
    assert {f"key{index}": index for index in range(10)}.items() <= preferences.items()
    (row,) = stored(app, guest)
    assert len(row.preferences) == 10


def test_parallel_first_reads_create_one_row(app, new_guest):
    fresh = new_guest()
    barrier = threading.Barrier(8)
    statuses = []

    def read():
        client = app.test_client()
        barrier.wait()
        statuses.append(client.get(SETTINGS, headers=fresh.headers).status_code)

    threads = [threading.Thread(target=read) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert statuses == [200] * 8
    assert len(stored(app, fresh)) == 1
