"""Real sockets on both sides of the dev gateway: scripted upstream HTTP servers in threads of the test process,
and the gateway itself as a subprocess (`python -m gateway.devgateway`), as `make run` starts it."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
KONG_YML = ROOT / "gateway" / "kong.yml"
FIXTURES = Path(__file__).resolve().parent / "fixtures"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_listening(port: int, process: subprocess.Popen, log: Path, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"gateway exited with {process.returncode}: {log.read_text()}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listens on port {port}")


@dataclass
class Seen:
    """What the upstream received for one request."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Upstream:
    """A scripted upstream, by path: `.../sse` sends one event, pauses one second, sends another (noting when);
    `...hold-stream` sends one event, then waits for the peer to close; `...hold` sends nothing and waits for the
    peer to close (`closed_by_peer` is set when it does); `...slow` echoes after two seconds; anything else echoes
    at once: the method, path, headers and body length it received, as JSON."""

    url: str
    port: int
    seen: list[Seen] = field(default_factory=list)
    closed_by_peer: threading.Event = field(default_factory=threading.Event)
    # The gateway's connections (client addresses) that carried requests.
    connections: set[tuple[str, int]] = field(default_factory=set)
    # time.monotonic() when `/sse` began sending its second event.
    second_event_at: float | None = None

    def reset(self) -> None:
        self.seen.clear()
        self.closed_by_peer.clear()
        self.connections.clear()
        self.second_event_at = None


def _handler(upstream: Upstream) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args) -> None:
            pass

        def _body(self) -> bytes:
            if "chunked" in self.headers.get("Transfer-Encoding", ""):
                blocks = []
                while size := int(self.rfile.readline().split(b";")[0], 16):
                    blocks.append(self.rfile.read(size))
                    self.rfile.readline()
                self.rfile.readline()
                return b"".join(blocks)
            return self.rfile.read(int(self.headers.get("Content-Length") or 0))

        def _send_chunk(self, data: bytes) -> None:
            self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
            self.wfile.flush()

        def _wait_for_peer_close(self) -> None:
            self.connection.settimeout(10)
            try:
                if self.connection.recv(1) == b"":
                    upstream.closed_by_peer.set()
            except OSError:
                upstream.closed_by_peer.set()
            self.close_connection = True

        def _stream_headers(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            self.wfile.flush()

        def handle_one_request(self) -> None:
            upstream.connections.add(self.client_address)
            super().handle_one_request()

        def _any(self) -> None:
            body = self._body()
            upstream.seen.append(Seen(self.command, self.path, dict(self.headers.items()), body))
            if self.path.endswith("/sse"):
                self._stream_headers()
                self._send_chunk(b"data: first\n\n")
                time.sleep(1.0)
                upstream.second_event_at = time.monotonic()
                self._send_chunk(b"data: second\n\n")
                self._send_chunk(b"")
            elif "hold-stream" in self.path:
                self._stream_headers()
                self._send_chunk(b"data: first\n\n")
                self._wait_for_peer_close()
            elif "hold" in self.path:
                self._wait_for_peer_close()
            else:
                if "slow" in self.path:
                    time.sleep(2.0)
                payload = json.dumps({"method": self.command, "path": self.path, "headers": dict(self.headers.items()),
                                      "body_length": len(body)}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.send_header("Connection", "keep-alive, X-Upstream-Private")
                self.send_header("X-Upstream-Private", "hop-by-hop by the Connection header")
                self.send_header("Set-Cookie", "a=1")
                self.send_header("Set-Cookie", "b=2")
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(payload)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _any

    return Handler


@dataclass
class RunningGateway:
    url: str
    port: int
    process: subprocess.Popen
    # The gateway's stderr (a file, not a pipe nobody drains).
    log: Path


class _UpstreamServer(ThreadingHTTPServer):
    daemon_threads = True
    # socketserver's default backlog of 5 drops connections under a burst of concurrent streams.
    request_queue_size = 128


def serve_upstream() -> tuple[Upstream, ThreadingHTTPServer]:
    port = free_port()
    state = Upstream(url=f"http://127.0.0.1:{port}", port=port)
    server = _UpstreamServer(("127.0.0.1", port), _handler(state))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return state, server


def launch_gateway(upstreams: dict[str, str], config: Path = KONG_YML,
                   env: dict[str, str] | None = None) -> RunningGateway:
    port = free_port()
    argv = [sys.executable, "-m", "gateway.devgateway", "--config", str(config), "--port", str(port), "--no-access-log"]
    for name, url in upstreams.items():
        argv += ["--upstream", f"{name}={url}"]
    log = Path(tempfile.mkstemp(prefix="devgateway-", suffix=".log")[1])
    with log.open("w") as stderr:
        process = subprocess.Popen(argv, cwd=ROOT, env={**os.environ, **(env or {})}, stdout=subprocess.DEVNULL,
                                   stderr=stderr)
    wait_listening(port, process, log)
    return RunningGateway(f"http://127.0.0.1:{port}", port, process, log)


def stop_gateway(gateway: RunningGateway) -> None:
    gateway.process.terminate()
    gateway.process.wait(timeout=10)
    gateway.log.unlink(missing_ok=True)
