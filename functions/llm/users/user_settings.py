"""User settings (Jan's /v1/users/me/settings): one row per user, created lazily with Jan's defaults.

Reading back-fills every key a stored object lacks with its default, so a row written by an older version (or a
PATCH that sent part of an object) always answers with the full shape. A PATCH replaces each object it names
(memory_config, profile_settings, advanced_settings) with the validated object sent — keys it leaves out return
to their defaults — and merges `preferences` key by key (`null` removes a key, so it reads as its default again).
Unknown keys inside the three objects and at the top level are ignored, as Jan's JSON decoding ignores them:
clients that send a whole settings object back (with `id`, `server_capabilities`, …) keep working.
"""
from __future__ import annotations

import json

from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert

from shared.times import rfc3339
from shared.db import Database
from shared.errors import BadRequest
from shared.schema import user_settings

BASE_STYLES = ("Concise", "Friendly", "Professional")

MEMORY_DEFAULTS = {
    "enabled": True, "observe_enabled": True, "inject_user_core": True, "inject_semantic": True,
    "inject_episodic": False, "max_user_items": 3, "max_project_items": 5, "max_episodic_items": 3,
    "min_similarity": 0.75,
}
PROFILE_DEFAULTS = {"base_style": "Friendly", "custom_instructions": "", "nick_name": "", "occupation": "",
                    "more_about_you": ""}
ADVANCED_DEFAULTS = {"web_search": False, "code_enabled": False}
# selected_model's default is the first served model, looked up when a read needs it.
PREFERENCE_DEFAULTS = {"enable_deep_research": False, "enable_thinking": False, "enable_search": True,
                       "enable_browser": False}
OBJECT_DEFAULTS = {"memory_config": MEMORY_DEFAULTS, "profile_settings": PROFILE_DEFAULTS,
                   "advanced_settings": ADVANCED_DEFAULTS}

# Our own limits (Jan has none): keep one user's settings row small.
MAX_SHORT_TEXT = 255  # nick_name, occupation
MAX_LONG_TEXT = 32_768  # custom_instructions, more_about_you (the size of a project instruction)
MAX_PREFERENCE_KEYS = 64
MAX_PREFERENCE_KEY_LENGTH = 64
MAX_PREFERENCES_BYTES = 16 * 1024
MAX_SELECTED_MODEL_LENGTH = 255


# Validation ------------------------------------------------------------------------------------------------

def _boolean(path: str, value):
    if not isinstance(value, bool):
        raise BadRequest(f"{path} must be a boolean", param=path)
    return value


def _integer(low: int, high: int):
    def check(path: str, value):
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise BadRequest(f"{path} must be an integer", param=path)
        if not low <= value <= high:
            raise BadRequest(f"{path} must be between {low} and {high}", param=path)
        return value
    return check


def _fraction(path: str, value):
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise BadRequest(f"{path} must be a number", param=path)
    if not 0 <= value <= 1:
        raise BadRequest(f"{path} must be between 0 and 1", param=path)
    return float(value)


def _text(max_length: int):
    def check(path: str, value):
        if not isinstance(value, str):
            raise BadRequest(f"{path} must be a string", param=path)
        if len(value) > max_length:
            raise BadRequest(f"{path} must be at most {max_length} characters", param=path)
        return value
    return check


def _base_style(path: str, value):
    if not isinstance(value, str):
        raise BadRequest(f"{path} must be a string", param=path)
    if value and value not in BASE_STYLES:
        raise BadRequest(f"{path} must be one of: {', '.join(BASE_STYLES)}", param=path)
    return value


FIELDS = {
    "memory_config": {
        "enabled": _boolean, "observe_enabled": _boolean, "inject_user_core": _boolean, "inject_semantic": _boolean,
        "inject_episodic": _boolean, "max_user_items": _integer(0, 20), "max_project_items": _integer(0, 50),
        "max_episodic_items": _integer(0, 20), "min_similarity": _fraction,
    },
    "profile_settings": {
        "base_style": _base_style, "custom_instructions": _text(MAX_LONG_TEXT), "nick_name": _text(MAX_SHORT_TEXT),
        "occupation": _text(MAX_SHORT_TEXT), "more_about_you": _text(MAX_LONG_TEXT),
    },
    "advanced_settings": {"web_search": _boolean, "code_enabled": _boolean},
}


def _settings_object(name: str, raw) -> dict:
    """A PATCH's replacement for one settings object: its known keys, validated; `null` values and unknown
    keys are left out (they read back as defaults). Jan's legacy `nickname` is taken as `nick_name`."""
    if not isinstance(raw, dict):
        raise BadRequest(f"{name} must be an object", param=name)
    raw = dict(raw)
    if name == "profile_settings" and raw.get("nick_name") is None and raw.get("nickname") is not None:
        raw["nick_name"] = raw["nickname"]
    validated = {}
    for key, check in FIELDS[name].items():
        value = raw.get(key)
        if value is not None:
            validated[key] = check(f"{name}.{key}", value)
    return validated


def validate_preferences(raw, *, name: str = "preferences") -> dict:
    """A preferences patch: free-form keys (Jan's map), the known ones type-checked; `null` removes a key."""
    if not isinstance(raw, dict):
        raise BadRequest(f"{name} must be an object", param=name)
    if len(raw) > MAX_PREFERENCE_KEYS:
        raise BadRequest(f"{name} may hold at most {MAX_PREFERENCE_KEYS} keys", param=name)
    for key, value in raw.items():
        if not key or len(key) > MAX_PREFERENCE_KEY_LENGTH:
            raise BadRequest(f"{name} keys must be 1 to {MAX_PREFERENCE_KEY_LENGTH} characters", param=name)
        if value is None:
            continue
        path = f"{name}.{key}"
        if key in PREFERENCE_DEFAULTS:
            _boolean(path, value)
        elif key == "selected_model":
            _text(MAX_SELECTED_MODEL_LENGTH)(path, value)
    return raw


