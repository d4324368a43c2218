"""Entry point: `gunicorn --config python:shared.gunicorn_conf functions.realtime.main:app` (always on: it also
runs the room sync in the background)."""
from functions.realtime.app import create_app, start_room_sync

app = create_app()
start_room_sync(app)
