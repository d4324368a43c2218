"""The realtime function's settings: the platform's plus LiveKit, session limits and the room sync."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from shared.settings import PlatformSettings, SettingsError, from_env

# `livekit-server --dev` runs with this key pair; only the development environment falls back to it.
DEV_LIVEKIT_API_KEY = "devkey"
DEV_LIVEKIT_API_SECRET = "secret"
MIN_SECRET_LENGTH = 32


@dataclass(frozen=True)
class RealtimeSettings(PlatformSettings):
    service_name: str = "realtime"

    # What clients connect to (returned as `ws_url`), and where this function calls LiveKit's server API
    # (empty: the http(s) form of livekit_ws_url).
    livekit_ws_url: str = "ws://localhost:7880"
    livekit_api_url: str = ""
    # From a Kubernetes Secret (LIVEKIT_API_KEY_FILE / LIVEKIT_API_SECRET_FILE). Required outside development.
    livekit_api_key: str = ""
    livekit_api_secret: str = ""
    livekit_token_ttl_seconds: int = 24 * 3600
    livekit_timeout_seconds: float = 5.0

    # Live sessions at once (0 switches a limit off).
    realtime_max_sessions_per_user: int = 3
    realtime_max_sessions: int = 100

    # The room sync: how often it runs, and how long a session may stay `created` (never joined) before removal.
    session_cleanup_interval_seconds: float = 15.0
    session_stale_ttl_seconds: int = 600
    # Run the sync loop inside the serving process (off: run `python -m functions.realtime.manage sync-once`).
    realtime_sync_enabled: bool = True

    @property
    def livekit_server_url(self) -> str:
        if self.livekit_api_url:
            return self.livekit_api_url.rstrip("/")
        url = self.livekit_ws_url.rstrip("/")
        for websocket, http in (("wss://", "https://"), ("ws://", "http://")):
            if url.startswith(websocket):
                return http + url[len(websocket):]
        return url


def load_settings(**overrides) -> RealtimeSettings:
    settings = from_env(RealtimeSettings, **overrides)
    if not (settings.livekit_api_key and settings.livekit_api_secret):
        if settings.environment != "development":
            raise SettingsError("LIVEKIT_API_KEY and LIVEKIT_API_SECRET are required (or their _FILE forms)")
        settings = dataclasses.replace(settings, livekit_api_key=settings.livekit_api_key or DEV_LIVEKIT_API_KEY,
                                       livekit_api_secret=settings.livekit_api_secret or DEV_LIVEKIT_API_SECRET)
    elif settings.environment != "development" and len(settings.livekit_api_secret) < MIN_SECRET_LENGTH:
        # RFC 7518 §3.2: an HS256 key must be at least as long as the hash (32 bytes).
        raise SettingsError(f"LIVEKIT_API_SECRET must be at least {MIN_SECRET_LENGTH} characters")
    for name in ("livekit_token_ttl_seconds", "session_stale_ttl_seconds"):
        if getattr(settings, name) <= 0:
            raise SettingsError(f"{name.upper()} must be positive")
    if settings.session_cleanup_interval_seconds <= 0 or settings.livekit_timeout_seconds <= 0:
        raise SettingsError("SESSION_CLEANUP_INTERVAL_SECONDS and LIVEKIT_TIMEOUT_SECONDS must be positive")
    return settings
