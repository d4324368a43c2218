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
from shared import function_manifest
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


def test_the_local_model_servers_context_is_declared_only_for_it(tmp_path):
    written = stack.write_providers_file(stack.local_provider_url({}), data_dir=tmp_path)
    (local,) = yaml.safe_load(written.read_text())["providers"]
    assert local["context_length"] == 2048


def test_local_provider_url_precedence():
    assert stack.local_provider_url({}) == "http://127.0.0.1:8101/v1"
    assert stack.local_provider_url({"PROVIDER_URL": "http://a/v1"}) == "http://a/v1"
    both = {"PROVIDER_URL": "http://a/v1", "LOCAL_PROVIDER_URL": "http://b/v1"}
    assert stack.local_provider_url(both) == "http://b/v1"


def write_manifest(root: Path, name: str, port: int, server: str = "wsgi", visibility: str = "public") -> None:
    folder = root / "functions" / name
    folder.mkdir(parents=True)
    (folder / "function.toml").write_text(
        f'name = "{name}"\nport = {port}\nserver = "{server}"\napp = "functions.{name}.main:app"\n'
        f'extra = "{name}"\nvisibility = "{visibility}"\n')


def test_the_stack_runs_every_function_with_a_manifest(tmp_path):
    write_manifest(tmp_path, "llm", 8080)
    write_manifest(tmp_path, "memory", 8090, server="asgi", visibility="internal")
    (tmp_path / "functions" / "notes").mkdir()  # a folder without a manifest is no function
    assert stack.available_functions(tmp_path) == {"llm": 8080, "memory": 8090}
    assert stack.public_functions(tmp_path) == {"llm"}


def test_each_function_runs_the_server_its_manifest_declares():
    assert stack.function_command("llm", 8080)[1:] == [
        "-m", "gunicorn", "--config", "python:shared.gunicorn_conf", "functions.llm.main:app"]


def test_an_asgi_function_runs_on_uvicorn_on_its_port(tmp_path):
    write_manifest(tmp_path, "mcp", 8091, server="asgi")
    manifest = function_manifest.function("mcp", tmp_path)
    argv = manifest.server_argv({"HOST": "127.0.0.1", "PORT": "8091"})
    assert argv[0] == "uvicorn" and argv[-1] == "functions.mcp.main:app"
    assert argv[argv.index("--host") + 1] == "127.0.0.1" and argv[argv.index("--port") + 1] == "8091"
    assert manifest.build_args == {"FUNCTION": "mcp", "EXTRAS": "mcp,asgi"}


def test_two_functions_on_one_port_are_refused(tmp_path):
    write_manifest(tmp_path, "llm", 8080)
    write_manifest(tmp_path, "media", 8080)
    with pytest.raises(function_manifest.ManifestError, match="both use port 8080"):
        stack.available_functions(tmp_path)


def test_functions_behind_the_dev_gateway_count_clients_and_link_to_the_gateway():
    """The dev gateway sets X-Real-IP (every peer is 127.0.0.1) and rewrites Host to the function's address."""
    env = stack.base_env("postgresql://x/y", {}, environ={})
    assert env["CLIENT_ADDRESS_HEADER"] == "X-Real-IP"
    assert env["PUBLIC_BASE_URL"] == f"http://localhost:{stack.GATEWAY_PORT}"
    mine = stack.base_env("postgresql://x/y", {}, environ={"PUBLIC_BASE_URL": "https://chat.example"})
    assert mine["PUBLIC_BASE_URL"] == "https://chat.example"
