"""dev.run end to end with stub services: the ready line, env passed to functions, and how it stops."""
import json
import os
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from dev import stack
from dev.readiness import PortInUse, ensure_ports_free

STUBBED_RUN = Path(__file__).with_name("stubbed_run.py")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def stubbed_stack(tmp_path):
    """Start dev.run on stub services; yields (process, ports); kills it if a test left it running."""
    ports = {"llm": free_port(), "gateway": free_port()}
    process = subprocess.Popen(
        [sys.executable, str(STUBBED_RUN), str(ports["llm"]), str(ports["gateway"]), str(tmp_path / "data")],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "DATABASE_URL": "postgresql+psycopg://stub/jan"},
    )
    yield process, ports
    process.kill()
    process.wait()


def read_until_ready(process) -> str:
    lines = []
    for line in process.stdout:
        lines.append(line)
        if "Authorization: Bearer $TOKEN" in line and "chat/completions" in line:
            return "".join(lines)
    pytest.fail("dev.run ended before it was ready:\n" + "".join(lines))


def child_pids(output: str) -> dict[str, int]:
    return {name: int(pid) for name, pid in re.findall(r"^\s*(\w+) \| pid (\d+)", output, re.MULTILINE)}


def test_ready_line_has_the_discovered_model_and_sigterm_stops_everything(stubbed_stack, assert_all_gone):
    process, ports = stubbed_stack
    output = read_until_ready(process)

    assert re.search(rf"READY in \d+ s: gateway http://localhost:{ports['gateway']}", output)
    assert f"curl -s -X POST localhost:{ports['gateway']}/auth/guest-login" in output
    assert '"model": "local/smollm2-135m-instruct"' in output
    assert "migrations ran against postgresql+psycopg://stub/jan" in output
    function_env = json.loads(re.search(r"llm \| pid \d+ env (.*)", output)[1])
    assert function_env["HOST"] == "127.0.0.1" and function_env["ENVIRONMENT"] == "development"
    assert function_env["DATABASE_URL"] == "postgresql+psycopg://stub/jan" and function_env["JWKS_FILE"]
    pids = child_pids(output)
    assert set(pids) == {"llm", "gateway"}

    process.send_signal(signal.SIGTERM)
    rest = process.communicate(timeout=20)[0]
    assert process.returncode == 0, rest
    assert "SIGTERM: stopped everything." in rest
    assert_all_gone(list(pids.values()))


def test_a_dead_function_stops_the_stack_and_is_named(stubbed_stack, assert_all_gone):
    process, _ = stubbed_stack
    pids = child_pids(read_until_ready(process))

    os.kill(pids["llm"], signal.SIGKILL)
    rest = process.communicate(timeout=20)[0]
    assert process.returncode == 1
    assert f"llm exited unexpectedly: killed by signal SIGKILL (exit code -{signal.SIGKILL.value}); stopped everything." in rest
    assert_all_gone([pids["gateway"]])


def test_port_in_use_is_named():
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        with pytest.raises(PortInUse, match=rf"{port} \(llm\)"):
            ensure_ports_free({"llm": port, "gateway": free_port()})


def test_providers_file_points_the_local_provider_at_the_configured_url(tmp_path):
    written = stack.write_providers_file("http://gpu-box:8000/v1", data_dir=tmp_path)
    providers = yaml.safe_load(written.read_text())["providers"]
    assert providers == [
        {"name": "local", "vendor": "local", "base_url": "http://gpu-box:8000/v1", "api_key": None, "active": True}
    ]


def test_local_provider_url_precedence():
    assert stack.local_provider_url({}) == "http://127.0.0.1:8101/v1"
    assert stack.local_provider_url({"PROVIDER_URL": "http://a/v1"}) == "http://a/v1"
    both = {"PROVIDER_URL": "http://a/v1", "LOCAL_PROVIDER_URL": "http://b/v1"}
    assert stack.local_provider_url(both) == "http://b/v1"


def test_only_functions_with_a_main_module_run(tmp_path, monkeypatch):
    monkeypatch.setattr(stack, "FUNCTION_PORTS", {"llm": 8080, "responses": 8082})
    (tmp_path / "functions" / "llm").mkdir(parents=True)
    (tmp_path / "functions" / "llm" / "main.py").write_text("")
    assert stack.available_functions(tmp_path) == {"llm": 8080}
    assert stack.function_command("llm")[-3:] == ["--config", "python:shared.gunicorn_conf", "functions.llm.main:app"]
