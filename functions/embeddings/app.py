"""The embedding function's app: the shared factory (health, errors, auth, metrics) plus the embedding routes.
The model loads here, before the process serves, and is checked against EMBEDDING_DIMENSION."""
from __future__ import annotations

from flask import Flask

from shared.app import create_app as create_platform_app
from functions.embeddings.routes import bp
from functions.embeddings.service import EmbeddingService
from functions.embeddings.settings import EmbeddingsSettings, load_settings


def create_app(settings: EmbeddingsSettings | None = None) -> Flask:
    settings = settings or load_settings()
    service = EmbeddingService(settings)
    return create_platform_app(settings, [bp], services={"embeddings": service})
