"""Entry point: `gunicorn --config python:shared.gunicorn_conf functions.embeddings.main:app`."""
from functions.embeddings.app import create_app

app = create_app()
