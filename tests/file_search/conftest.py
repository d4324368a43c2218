"""File search against the real pgvector of the embedded PostgreSQL and the real embedding function (a gunicorn
process with all-MiniLM-L6-v2)."""
from __future__ import annotations

import dataclasses

import pytest
from sqlalchemy import select

from shared.db import Database
from shared.file_search import EmbeddingClient, FileSearch, FileSearchSettings
from shared.schema import users
from shared.settings import PlatformSettings


@pytest.fixture(scope="session")
def search_db(database_url):
    db = Database.from_settings(PlatformSettings(database_url=database_url))
    yield db
    db.engine.dispose()


@pytest.fixture(scope="session")
def embedder(live_embeddings):
    return EmbeddingClient(live_embeddings, dimension=384, timeout_seconds=30)


@pytest.fixture
def make_search(search_db, embedder):
    def make(embedding_client=None, **settings) -> FileSearch:
        return FileSearch(search_db, embedding_client or embedder,
                          dataclasses.replace(FileSearchSettings(), **settings))

    return make


@pytest.fixture
def search(make_search):
    return make_search()


class Person:
    """A guest account: its internal id (what file search keys on) and the credential it presents."""

    def __init__(self, app, body):
        with app.extensions["jan"].db.read() as conn:
            self.user_id = conn.execute(select(users.c.id).where(users.c.public_id == body["user_id"])).scalar_one()
        self.public_id = body["user_id"]
        self.token = body["access_token"]
        self.authorization = f"Bearer {self.token}"


@pytest.fixture
def new_person(app):
    client = app.test_client()

    def make() -> Person:
        response = client.post("/auth/guest-login")
        assert response.status_code == 201
        return Person(app, response.json)

    return make
