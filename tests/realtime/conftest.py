"""The realtime function under test: its app on the session's real PostgreSQL, pointed at the LiveKit test double,
with a clock the tests move. Users come from the llm function (the token issuer), as in the platform."""
from __future__ import annotations

import datetime as dt
import os
from unittest import mock

import pytest
from sqlalchemy import delete

from tests.doubles.livekit_twirp import LiveKitTwirp

API_KEY = "test-livekit-key"
API_SECRET = "test-livekit-secret-0123456789abcdef"


class FakeClock:
    def __init__(self):
        self.now = dt.datetime.now(dt.timezone.utc)

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += dt.timedelta(seconds=seconds)


@pytest.fixture
def livekit():
    with LiveKitTwirp(API_KEY, API_SECRET) as server:
        yield server


@pytest.fixture
def clock():
    return FakeClock()


@pytest.fixture
def realtime_env(database_url, keys_env, livekit):
    return {
        **keys_env,
        "DATABASE_URL": database_url,
        "LIVEKIT_WS_URL": "wss://livekit.example.test",
        "LIVEKIT_API_URL": livekit.base_url,
        "LIVEKIT_API_KEY": API_KEY,
        "LIVEKIT_API_SECRET": API_SECRET,
        "LIVEKIT_TIMEOUT_SECONDS": "1",
        "ENVIRONMENT": "test",
        "LOG_LEVEL": "WARNING",
    }


@pytest.fixture
def make_realtime(realtime_env, clock):
    """Build a realtime app (one per "replica"); keyword arguments override settings."""
    from functions.realtime.app import create_app
    from functions.realtime.settings import load_settings

    built = []

    def make(**overrides):
        with mock.patch.dict(os.environ, realtime_env):
            settings = load_settings(**overrides)
        app = create_app(settings, clock=clock)
        built.append(app)
        return app

    yield make
    for app in built:
        app.extensions["jan"].services["realtime_sync"].stop(5)
        app.extensions["jan"].db.engine.dispose()


@pytest.fixture
def realtime(make_realtime):
    return make_realtime()


@pytest.fixture
def rt(realtime):
    return realtime.test_client()


@pytest.fixture
def sync(realtime):
    return realtime.extensions["jan"].services["realtime_sync"].sync


@pytest.fixture(autouse=True)
def _no_sessions_left(app):
    """Limits count every live session in the database: each test starts with none."""
    from shared.schema import realtime_sessions

    with app.extensions["jan"].db.transaction() as conn:
        conn.execute(delete(realtime_sessions))
    yield


def bearer(account) -> dict:
    return {"Authorization": f"Bearer {account.token}"}
