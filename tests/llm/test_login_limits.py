"""Password login under load: hashing runs on worker threads behind a bounded queue (503 when full), and attempts are
limited per (account, client address) and per client address (429 with Retry-After), so a flood from one address
neither pins the worker nor locks the account's owner out from their own address."""
from __future__ import annotations

import threading
import uuid

import pytest

from functions.llm.auth.passwords import PasswordHasher


@pytest.fixture(scope="module")
def limited_app(llm_env):
    from functions.llm.app import create_app
    from functions.llm.settings import LlmSettings
    from shared.settings import from_env

    settings = from_env(LlmSettings, environ={
        **llm_env, "CLIENT_ADDRESS_HEADER": "X-Real-IP",
        "LOGIN_RATE_LIMIT_PER_ACCOUNT_ADDRESS_PER_MINUTE": "3", "LOGIN_RATE_LIMIT_PER_ACCOUNT_ADDRESS_PER_HOUR": "0",
        "LOGIN_RATE_LIMIT_PER_ADDRESS_PER_MINUTE": "6", "LOGIN_RATE_LIMIT_PER_ADDRESS_PER_HOUR": "0",
        "PASSWORD_HASH_THREADS": "1", "PASSWORD_HASH_QUEUE_SIZE": "0"})
    app = create_app(settings)
    yield app
    app.extensions["jan"].db.engine.dispose()


@pytest.fixture
def account(limited_app):
    client = limited_app.test_client(use_cookies=False)
    guest = client.post("/auth/guest-login").json
    email = f"limited-{uuid.uuid4().hex[:10]}@example.com"
    response = client.post("/auth/upgrade", json={"email": email, "password": "correct horse battery"},
                           headers={"Authorization": f"Bearer {guest['access_token']}"})
    assert response.status_code == 200, response.json
    return client, email


def address() -> str:
    return f"198.51.100.{uuid.uuid4().int % 250 + 1}"


def login(client, email, password, ip):
    return client.post("/auth/login", json={"email": email, "password": password}, headers={"X-Real-IP": ip})


def assert_limited(response):
    assert response.status_code == 429, response.json
    assert response.json["error"]["code"] == "rate_limited"
    assert response.json["error"]["type"] == "rate_limit_error"
    assert int(response.headers["Retry-After"]) >= 1


def test_guessing_from_one_address_is_limited_but_the_owner_elsewhere_still_logs_in(account):
    client, email = account
    attacker = address()
    for _ in range(3):
        assert login(client, email, "wrong password", attacker).status_code == 401
    assert_limited(login(client, email, "correct horse battery", attacker))
    assert login(client, email, "correct horse battery", address()).status_code == 200


def test_one_address_trying_many_accounts_is_limited_per_address(account):
    client, _ = account
    attacker = address()
    for n in range(6):
        assert login(client, f"nobody-{n}-{uuid.uuid4().hex[:6]}@example.com", "x", attacker).status_code == 401
    assert_limited(login(client, f"another-{uuid.uuid4().hex[:6]}@example.com", "x", attacker))


def test_a_full_hashing_queue_answers_503_with_the_error_body(limited_app, account):
    client, email = account
    hasher: PasswordHasher = limited_app.extensions["jan"].services["llm"].accounts.passwords
    started, release = threading.Event(), threading.Event()

    def occupy():
        hasher.run(lambda: (started.set(), release.wait(10)))

    holder = threading.Thread(target=occupy)
    holder.start()
    try:
        assert started.wait(5)
        response = login(client, email, "correct horse battery", address())
    finally:
        release.set()
        holder.join()
    assert response.status_code == 503, response.json
    assert response.json["error"]["code"] == "password_hashing_busy"
    assert response.json["error"]["type"] == "service_unavailable"
    assert response.headers["Retry-After"] == "1"
    assert login(client, email, "correct horse battery", address()).status_code == 200


def test_hashing_runs_on_a_worker_thread_not_the_callers():
    hasher = PasswordHasher(threads=2, queue_size=4)
    assert hasher.run(threading.get_ident) != threading.get_ident()
    digest = hasher.hash("a password")
    assert hasher.verify("a password", digest) and not hasher.verify("another", digest)
