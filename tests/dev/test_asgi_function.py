"""An ASGI function (function.toml `server = "asgi"`) runs on uvicorn through the image's launcher
(`python -m shared.serve`), on the port Knative gives it, and stops cleanly on SIGTERM."""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys

from dev import stack
from dev.readiness import wait_http

MANIFEST = '''name = "asgidemo"
port = 8199
server = "asgi"
app = "functions.asgidemo.main:app"
extra = "asgidemo"
visibility = "internal"
'''
# A bare ASGI app: the launcher and uvicorn are under test, not a framework.
MAIN = '''
async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    status = 200 if scope["path"] == "/readyz" else 404
    await send({"type": "http.response.start", "status": status, "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": b"{}"})
'''


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_the_launcher_serves_an_asgi_function_on_uvicorn_and_drains_on_sigterm(tmp_path):
    shutil.copytree(stack.PROJECT_ROOT / "shared", tmp_path / "shared", ignore=shutil.ignore_patterns("__pycache__"))
    folder = tmp_path / "functions" / "asgidemo"
    folder.mkdir(parents=True)
    (tmp_path / "functions" / "__init__.py").write_text("")
    (folder / "__init__.py").write_text("")
    (folder / "function.toml").write_text(MANIFEST)
    (folder / "main.py").write_text(MAIN)
    port = free_port()
    env = {**os.environ, "FUNCTION": "asgidemo", "PORT": str(port), "HOST": "127.0.0.1",
           "PYTHONPATH": str(tmp_path)}
    process = subprocess.Popen([sys.executable, "-m", "shared.serve"], cwd=tmp_path, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        wait_http(f"http://127.0.0.1:{port}/readyz", 30, check_alive=lambda: _still_running(process))
        process.send_signal(signal.SIGTERM)
        # uvicorn drains, then re-raises the signal it caught, so it ends as killed by SIGTERM (exit code 143).
        assert process.wait(timeout=30) in (0, -signal.SIGTERM)
    finally:
        if process.poll() is None:
            process.kill()
    output = process.stdout.read()
    assert f"Uvicorn running on http://127.0.0.1:{port}" in output, output
    assert "Shutting down" in output and "Application shutdown complete" in output, output


def _still_running(process: subprocess.Popen) -> None:
    assert process.poll() is None, process.stdout.read()
