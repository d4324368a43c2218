"""ScriptedSandbox: a TEST DOUBLE of a SandboxFusion server.

It runs no code. It is a real HTTP/1.1 server on 127.0.0.1 speaking SandboxFusion's wire protocol
(`POST /run_code` -> RunCodeResponse JSON, `GET /v1/ping` -> "pong") that answers each run with the next scripted
answer (a RunCodeResponse dict, or `(status, raw_body)` for an HTTP error), after an optional delay, so tests can
force a slow sandbox, files in the answer, sandbox errors and HTTP failures. It records every request body.

    with ScriptedSandbox(delay=2.0) as sandbox:
        sandbox.script(success(stdout="hi\\n"))
        ...  # point the code under test at sandbox.base_url
        assert sandbox.requests[-1] == {"code": "...", "language": "python"}
"""
from __future__ import annotations

import json
import threading
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def success(stdout: str = "", stderr: str = "", execution_time: float = 0.01, files: dict | None = None) -> dict:
    return {"status": "Success", "message": "", "compile_result": None,
            "run_result": {"status": "Finished", "execution_time": execution_time, "return_code": 0,
                           "stdout": stdout, "stderr": stderr},
            "executor_pod_name": None, "files": files or {}}


class ScriptedSandbox:
    def __init__(self, delay: float = 0.0):
        self.delay = delay
        self.requests: list[dict] = []
        self._answers: deque = deque()
        self._stopping = threading.Event()
        double = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                self._send(200, json.dumps("pong") if self.path == "/v1/ping" else '{"detail": "Not Found"}')

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                double.requests.append({"path": self.path, "content_type": self.headers.get("Content-Type"),
                                        "body": json.loads(body)})
                double._stopping.wait(double.delay)
                answer = double._answers.popleft() if double._answers else success()
                if isinstance(answer, tuple):
                    self._send(*answer)
                else:
                    self._send(200, json.dumps(answer))

            def _send(self, status: int, text: str) -> None:
                data = text.encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up waiting (a timeout test)

            def log_message(self, *args) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.base_url = f"http://127.0.0.1:{self._server.server_port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def script(self, *answers) -> None:
        self._answers.extend(answers)

    def __enter__(self) -> ScriptedSandbox:
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._stopping.set()
        self._server.shutdown()
        self._server.server_close()
