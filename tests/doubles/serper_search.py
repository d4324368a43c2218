"""A test double of the Serper search API (google.serper.dev): `POST /search` with `X-API-KEY` and Serper's JSON
body, answered in Serper's format (`searchParameters`, `organic[]` with title, link, snippet, position).

Scripted: `.script(*answers)` queues answers for the next searches (FIFO); with none queued it answers results
built from the query. An answer is ("results", [organic...]), ("status", code), ("garbage", bytes), or
("hang", seconds). Every request is recorded (`.requests`: headers lower-cased, JSON body)."""
from __future__ import annotations

import collections
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class SerperSearchDouble:
    def __init__(self, api_key: str = "test-serper-key"):
        self.api_key = api_key
        self.requests: list[dict] = []
        self._script: collections.deque = collections.deque()
        self._lock = threading.Lock()
        double = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                try:
                    body = json.loads(raw)
                except ValueError:
                    body = None
                with double._lock:
                    double.requests.append({"path": self.path, "body": body,
                                            "headers": {k.lower(): v for k, v in self.headers.items()}})
                    answer = double._script.popleft() if double._script else None
                if self.path != "/search":
                    return self._send(404, {"message": "Not found"})
                if self.headers.get("X-API-KEY") != double.api_key:
                    return self._send(403, {"message": "Unauthorized.", "statusCode": 403})
                if not isinstance(body, dict) or not isinstance(body.get("q"), str):
                    return self._send(400, {"message": "Missing query parameter", "statusCode": 400})
                if answer is None:
                    answer = ("results", [
                        {"title": f"Result {n} for {body['q']}", "link": f"https://example.com/{n}",
                         "snippet": f"Snippet {n} about {body['q']}.", "position": n} for n in (1, 2, 3)])
                kind, value = answer
                if kind == "hang":
                    time.sleep(value)
                    return self._send(200, {"searchParameters": {"q": body["q"]}, "organic": []})
                if kind == "status":
                    return self._send(value, {"message": "upstream trouble", "statusCode": value})
                if kind == "garbage":
                    return self._send_raw(200, value, "application/json")
                parameters = {"q": body["q"], "type": "search", "engine": "google",
                              **{k: body[k] for k in ("gl", "hl", "num", "page", "location", "tbs") if k in body}}
                return self._send(200, {"searchParameters": parameters, "organic": value, "credits": 1})

            def _send(self, status, payload):
                self._send_raw(status, json.dumps(payload).encode(), "application/json")

            def _send_raw(self, status, data, content_type):
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                try:
                    self.wfile.write(data)
                except OSError:
                    pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}"

    def script(self, *answers) -> None:
        with self._lock:
            self._script.extend(answers)

    def reset(self) -> None:
        with self._lock:
            self._script.clear()
            self.requests.clear()

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()
