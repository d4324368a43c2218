"""Stand-ins for a function and the dev gateway, for running dev.run without the real services.

    python stub_service.py function        # PORT from the environment; /readyz answers 200
    python stub_service.py gateway PORT    # /healthz, /auth/guest-login and /v1/models like the real gateway
"""
import json
import os
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

TOKEN = "stub-token"
MODELS = {"object": "list", "data": [{"id": "remote/other-model"}, {"id": "local/smollm2-135m-instruct"}]}


class FunctionStub(BaseHTTPRequestHandler):
    def do_GET(self):
        self.reply(200 if self.path == "/readyz" else 404, {})

    def reply(self, status, body):
        payload = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args):
        pass


class GatewayStub(FunctionStub):
    def do_GET(self):
        if self.path == "/v1/models":
            authorized = self.headers.get("Authorization") == f"Bearer {TOKEN}"
            self.reply(200 if authorized else 401, MODELS)
        else:
            self.reply(200 if self.path == "/healthz" else 404, {})

    def do_POST(self):
        self.reply(201 if self.path == "/auth/guest-login" else 404, {"access_token": TOKEN})


if __name__ == "__main__":
    role = sys.argv[1]
    port = int(sys.argv[2]) if role == "gateway" else int(os.environ["PORT"])
    env_seen = {name: os.environ.get(name) for name in ("HOST", "DATABASE_URL", "ENVIRONMENT", "JWKS_FILE")}
    print("pid", os.getpid(), "env", json.dumps(env_seen), flush=True)
    ThreadingHTTPServer(("127.0.0.1", port), GatewayStub if role == "gateway" else FunctionStub).serve_forever()
