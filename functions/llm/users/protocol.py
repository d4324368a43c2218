"""User settings bodies (Jan §2.3). The settings objects are checked key by key by `user_settings`, which
knows each key's type and limits."""
from __future__ import annotations

from typing import Annotated, Any

from msgspec import Meta

from shared.protocol import RequestModel

SettingsObject = Annotated[dict[str, Any], Meta(description="replaces the stored object; unknown keys are dropped")]
Preferences = Annotated[dict[str, Any], Meta(description="merged key by key; null removes a key")]


class UpdateSettingsRequest(RequestModel):
    """Absent (or null) fields stay as stored."""

    memory_config: SettingsObject | None = None
    profile_settings: SettingsObject | None = None
    advanced_settings: SettingsObject | None = None
    enable_trace: bool | None = None
    enable_tools: bool | None = None
    preferences: Preferences | None = None


class UpdatePreferencesRequest(RequestModel):
    preferences: Annotated[Preferences, Meta(extra={"required": "preferences field is required"})]
