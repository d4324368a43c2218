"""OpenTelemetry export: with OTEL_EXPORTER_OTLP_ENDPOINT set, requests become spans sent over OTLP/HTTP, and the
trace continues to the model provider. The collector here is a test double that records what it receives."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from tests.conftest import ROOT, TEST_MODEL_ID, free_port, wait_http


class CollectorDouble(ThreadingHTTPServer):
    """Test double of an OTLP/HTTP collector: accepts POST /v1/traces and keeps the bodies."""

    def __init__(self):
        self.bodies: list[tuple[str, bytes]] = []

        collector = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                collector.bodies.append((self.path, body))
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        super().__init__(("127.0.0.1", 0), Handler)


def test_spans_are_exported_and_the_trace_reaches_the_provider(llm_env, provider, upstream):
    collector = CollectorDouble()
    threading.Thread(target=collector.serve_forever, daemon=True).start()
    port = free_port()
    env = {**os.environ, **llm_env, "PORT": str(port), "HOST": "127.0.0.1",
           "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{collector.server_address[1]}",
           "OTEL_BSP_SCHEDULE_DELAY": "100"}
    process = subprocess.Popen([sys.executable, "-m", "gunicorn", "--config", "python:shared.gunicorn_conf",
                                "functions.llm.main:app"], cwd=ROOT, env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        base = f"http://127.0.0.1:{port}"
        wait_http(f"{base}/readyz")
        with urllib.request.urlopen(urllib.request.Request(f"{base}/auth/guest-login", method="POST")) as response:
            token = json.loads(response.read())["access_token"]
        trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"
        request = urllib.request.Request(
            f"{base}/v1/chat/completions", method="POST",
            data=json.dumps({"model": TEST_MODEL_ID, "messages": [{"role": "user", "content": "t"}]}).encode(),
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json",
                     "traceparent": f"00-{trace_id}-00f067aa0ba902b7-01"})
        with urllib.request.urlopen(request) as response:
            assert response.status == 200
        assert upstream.requests[-1].headers["traceparent"].split("-")[1] == trace_id
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not any(bytes.fromhex(trace_id) in b for _, b in collector.bodies):
            time.sleep(0.1)
        exported = [body for path, body in collector.bodies if path == "/v1/traces"]
        assert any(bytes.fromhex(trace_id) in body and b"/v1/chat/completions" in body for body in exported)
    finally:
        process.terminate()
        process.wait(timeout=15)
        collector.shutdown()
