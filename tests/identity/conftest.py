"""A second function for service-identity tests: the shared app factory with service name `mcp`, one route that
accepts delegation and one that does not, verifying tokens with the same public key set as llm."""
from __future__ import annotations

import pytest
from flask import Blueprint

from shared.auth import authenticated, current_principal
from shared.settings import PlatformSettings, from_env
from tests.conftest import SERVICE_CREDENTIALS


@pytest.fixture(scope="session")
def callee_app(llm_env):
    from shared.app import create_app

    bp = Blueprint("callee", __name__)

    @bp.get("/v1/delegated")
    @authenticated(allow_delegation=True)
    def delegated():
        principal = current_principal()
        return {"user_id": principal.public_id, "acting_service": principal.acting_service,
                "auth_method": principal.auth_method, "is_admin": principal.is_admin}

    @bp.get("/v1/own")
    @authenticated
    def own():
        return {"user_id": current_principal().public_id}

    settings = from_env(PlatformSettings, environ=llm_env, service_name="mcp")
    return create_app(settings, [bp])


@pytest.fixture
def callee(callee_app):
    return callee_app.test_client()


@pytest.fixture
def mint(client):
    """POST /internal/delegation-tokens as a service (its test credential), returning the response."""
    def call(audience, user_id=None, *, service="responses", credential=None):
        body = {"audience": audience}
        if user_id is not None:
            body["user_id"] = user_id
        credential = credential or SERVICE_CREDENTIALS[service]
        return client.post("/internal/delegation-tokens", json=body,
                           headers={"Authorization": f"Bearer {credential}"})

    return call


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}
