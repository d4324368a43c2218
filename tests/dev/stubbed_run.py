"""`python -m dev.run` with its external steps replaced: stub services instead of gunicorn and the gateway, a
stand-in for shared.keys, no migrations, provider loading or job sweep timer, DATABASE_URL set so no database
starts.

    python stubbed_run.py LLM_PORT GATEWAY_PORT
"""
import sys
from pathlib import Path

from dev import run, stack

STUB = str(Path(__file__).with_name("stub_service.py"))

llm_port, gateway_port = int(sys.argv[1]), int(sys.argv[2])
stack.available_functions = lambda: {"llm": llm_port}
stack.GATEWAY_PORT = gateway_port
stack.public_functions = lambda: {"llm"}
stack.function_command = lambda name, port: [sys.executable, STUB, "function"]
stack.gateway_command = lambda upstreams, port: [sys.executable, STUB, "gateway", str(port)]
stack.dev_keys_env = lambda keys_dir: {"JWKS_FILE": str(keys_dir / "jwks.json")}
stack.run_migrations = lambda env: print("migrations ran against", env["DATABASE_URL"], flush=True)
stack.load_providers = lambda path, env: print("providers loaded from", path, flush=True)


class StubSweepTimer:
    def __init__(self, env, function_urls):
        print("job sweep timer for", sorted(function_urls), flush=True)

    def start(self):
        return self

    def stop(self):
        print("job sweep timer stopped", flush=True)


run.SweepTimer = StubSweepTimer
sys.exit(run.main(["--no-model", "--data-dir", sys.argv[3]]))
