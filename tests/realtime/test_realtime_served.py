"""The realtime function served as in its image (gunicorn, gevent worker): the room sync runs in the background of
the serving process with no request to drive it, and the process still stops cleanly on SIGTERM."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request

from tests.conftest import ROOT, free_port, wait_http
from tests.realtime.conftest import bearer


def call(method: str, url: str, headers: dict) -> dict:
    request = urllib.request.Request(url, method=method, headers=headers)
    with urllib.request.urlopen(request, timeout=5) as response:
        return json.loads(response.read())


def test_the_served_process_syncs_rooms_in_the_background(realtime_env, user, livekit, tmp_path):
    port = free_port()
    env = {**os.environ, **realtime_env, "PORT": str(port), "HOST": "127.0.0.1",
           "SESSION_CLEANUP_INTERVAL_SECONDS": "0.2", "REALTIME_SYNC_ENABLED": "true"}
    log_path = tmp_path / "gunicorn.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "--config", "python:shared.gunicorn_conf", "functions.realtime.main:app"],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_http(f"{base}/readyz")
        created = call("POST", f"{base}/v1/realtime/sessions", bearer(user))
        livekit.join(created["room_id"], user.user_id)
        deadline = time.monotonic() + 10
        status = None
        while time.monotonic() < deadline and status != "connected":
            time.sleep(0.1)
            status = call("GET", f"{base}/v1/realtime/sessions/{created['id']}", bearer(user))["status"]
        assert status == "connected", log_path.read_text()[-2000:]
    finally:
        process.send_signal(signal.SIGTERM)
        code = process.wait(timeout=40)
    assert code == 0, log_path.read_text()[-2000:]
