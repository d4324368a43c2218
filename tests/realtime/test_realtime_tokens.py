"""LiveKit access tokens: Jan's claims, grants and TTL, checked with PyJWT and with LiveKit's own verifier; the
LiveKit key and secret from settings (files, as a Kubernetes Secret mounts them)."""
from __future__ import annotations

import time

import jwt
import pytest
from livekit.api import TokenVerifier

from functions.realtime.livekit import TokenMinter
from functions.realtime.settings import load_settings
from shared.settings import SettingsError
from tests.realtime.conftest import API_KEY, API_SECRET, bearer


def test_client_token_has_jans_claims_and_grant(rt, user):
    before = int(time.time())
    created = rt.post("/v1/realtime/sessions", headers=bearer(user)).json
    token = created["client_secret"]["value"]

    assert jwt.get_unverified_header(token)["alg"] == "HS256"
    claims = jwt.decode(token, API_SECRET, algorithms=["HS256"], issuer=API_KEY)
    assert set(claims) == {"iss", "sub", "nbf", "exp", "video"}
    assert claims["sub"] == user.user_id
    # +1: the service's clock is a datetime, whose microseconds round a time just below a second up to it.
    assert before <= claims["nbf"] <= int(time.time()) + 1
    assert claims["exp"] - claims["nbf"] == 24 * 3600
    assert created["client_secret"]["expires_at"] == claims["exp"]
    assert claims["video"] == {"roomJoin": True, "room": created["room_id"], "canPublish": True,
                               "canSubscribe": True, "canPublishData": True}


def test_livekit_verifier_accepts_it(rt, user):
    created = rt.post("/v1/realtime/sessions", headers=bearer(user)).json
    grants = TokenVerifier(API_KEY, API_SECRET).verify(created["client_secret"]["value"])
    assert grants.identity == user.user_id
    assert grants.video.room_join is True
    assert grants.video.room == created["room_id"]
    assert (grants.video.can_publish, grants.video.can_subscribe, grants.video.can_publish_data) == (True,) * 3
    assert not grants.video.room_admin and not grants.video.room_create and not grants.video.room_list


def test_livekit_verifier_rejects_another_secret_or_key():
    token = TokenMinter(API_KEY, API_SECRET, 60).client_token("someone", "room_x").value
    with pytest.raises(jwt.InvalidSignatureError):
        TokenVerifier(API_KEY, API_SECRET + "-other").verify(token)
    with pytest.raises(jwt.InvalidIssuerError):
        TokenVerifier("another-key", API_SECRET).verify(token)


def test_token_ttl_is_a_setting(make_realtime, user):
    created = make_realtime(livekit_token_ttl_seconds=900).test_client().post(
        "/v1/realtime/sessions", headers=bearer(user)).json
    claims = jwt.decode(created["client_secret"]["value"], API_SECRET, algorithms=["HS256"], issuer=API_KEY)
    assert claims["exp"] - claims["nbf"] == 900
    assert TokenVerifier(API_KEY, API_SECRET).verify(created["client_secret"]["value"]).identity == user.user_id


def test_expired_token_is_rejected_by_livekit():
    token = TokenMinter(API_KEY, API_SECRET, 60).client_token("someone", "room_x", now=time.time() - 3600).value
    with pytest.raises(jwt.ExpiredSignatureError):
        TokenVerifier(API_KEY, API_SECRET).verify(token)


def test_key_and_secret_come_from_files(tmp_path, monkeypatch):
    (tmp_path / "key").write_text("file-key\n")
    (tmp_path / "secret").write_text("file-secret-long-enough-for-hs256-0123\n")
    monkeypatch.setenv("LIVEKIT_API_KEY_FILE", str(tmp_path / "key"))
    monkeypatch.setenv("LIVEKIT_API_SECRET_FILE", str(tmp_path / "secret"))
    monkeypatch.setenv("ENVIRONMENT", "production")
    settings = load_settings()
    assert (settings.livekit_api_key, settings.livekit_api_secret) == ("file-key", "file-secret-long-enough-for-hs256-0123")


def test_outside_development_missing_keys_stop_the_start(monkeypatch):
    for name in ("LIVEKIT_API_KEY", "LIVEKIT_API_SECRET", "LIVEKIT_API_KEY_FILE", "LIVEKIT_API_SECRET_FILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("ENVIRONMENT", "production")
    with pytest.raises(SettingsError, match="LIVEKIT_API_KEY"):
        load_settings()
    monkeypatch.setenv("LIVEKIT_API_KEY", "prod-key")
    monkeypatch.setenv("LIVEKIT_API_SECRET", "too-short")
    with pytest.raises(SettingsError, match="at least 32"):
        load_settings()
    monkeypatch.delenv("LIVEKIT_API_KEY")
    monkeypatch.delenv("LIVEKIT_API_SECRET")
    monkeypatch.setenv("ENVIRONMENT", "development")
    settings = load_settings()
    assert (settings.livekit_api_key, settings.livekit_api_secret) == ("devkey", "secret")


def test_server_api_url_follows_the_websocket_url(monkeypatch):
    monkeypatch.setenv("ENVIRONMENT", "development")
    monkeypatch.delenv("LIVEKIT_API_URL", raising=False)
    assert load_settings(livekit_ws_url="wss://lk.example.com").livekit_server_url == "https://lk.example.com"
    assert load_settings(livekit_ws_url="ws://127.0.0.1:7880/").livekit_server_url == "http://127.0.0.1:7880"
    assert load_settings(livekit_api_url="http://livekit.livekit.svc:7880").livekit_server_url == \
        "http://livekit.livekit.svc:7880"
