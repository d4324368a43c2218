"""`make run`: the whole platform on this machine, in the foreground, until Ctrl-C.

Order: embedded PostgreSQL (unless DATABASE_URL is set) -> development keys -> migrations -> local model server
(unless another provider is configured) -> provider registration -> one process per function -> dev gateway on
:8000 -> readiness checks -> the job sweep timer -> one ready line with copy-paste commands. Ctrl-C or SIGTERM stops every process started
here, the database last; if any process dies, the rest are stopped too.
"""
from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import time
import urllib.error
from pathlib import Path

from dev import embedded_pg, model_server, stack
from dev import sandbox as dev_sandbox
from dev.job_sweeper import SweepTimer
from dev.readiness import NotReady, PortInUse, ensure_ports_free, wait_http
from dev.supervisor import ChildExited, Shutdown, Supervisor
from shared.settings import from_env

READY_TIMEOUT_SECONDS = 120.0


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m dev.run", description=__doc__.split("\n\n")[0])
    parser.add_argument("--no-model", action="store_true", help="do not start the local model server on 8101")
    parser.add_argument("--data-dir", type=Path, default=stack.DATA_DIR, help="where local state lives (.data/)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    began = time.monotonic()
    try:
        with Supervisor() as supervisor:
            run_stack(supervisor, args, began)
    except Shutdown as signal_name:
        print(f"\n{signal_name}: stopped everything.", flush=True)
        return 0
    except ChildExited as error:
        print(f"\n{error}; stopped everything.", file=sys.stderr, flush=True)
        return 1
    except (stack.StartupError, PortInUse, NotReady) as error:
        print(f"\nStartup failed: {error}", file=sys.stderr, flush=True)
        return 1
    return 0


def run_stack(supervisor: Supervisor, args: argparse.Namespace, began: float) -> None:
    functions = stack.available_functions()
    if not functions:
        raise stack.StartupError("no function to run: no functions/<name>/function.toml exists")
    provider_url = stack.local_provider_url()
    providers_file = os.environ.get("PROVIDERS_FILE")
    run_model = not args.no_model and not providers_file and provider_url == stack.DEFAULT_LOCAL_PROVIDER_URL

    ports = {**functions, "gateway": stack.GATEWAY_PORT}
    if run_model:
        ports["model server"] = model_server.DEFAULT_PORT
    sandbox = from_env(dev_sandbox.DevSandboxSettings)
    if sandbox.dev_sandbox_enabled:
        ports["sandbox"] = sandbox.dev_sandbox_port
    ensure_ports_free(ports)
    if run_model:
        model_server.ensure_installed()

    args.data_dir.mkdir(parents=True, exist_ok=True)
    env = stack.base_env(start_database(supervisor, args.data_dir), stack.dev_keys_env(args.data_dir / "keys"))
    stack.run_migrations(env)

    root = str(stack.PROJECT_ROOT)
    if sandbox.dev_sandbox_enabled:
        # Off unless asked for (docs/sandbox.md): python_exec then runs code in this loopback-only sandbox.
        supervisor.start("sandbox", [sys.executable, "-m", "dev.sandbox"], dev_sandbox.child_env(os.environ), root)
        wait_http(dev_sandbox.base_url(sandbox) + "/v1/ping", READY_TIMEOUT_SECONDS,
                  check_alive=supervisor.raise_if_any_exited)
        env = {**env, "SANDBOX_FUSION_URL": dev_sandbox.base_url(sandbox)}
    model = supervisor.start("model", model_server.command(), env, root) if run_model else None
    for name, port in functions.items():
        supervisor.start(name, stack.function_command(name, port), stack.function_env(port, env), root)
    # The gateway reaches the public functions; internal ones are called by the other functions only.
    public = stack.public_functions()
    upstreams = {name: stack.local_url(port) for name, port in functions.items() if name in public}
    supervisor.start("gateway", stack.gateway_command(upstreams, stack.GATEWAY_PORT), env, root)

    if model is not None:
        waited = model_server.wait_ready(timeout=READY_TIMEOUT_SECONDS, process=model.process)
        supervisor.say(f"model server ready on {model_server.base_url()} after {waited:.1f} s")
    # Registration asks each provider for its models, so it waits for the model server.
    stack.load_providers(Path(providers_file or stack.write_providers_file(provider_url, data_dir=args.data_dir)), env)
    gateway_url = wait_until_serving(supervisor, functions)
    # The cluster's sweep CronJob, here a timer: requeues lost jobs and dispatches due ones to their function.
    supervisor.on_stop(SweepTimer(env, upstreams).start().stop)

    model_id = discover_model_id(gateway_url)
    supervisor.say(ready_banner(stack.GATEWAY_PORT, functions, model_id, time.monotonic() - began))
    supervisor.wait()


def start_database(supervisor: Supervisor, data_dir: Path) -> str:
    """DATABASE_URL from the environment, else the embedded server's URL (stopped after every other process)."""
    if os.environ.get("DATABASE_URL"):
        supervisor.say("database: DATABASE_URL from the environment")
        return os.environ["DATABASE_URL"]
    database = embedded_pg.start(data_dir / "pg")
    supervisor.on_stop(database.stop)
    supervisor.say(f"database: embedded PostgreSQL ready in {database.started_in_seconds:.1f} s at {database.url}")
    return database.url


def wait_until_serving(supervisor: Supervisor, functions: dict[str, int]) -> str:
    """Wait for every function's /readyz, then the gateway; returns the gateway's URL."""
    check_alive = supervisor.raise_if_any_exited
    for port in functions.values():
        wait_http(stack.local_url(port, "/readyz"), READY_TIMEOUT_SECONDS, check_alive=check_alive)
    gateway_url = stack.local_url(stack.GATEWAY_PORT)
    # Any answer below 500 means the gateway is up and routing; /healthz may or may not be a route of its own.
    wait_http(
        gateway_url + "/healthz", READY_TIMEOUT_SECONDS, accept=lambda status: status < 500, check_alive=check_alive
    )
    return gateway_url


def discover_model_id(gateway_url: str) -> str | None:
    """The local model's id as the llm function lists it, asked through the gateway like a client would."""
    try:
        ids = stack.model_ids(gateway_url, stack.guest_token(gateway_url))
    except (urllib.error.URLError, OSError, KeyError, ValueError):
        return None
    alias = model_server.DEFAULT_MODEL_ALIAS.lower()
    return next((model_id for model_id in ids if alias in model_id.lower()), ids[0] if ids else None)


def ready_banner(gateway_port: int, functions: dict[str, int], model_id: str | None, seconds: float) -> str:
    gateway = f"localhost:{gateway_port}"
    running = ", ".join(f"{name} :{port}" for name, port in functions.items())
    chat_body = json.dumps({
        "model": model_id or "<a model id from GET /v1/models>",
        "messages": [{"role": "user", "content": "Say hello in five words."}],
    })
    lines = [
        "",
        f"READY in {seconds:.0f} s: gateway http://{gateway} (OpenAI base_url http://{gateway}/v1); functions"
        f" {running}. Ctrl-C stops everything.",
        "",
        f"  TOKEN=$(curl -s -X POST {gateway}/auth/guest-login"
        """ | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')""",
        f'  curl -s {gateway}/v1/chat/completions -H "Authorization: Bearer $TOKEN"'
        f" -H 'Content-Type: application/json' -d {shlex.quote(chat_body)}",
    ]
    if model_id is None:
        lines.append(f'  (no model listed yet: curl -s {gateway}/v1/models -H "Authorization: Bearer $TOKEN")')
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
