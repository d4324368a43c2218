"""The local model server: a portable native build (flags, its keyed wheel folder, the loaded library's features),
readiness that means "answers a completion", deaths named by signal, and a real completion (e2e)."""
import re
import socket
import subprocess
import sys
import textwrap
import time

import pytest

from dev import model_server, stack
from dev.readiness import NotReady
from tests.conftest import ROOT

# What a `-march=native` build reports on a Xeon with AVX-512 and AMX: the build that crashed (issue 7).
NATIVE_XEON_INFO = (
    "CPU : SSE3 = 1 | SSSE3 = 1 | AVX = 1 | AVX_VNNI = 1 | AVX2 = 1 | F16C = 1 | FMA = 1 | BMI2 = 1 | AVX512 = 1 |"
    " AVX512_VBMI = 1 | AVX512_VNNI = 1 | AVX512_BF16 = 1 | AMX_INT8 = 1 | LLAMAFILE = 1 | OPENMP = 1 | REPACK = 1 |"
)
PORTABLE_INFO = "CPU : SSE3 = 1 | SSSE3 = 1 | AVX = 1 | AVX2 = 1 | F16C = 1 | FMA = 1 | BMI2 = 1 | LLAMAFILE = 1 | OPENMP = 1 | REPACK = 1 |"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_features_beyond_the_baseline_are_found_in_llama_cpp_system_info():
    assert model_server.features_beyond_baseline(NATIVE_XEON_INFO, "x86_64") == {
        "AVX_VNNI", "AVX512", "AVX512_VBMI", "AVX512_VNNI", "AVX512_BF16", "AMX_INT8"}
    assert model_server.features_beyond_baseline(PORTABLE_INFO, "x86_64") == set()
    assert model_server.features_beyond_baseline("CPU : AVX2 = 1 | AVX512 = 0 |", "x86_64") == set()
    # A feature name we have never seen counts as beyond the baseline until it is declared.
    assert model_server.features_beyond_baseline("CPU : AVX10 = 1 |", "x86_64") == {"AVX10"}


def test_the_build_flags_turn_native_code_and_every_extension_beyond_the_baseline_off():
    args = model_server.cmake_args("x86_64")
    assert "-DGGML_NATIVE=OFF" in args
    for extension in ("AVX512", "AVX512_VBMI", "AVX512_VNNI", "AVX512_BF16", "AVX_VNNI", "AMX_TILE", "AMX_INT8", "AMX_BF16"):
        assert f"-DGGML_{extension}=OFF" in args, extension
    for feature in ("AVX", "AVX2", "FMA", "F16C", "BMI2"):
        assert f"-DGGML_{feature}=ON" in args, feature
    with pytest.raises(RuntimeError, match="no instruction-set baseline is declared for 'riscv64'"):
        model_server.cmake_args("riscv64")


def test_the_wheel_folder_is_keyed_by_the_flags(monkeypatch, tmp_path):
    environ = {"JAN_BUILD_CACHE": str(tmp_path)}
    portable = model_server.wheel_dir("x86_64", environ)
    assert portable.parent == tmp_path / "llama-cpp-python"
    assert portable.name.startswith(f"{model_server.LLAMA_CPP_VERSION}-x86-64-v3-")

    monkeypatch.setattr(model_server, "COMMON_CMAKE_ARGS", (*model_server.COMMON_CMAKE_ARGS, "-DGGML_NATIVE=ON"))
    assert model_server.wheel_dir("x86_64", environ) != portable
    assert model_server.cache_root({"XDG_CACHE_HOME": str(tmp_path)}) == tmp_path / "jan-serverless"


def test_the_cluster_image_builds_with_the_same_flags():
    dockerfile = (ROOT / "knative" / "components" / "cpu" / "model-server" / "Dockerfile").read_text()
    declared = re.search(r'^ARG LLAMA_CMAKE_ARGS="([^"]*)"', dockerfile, re.M).group(1)
    assert declared.split() == model_server.cmake_args("x86_64")
    assert f"llama-cpp-python[server]=={model_server.LLAMA_CPP_VERSION}" in dockerfile
    assert 'CMAKE_ARGS="$LLAMA_CMAKE_ARGS"' in dockerfile and "--no-cache-dir --no-binary llama-cpp-python" in dockerfile


