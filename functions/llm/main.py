"""Entry point: `gunicorn --config python:shared.gunicorn_conf functions.llm.main:app`."""
from functions.llm.app import create_app

app = create_app()