def merge_preferences(stored: dict, patch: dict, *, name: str = "preferences") -> dict:
    merged = dict(stored or {})
    for key, value in patch.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = value
    if len(merged) > MAX_PREFERENCE_KEYS:
        raise BadRequest(f"{name} may hold at most {MAX_PREFERENCE_KEYS} keys", param=name)
    if len(json.dumps(merged, ensure_ascii=False).encode()) > MAX_PREFERENCES_BYTES:
        raise BadRequest(f"{name} must be at most {MAX_PREFERENCES_BYTES} bytes as JSON", param=name)
    return merged


class SettingsPatch:
    """A validated PATCH body. Fields that are absent (or null) stay as stored."""

    def __init__(self, body: dict):
        self.objects = {name: _settings_object(name, body[name]) for name in OBJECT_DEFAULTS
                        if body.get(name) is not None}
        self.flags = {}
        for name in ("enable_trace", "enable_tools"):
            if body.get(name) is not None:
                self.flags[name] = _boolean(name, body[name])
        self.preferences = (validate_preferences(body["preferences"]) if body.get("preferences") is not None
                            else None)

    @property
    def empty(self) -> bool:
        return not self.objects and not self.flags and self.preferences is None


# The service -----------------------------------------------------------------------------------------------

class UserSettingsService:
    def __init__(self, db: Database, first_model, image_generation_enabled: bool = False):
        self.db = db
        self._first_model = first_model  # () -> the first served model id, or None
        self.image_generation_enabled = image_generation_enabled

    def default_model(self) -> str | None:
        try:
            return self._first_model()
        except Exception:  # the catalog being unavailable must not fail a settings read
            return None

    # Rows --------------------------------------------------------------------------------------------------

    @staticmethod
    def stored(conn, user_id: int, *, lock: bool = False):
        query = select(user_settings).where(user_settings.c.user_id == user_id)
        return conn.execute(query.with_for_update() if lock else query).first()

    def _ensure(self, conn, user_id: int, *, lock: bool = False):
        """The user's row, created with the defaults on first use (a race between two first uses is harmless)."""
        row = self.stored(conn, user_id, lock=lock)
        if row is not None:
            return row
        conn.execute(insert(user_settings).values(
            user_id=user_id, memory_config=MEMORY_DEFAULTS, profile_settings=PROFILE_DEFAULTS,
            advanced_settings=ADVANCED_DEFAULTS, preferences={}).on_conflict_do_nothing(
            index_elements=[user_settings.c.user_id]))
        return self.stored(conn, user_id, lock=lock)

    # Bodies ------------------------------------------------------------------------------------------------

    def preferences_of(self, row) -> dict:
        stored = dict(row.preferences or {}) if row is not None else {}
        defaults = dict(PREFERENCE_DEFAULTS)
        if "selected_model" not in stored:
            defaults = {"selected_model": self.default_model(), **defaults}
        return {**defaults, **stored}

    def body(self, row, public_user_id: str) -> dict:
        """Jan's settings object; `row` None gives the defaults (used by the export, which writes nothing)."""
        body = {"id": public_user_id, "user_id": public_user_id}
        for name, defaults in OBJECT_DEFAULTS.items():
            stored = (getattr(row, name) or {}) if row is not None else {}
            body[name] = {key: stored.get(key, default) for key, default in defaults.items()}
        body["enable_trace"] = row.enable_trace if row is not None else False
        body["enable_tools"] = row.enable_tools if row is not None else True
        body["preferences"] = self.preferences_of(row)
        body["server_capabilities"] = {"image_generation_enabled": self.image_generation_enabled}
        body["created_at"] = rfc3339(row.created_at) if row is not None else None
        body["updated_at"] = rfc3339(row.updated_at) if row is not None else None
        return body

    # Operations --------------------------------------------------------------------------------------------

    def get(self, user_id: int, public_user_id: str) -> dict:
        with self.db.read() as conn:
            row = self.stored(conn, user_id)
        if row is None:
            with self.db.transaction() as conn:
                row = self._ensure(conn, user_id)
        return self.body(row, public_user_id)

    def update(self, user_id: int, public_user_id: str, patch: SettingsPatch) -> dict:
        with self.db.transaction() as conn:
            row = self._ensure(conn, user_id, lock=True)
            if not patch.empty:
                values = {**patch.objects, **patch.flags, "updated_at": func.now()}
                if patch.preferences is not None:
                    values["preferences"] = merge_preferences(row.preferences, patch.preferences)
                row = conn.execute(update(user_settings).where(user_settings.c.id == row.id).values(**values)
                                   .returning(user_settings)).first()
        return self.body(row, public_user_id)

    def get_preferences(self, user_id: int) -> dict:
        with self.db.read() as conn:
            row = self.stored(conn, user_id)
        if row is None:
            with self.db.transaction() as conn:
                row = self._ensure(conn, user_id)
        return {"preferences": self.preferences_of(row)}

    def update_preferences(self, user_id: int, patch: dict) -> dict:
        with self.db.transaction() as conn:
            row = self._ensure(conn, user_id, lock=True)
            merged = merge_preferences(row.preferences, patch)
            row = conn.execute(update(user_settings).where(user_settings.c.id == row.id)
                               .values(preferences=merged, updated_at=func.now()).returning(user_settings)).first()
        return {"preferences": self.preferences_of(row)}
