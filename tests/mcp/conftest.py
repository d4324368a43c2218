"""The mcp function as it runs in its image (uvicorn, its own process) on the test database, with a Serper test
double behind google_search and a local page server for scrape; callers are accounts of the llm function."""
from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from tests.conftest import ROOT, free_port, wait_http
from tests.doubles.sandbox_fusion import ScriptedSandbox
from tests.doubles.serper_search import SerperSearchDouble

# What tools/list offers with every backing service configured (search API, sandbox), sorted by name.
ALL_TOOLS = ["google_search", "python_exec", "scrape"]

PAGE = b"""<!doctype html><html><head><title>Test page</title><style>p{color:red}</style>
<script>var hidden = "script text";</script></head><body><h1>Hello page</h1><p>First paragraph with a
<a href="https://example.org/x">link</a>.</p><ul><li>one</li><li>two</li></ul></body></html>"""


class PageServer:
    """Pages for scrape: a normal page, redirects to internal addresses, a binary file and one that never ends."""

    def __init__(self):
        pages = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                port = pages.server.server_port
                if self.path == "/page":
                    return self._send(200, PAGE, "text/html; charset=utf-8")
                if self.path == "/redirect-loopback":
                    return self._redirect(f"http://127.0.0.1:{port}/page")
                if self.path == "/redirect-metadata":
                    return self._redirect("http://169.254.169.254/latest/meta-data/")
                if self.path == "/redirect-page":
                    return self._redirect("/page")
                if self.path == "/binary":
                    return self._send(200, b"\x89PNG\r\n\x1a\n" + b"\0" * 64, "image/png")
                if self.path == "/missing":
                    return self._send(404, b"not here", "text/plain")
                if self.path == "/endless":
                    self.send_response(200)
                    self.send_header("Content-Type", "text/html")
                    self.end_headers()
                    try:
                        while True:
                            self.wfile.write(b"<p>more</p>")
                            self.wfile.flush()
                            time.sleep(0.05)
                    except OSError:
                        return
                self._send(404, b"no", "text/plain")

            def _redirect(self, location):
                self.send_response(302)
                self.send_header("Location", location)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def _send(self, status, body, content_type):
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def port(self) -> int:
        return self.server.server_port


@pytest.fixture(scope="session")
def serper():
    with SerperSearchDouble() as double:
        yield double


@pytest.fixture(autouse=True)
def _fresh_serper(request):
    if "serper" in request.fixturenames:
        request.getfixturevalue("serper").reset()


@pytest.fixture(scope="session")
def sandbox():
    with ScriptedSandbox() as double:
        yield double


@pytest.fixture(scope="session")
def pages():
    server = PageServer()
    yield server
    server.server.shutdown()


@pytest.fixture(scope="session")
def mcp_env(database_url, keys_env, serper, sandbox):
    return {
        **keys_env,
        "DATABASE_URL": database_url,
        "SEARCH_API_URL": serper.base_url,
        "SEARCH_API_KEY": serper.api_key,
        "SEARCH_TIMEOUT_SECONDS": "2",
        "SANDBOX_FUSION_URL": sandbox.base_url,
        "SANDBOX_FUSION_TIMEOUT_SECONDS": "2",
        "SCRAPE_TIMEOUT_SECONDS": "2",
        # "localhost" is the page server; every other non-public address stays refused.
        "SCRAPE_ALLOWED_HOSTS": "localhost",
        # Admin changes show at once (the cache itself is tested in-process).
        "TOOL_CONFIG_TTL_SECONDS": "0",
        "LOG_LEVEL": "WARNING",
    }


def start_uvicorn(env: dict, log_path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "functions.mcp.main:app", "--host", "127.0.0.1", "--port", str(port),
             "--no-access-log"],
            cwd=ROOT, env={**os.environ, **env}, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_http(f"{base}/healthz")
    except TimeoutError:
        process.kill()
        raise RuntimeError(log_path.read_text()[-3000:])
    return process, base


def stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()


@pytest.fixture(scope="session")
def live_mcp(mcp_env, tmp_path_factory):
    """Base URL of the mcp function served by uvicorn, as in its image."""
    process, base = start_uvicorn(mcp_env, tmp_path_factory.mktemp("live-mcp") / "uvicorn.log")
    yield base
    stop(process)


def run(coroutine):
    return asyncio.run(coroutine)


async def with_client(url: str, headers: dict, action):
    """Run `action(client)` with the official MCP client over streamable HTTP."""
    try:
        async with httpx2.AsyncClient(headers=headers, timeout=30) as http:
            async with Client(streamable_http_client(url, http_client=http)) as client:
                return await action(client)
    except BaseExceptionGroup as group:  # the client's task group wraps what the action raised
        error = group
        while isinstance(error, BaseExceptionGroup) and len(error.exceptions) == 1:
            error = error.exceptions[0]
        raise error from None


def list_tools(url: str, headers: dict):
    return run(with_client(url, headers, lambda client: client.list_tools()))


def call_tool(url: str, headers: dict, name: str, arguments: dict):
    return run(with_client(url, headers, lambda client: client.call_tool(name, arguments)))
