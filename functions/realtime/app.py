"""The realtime function's app: the shared factory plus the session routes, the LiveKit clients and the room sync."""
from __future__ import annotations

from flask import Flask

from shared.app import create_app as create_platform_app
from shared.times import utcnow
from functions.realtime.livekit import RoomService, TokenMinter
from functions.realtime.routes import bp as realtime_bp
from functions.realtime.service import Clock, SessionService
from functions.realtime.settings import RealtimeSettings, load_settings
from functions.realtime.sync import RoomSync, RoomSyncLoop


def create_app(settings: RealtimeSettings | None = None, *, clock: Clock = utcnow) -> Flask:
    settings = settings or load_settings()
    app = create_platform_app(settings, (realtime_bp,))
    platform = app.extensions["jan"]
    minter = TokenMinter(settings.livekit_api_key, settings.livekit_api_secret, settings.livekit_token_ttl_seconds)
    rooms = RoomService(settings.livekit_server_url, minter, settings.livekit_timeout_seconds)
    platform.services["realtime"] = SessionService(
        platform.db, minter, rooms, ws_url=settings.livekit_ws_url,
        max_per_user=settings.realtime_max_sessions_per_user, max_total=settings.realtime_max_sessions, clock=clock)
    sync = RoomSync(platform.db, rooms, stale_ttl_seconds=settings.session_stale_ttl_seconds, clock=clock)
    platform.services["realtime_sync"] = RoomSyncLoop(sync, settings.session_cleanup_interval_seconds)
    return app


def start_room_sync(app: Flask) -> None:
    """In the serving process only (not in tests or one-off commands): the always-on pod keeps rooms in sync."""
    if app.extensions["jan"].settings.realtime_sync_enabled:
        app.extensions["jan"].services["realtime_sync"].start()