@pytest.mark.parametrize("returncode, described", [
    (-11, "killed by signal SIGSEGV (exit code -11)"),
    (139, "killed by signal SIGSEGV (exit code 139)"),
    (-9, "killed by signal SIGKILL (exit code -9)"),
    (3, "exit code 3"),
])
def test_exits_are_named_by_their_signal(returncode, described):
    assert model_server.describe_exit(returncode) == described


# A test double of a model server whose native code crashes: it lists its model, then dies of SIGSEGV on the first
# completion, as the natively built llama.cpp did.
CRASHING_SERVER = textwrap.dedent("""
    import json, os, signal, sys
    from http.server import BaseHTTPRequestHandler, HTTPServer

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            body = json.dumps({"object": "list", "data": [{"id": "SmolLM2-135M-Instruct", "object": "model"}]}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self):
            signal.signal(signal.SIGSEGV, signal.SIG_DFL)
            os.kill(os.getpid(), signal.SIGSEGV)

        def log_message(self, *args):
            pass

    HTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
""")


def test_readiness_needs_a_completion_and_names_the_signal_of_a_crash(tmp_path):
    script = tmp_path / "crashing_model_server.py"
    script.write_text(CRASHING_SERVER)
    port = free_port()
    process = subprocess.Popen([sys.executable, str(script), str(port)])
    try:
        with pytest.raises(NotReady, match=r"model server killed by signal SIGSEGV \(exit code -11\)"):
            model_server.wait_ready(model_server.base_url(port), timeout=30, process=process)
    finally:
        process.kill()
        process.wait()


@pytest.mark.e2e
def test_installed_model_file_is_the_smollm2_gguf():
    model_server.ensure_installed()
    path = model_server.gguf_path()
    assert path.name.startswith("SmolLM2-135M-Instruct") and path.stat().st_size > 50_000_000


@pytest.mark.e2e
def test_the_installed_llama_cpp_uses_nothing_beyond_the_declared_baseline():
    """The proof on a machine that cannot reproduce the crash: the loaded library's own report of its build."""
    model_server.ensure_installed()
    info = model_server.system_info()
    assert "AVX2 = 1" in info, info
    assert model_server.features_beyond_baseline(info) == set(), info


@pytest.mark.e2e
def test_real_completion_through_the_openai_sdk():
    """Installs llama-cpp-python on first use (compiles for minutes), then serves and answers."""
    import openai

    port = free_port()
    began = time.monotonic()
    process = stack.start_model_server(port=port, timeout=300)
    try:
        ready_seconds = time.monotonic() - began
        client = openai.OpenAI(base_url=model_server.base_url(port), api_key="unused", max_retries=0)
        assert [model.id for model in client.models.list()] == [model_server.DEFAULT_MODEL_ALIAS]

        generated = client.chat.completions.create(
            model=model_server.DEFAULT_MODEL_ALIAS,
            messages=[{"role": "user", "content": "What is the capital of France?"}],
            max_tokens=48,
            temperature=0,
        )
        assert generated.choices[0].message.content.strip()

        started = time.monotonic()
        stream = client.chat.completions.create(
            model=model_server.DEFAULT_MODEL_ALIAS,
            messages=[{"role": "user", "content": "Count from one to twenty in words."}],
            max_tokens=64,
            temperature=0,
            stream=True,
        )
        chunks = [chunk.choices[0].delta.content for chunk in stream if chunk.choices]
        chunks = [text for text in chunks if text]
        elapsed = time.monotonic() - started
        assert len(chunks) > 5
        print(f"model server ready in {ready_seconds:.1f} s; {len(chunks)} chunks at {len(chunks) / elapsed:.0f}/s")
    finally:
        ended = model_server.exit_description(process)
        process.terminate()
        process.wait(timeout=10)
        assert ended is None, f"the model server {ended} during the test"
