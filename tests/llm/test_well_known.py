"""The published public keys (/.well-known/jwks.json), the discovery document, `kid` on every token, and two-key
rotation with `python -m functions.llm.manage rotate-signing-key`."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys

import jwt
import pytest
from cryptography.hazmat.primitives import serialization

from tests.conftest import ROOT

PUBLIC_FIELDS = {"kty", "use", "alg", "kid", "n", "e"}


def make_app(llm_env, **env):
    from functions.llm.app import create_app
    from functions.llm.settings import LlmSettings
    from shared.settings import from_env

    return create_app(from_env(LlmSettings, environ={**llm_env, **env}))


def test_jwks_lists_the_signing_key_and_tokens_name_it(client, guest):
    response = client.get("/.well-known/jwks.json")
    assert response.status_code == 200
    assert "public" in response.headers["Cache-Control"]
    keys = response.json["keys"]
    assert keys and all(set(key) == PUBLIC_FIELDS for key in keys)
    header = jwt.get_unverified_header(guest.token)
    assert header["alg"] == "RS256" and header["kid"] in {key["kid"] for key in keys}
    key = jwt.PyJWKSet.from_dict(response.json)[header["kid"]]
    claims = jwt.decode(guest.token, key.key, algorithms=["RS256"], audience="jan")
    assert claims["sub"] == guest.user_id


def test_a_private_field_in_the_configured_key_set_is_never_published(llm_env, keys_env):
    """Someone pastes the private JWK into JWKS: the public document still carries only n and e."""
    pem = open(keys_env["TOKEN_SIGNING_KEY_FILE"]).read()
    private = serialization.load_pem_private_key(pem.encode(), password=None)
    leaked = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(private))
    public = json.loads(open(keys_env["JWKS_FILE"]).read())["keys"][0]
    leaked.update(kid=public["kid"], use="sig", alg="RS256", k="secret")
    app = make_app(llm_env, JWKS=json.dumps({"keys": [leaked]}))
    try:
        body = app.test_client().get("/.well-known/jwks.json").json
    finally:
        app.extensions["jan"].db.engine.dispose()
    assert body == {"keys": [public]}
    assert not {"d", "p", "q", "dp", "dq", "qi", "k", "oth"} & set(body["keys"][0])


def test_discovery_names_the_issuer_the_key_set_and_the_algorithm(llm_env):
    app = make_app(llm_env, PUBLIC_BASE_URL="https://api.example.test")
    try:
        response = app.test_client().get("/.well-known/openid-configuration")
    finally:
        app.extensions["jan"].db.engine.dispose()
    assert response.status_code == 200
    body = response.json
    assert body["issuer"] == "jan-serverless"
    assert body["jwks_uri"] == "https://api.example.test/.well-known/jwks.json"
    assert body["id_token_signing_alg_values_supported"] == ["RS256"]
    assert body["subject_types_supported"] == ["public"]


def rotate(key_file, jwks_file):
    result = subprocess.run([sys.executable, "-m", "functions.llm.manage", "rotate-signing-key",
                             "--key-file", str(key_file), "--jwks-file", str(jwks_file)],
                            cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_rotation_keeps_the_previous_key_for_verification_and_drops_older_ones(llm_env, keys_env, tmp_path):
    key_file, jwks_file = tmp_path / "key.pem", tmp_path / "jwks.json"
    shutil.copy(keys_env["TOKEN_SIGNING_KEY_FILE"], key_file)
    shutil.copy(keys_env["JWKS_FILE"], jwks_file)
    first_kid = json.loads(jwks_file.read_text())["keys"][0]["kid"]
    env = {"TOKEN_SIGNING_KEY_FILE": str(key_file), "JWKS_FILE": str(jwks_file)}
    before = make_app(llm_env, **env)
    old_token = before.test_client().post("/auth/guest-login").json["access_token"]
    before.extensions["jan"].db.engine.dispose()

    output = rotate(key_file, jwks_file)
    kids = [key["kid"] for key in json.loads(jwks_file.read_text())["keys"]]
    assert len(kids) == 2 and kids[1] == first_kid and kids[0] != first_kid
    assert kids[0] in output
    assert oct(key_file.stat().st_mode & 0o777) == "0o600"

    after = make_app(llm_env, **env)
    try:
        client = after.test_client()
        assert client.get("/auth/me", headers={"Authorization": f"Bearer {old_token}"}).status_code == 200
        new_token = client.post("/auth/guest-login").json["access_token"]
        assert jwt.get_unverified_header(new_token)["kid"] == kids[0]
        assert [key["kid"] for key in client.get("/.well-known/jwks.json").json["keys"]] == kids
    finally:
        after.extensions["jan"].db.engine.dispose()

    rotate(key_file, jwks_file)
    latest = [key["kid"] for key in json.loads(jwks_file.read_text())["keys"]]
    assert latest[1] == kids[0] and first_kid not in latest


def test_rotation_refuses_a_key_set_that_does_not_hold_the_current_key(keys_env, tmp_path):
    key_file, jwks_file = tmp_path / "key.pem", tmp_path / "jwks.json"
    shutil.copy(keys_env["TOKEN_SIGNING_KEY_FILE"], key_file)
    jwks_file.write_text(json.dumps({"keys": []}))
    result = subprocess.run([sys.executable, "-m", "functions.llm.manage", "rotate-signing-key",
                             "--key-file", str(key_file), "--jwks-file", str(jwks_file)],
                            cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 2
    assert "does not hold the current signing key" in result.stderr
    assert key_file.read_text() == open(keys_env["TOKEN_SIGNING_KEY_FILE"]).read()
