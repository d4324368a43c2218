"""Building blocks of the local stack, shared by `python -m dev.run` and the end-to-end tests.

Importing this module starts nothing; each function does one step. Paths are absolute (from the project root), so
callers may run from any directory.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from pathlib import Path

import yaml

from dev import model_server
from shared import function_manifest

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DATA_DIR = PROJECT_ROOT / ".data"
DEFAULT_PROVIDERS_FILE = PROJECT_ROOT / "dev" / "providers.yml"
KONG_CONFIG = PROJECT_ROOT / "gateway" / "kong.yml"
LOCAL_PROVIDER_NAME = "local"
DEFAULT_LOCAL_PROVIDER_URL = model_server.base_url()
GATEWAY_PORT = 8000



class StartupError(RuntimeError):
    pass


def available_functions(root: Path = PROJECT_ROOT) -> dict[str, int]:
    """Every function the local stack runs, with its port (Jan's): each functions/<name>/function.toml."""
    return {name: manifest.port for name, manifest in function_manifest.all_manifests(root).items()}


def public_functions(root: Path = PROJECT_ROOT) -> set[str]:
    """The functions the gateway routes to (the rest are called only by other functions)."""
    return {name for name, manifest in function_manifest.all_manifests(root).items() if manifest.public}


def function_command(name: str, port: int) -> list[str]:
    """The server its manifest declares (gunicorn or uvicorn), as the image's launcher runs it."""
    manifest = function_manifest.function(name, PROJECT_ROOT)
    return [sys.executable, "-m", *manifest.server_argv(function_env(port, {}))]


def function_env(port: int, stack_env: dict[str, str]) -> dict[str, str]:
    return {**stack_env, "PORT": str(port), "HOST": "127.0.0.1"}


def local_url(port: int, path: str = "") -> str:
    return f"http://127.0.0.1:{port}{path}"


def gateway_command(upstreams: dict[str, str], port: int = GATEWAY_PORT) -> list[str]:
    argv = [sys.executable, "-m", "gateway.devgateway", "--config", str(KONG_CONFIG), "--port", str(port)]
    for name, url in upstreams.items():
        argv += ["--upstream", f"{name}={url}"]
    return argv


def base_env(database_url: str, keys_env: dict[str, str], environ: dict[str, str] | None = None) -> dict[str, str]:
    """The environment every child gets: the caller's, plus the database, keys and development mode. Key
    settings already present in the caller's environment win over the generated development keys."""
    environ = dict(os.environ if environ is None else environ)
    return {
        **keys_env,
        # Behind the dev gateway every peer is 127.0.0.1 and Host is the function's own address (as with Kong).
        "CLIENT_ADDRESS_HEADER": "X-Real-IP",
        "PUBLIC_BASE_URL": f"http://localhost:{GATEWAY_PORT}",
        **local_service_urls(),
        **environ,
        "DATABASE_URL": database_url,
        "ENVIRONMENT": "development",
        "PYTHONUNBUFFERED": "1",
    }


def local_service_urls() -> dict[str, str]:
    """Where functions reach the local stack's other functions: the embedding service (file search)."""
    functions = available_functions()
    return {"EMBEDDING_SERVICE_URL": local_url(functions["embeddings"])} if "embeddings" in functions else {}


def dev_keys_env(keys_dir: Path = DATA_DIR / "keys") -> dict[str, str]:
    """Generate (once) the token signing key, its public key set and the provider-key encryption key; returns
    TOKEN_SIGNING_KEY_FILE, JWKS_FILE and PROVIDER_KEY_ENCRYPTION_KEY_FILE."""
    from shared.keys import ensure_dev_keys

    return {name: str(value) for name, value in ensure_dev_keys(keys_dir).items()}


def run_migrations(env: dict[str, str]) -> None:
    _run_step(
        "migrations (alembic upgrade head)",
        [sys.executable, "-m", "alembic", "-c", "migrations/alembic.ini", "upgrade", "head"],
        env,
    )


def local_provider_url(environ: dict[str, str] | None = None) -> str:
    environ = os.environ if environ is None else environ
    return environ.get("LOCAL_PROVIDER_URL") or environ.get("PROVIDER_URL") or DEFAULT_LOCAL_PROVIDER_URL


def write_providers_file(
    provider_url: str, *, data_dir: Path = DATA_DIR, source: Path = DEFAULT_PROVIDERS_FILE
) -> Path:
    """Copy the provider registrations into the data folder with the local provider pointed at `provider_url`."""
    registrations = yaml.safe_load(source.read_text())
    for provider in registrations["providers"]:
        if provider["name"] == LOCAL_PROVIDER_NAME and provider["base_url"] != provider_url:
            provider["base_url"] = provider_url
            provider.pop("context_length", None)  # declared for our llama.cpp server, not for another one
    data_dir.mkdir(parents=True, exist_ok=True)
    resolved = data_dir / "providers.yml"
    resolved.write_text(yaml.safe_dump(registrations, sort_keys=False))
    return resolved


def load_providers(providers_file: Path, env: dict[str, str]) -> None:
    _run_step(
        f"provider registration ({providers_file})",
        [sys.executable, "-m", "functions.llm.manage", "load-providers", str(providers_file)],
        env,
    )


def start_model_server(
    port: int = model_server.DEFAULT_PORT, timeout: float = 120.0, **popen_kwargs
) -> subprocess.Popen:
    """Start the local model server and wait until it lists its model; the caller stops it (terminate/wait)."""
    process = model_server.start(port, **popen_kwargs)
    try:
        model_server.wait_ready(model_server.base_url(port), timeout, process)
    except BaseException:
        process.terminate()
        process.wait()
        raise
    return process


def guest_token(gateway_url: str) -> str:
    request = urllib.request.Request(gateway_url + "/auth/guest-login", data=b"{}", method="POST")
    request.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.load(response)["access_token"]


def model_ids(gateway_url: str, token: str) -> list[str]:
    request = urllib.request.Request(gateway_url + "/v1/models", headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return [model["id"] for model in json.load(response)["data"]]


def _run_step(description: str, argv: list[str], env: dict[str, str]) -> None:
    result = subprocess.run(argv, env=env, cwd=PROJECT_ROOT)
    if result.returncode != 0:
        raise StartupError(f"{description} failed with exit code {result.returncode} (its output is above)")
