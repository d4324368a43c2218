"""The dev sandbox speaks SandboxFusion's wire protocol (sandbox/server/sandbox_api.py: RunCodeRequest and
RunCodeResponse, the FastAPI 422 for an invalid request, GET /v1/ping), listens on loopback only, and reports its
isolation truthfully when started without root."""
from __future__ import annotations

import base64
import json
import os
import shutil
import socket

import pytest
import urllib3

from dev.sandbox import DevSandboxSettings, base_url, child_env
from tests.sandbox.conftest import ROOT, free_port, start_sandbox, stop_sandbox

RESPONSE_KEYS = {"status", "message", "compile_result", "run_result", "executor_pod_name", "files"}
RUN_RESULT_KEYS = {"status", "execution_time", "return_code", "stdout", "stderr"}


def post(sandbox, body) -> urllib3.BaseHTTPResponse:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    return urllib3.request("POST", f"{sandbox.base_url}/run_code", body=data,
                           headers={"Content-Type": "application/json"}, timeout=30)


def test_the_stack_starts_it_without_its_secrets_and_points_python_exec_at_it(dev_sandbox):
    environ = {"PATH": "/usr/bin", "DATABASE_URL": "postgresql://secret", "TOKEN_SIGNING_KEY_FILE": "/k.pem",
               "DEV_SANDBOX_PORT": "8191", "SANDBOX_FUSION_URL": "x"}
    assert child_env(environ) == {"PATH": "/usr/bin", "DEV_SANDBOX_PORT": "8191"}
    assert base_url(DevSandboxSettings(dev_sandbox_port=8191)) == "http://127.0.0.1:8191"
    assert dev_sandbox.startup_line.startswith(f"dev sandbox on {dev_sandbox.base_url} (")


def test_ping(dev_sandbox):
    response = urllib3.request("GET", f"{dev_sandbox.base_url}/v1/ping")
    assert (response.status, response.json()) == (200, "pong")


def test_a_run_answers_a_run_code_response(dev_sandbox):
    response = post(dev_sandbox, {"code": "print(input())", "language": "python", "stdin": "from stdin"})
    body = response.json()
    assert response.status == 200
    assert set(body) == RESPONSE_KEYS and set(body["run_result"]) == RUN_RESULT_KEYS
    assert body["status"] == "Success" and body["message"] == "" and body["compile_result"] is None
    assert body["run_result"]["status"] == "Finished" and body["run_result"]["return_code"] == 0
    assert body["run_result"]["stdout"] == "from stdin\n"
    assert body["files"] == {}


def test_files_in_and_fetch_files_out(dev_sandbox):
    response = post(dev_sandbox, {
        "code": "data = open('in/data.txt').read(); open('out.txt', 'w').write(data.upper())",
        "language": "python",
        "files": {"in/data.txt": base64.b64encode(b"shout").decode()},
        "fetch_files": ["out.txt", "missing.txt", "../../etc/passwd"],
    })
    body = response.json()
    assert body["status"] == "Success", body
    assert body["files"] == {"out.txt": base64.b64encode(b"SHOUT").decode()}


def test_a_file_outside_the_working_directory_is_refused(dev_sandbox):
    body = post(dev_sandbox, {"code": "pass", "language": "python",
                              "files": {"../escape.txt": base64.b64encode(b"x").decode()}}).json()
    assert body["status"] == "SandboxError"
    assert body["message"] == "file path '../escape.txt' is outside the working directory"


def test_the_request_run_timeout_and_memory_limit_apply_below_the_caps(dev_sandbox):
    timed = post(dev_sandbox, {"code": "while True: pass", "language": "python", "run_timeout": 0.5}).json()
    assert timed["status"] == "Failed" and timed["message"] == ""
    assert timed["run_result"]["status"] == "TimeLimitExceeded" and timed["run_result"]["return_code"] is None
    assert 0.5 <= timed["run_result"]["execution_time"] < 1.5
    small = post(dev_sandbox, {"code": "x = bytearray(100 * 1024 * 1024)", "language": "python",
                               "memory_limit_MB": 64}).json()
    assert small["status"] == "Failed" and "MemoryError" in small["run_result"]["stderr"]


@pytest.mark.parametrize("body, problem", [
    ({"language": "python"}, {"type": "missing", "loc": ["body", "code"], "msg": "Field required"}),
    ({"code": "x"}, {"type": "missing", "loc": ["body", "language"], "msg": "Field required"}),
    ({"code": 1, "language": "python"}, {"type": "string_type", "loc": ["body", "code"]}),
    ({"code": "x", "language": "cobol"}, {"type": "literal_error", "loc": ["body", "language"]}),
    ({"code": "x", "language": "python", "run_timeout": "long"},
     {"type": "float_type", "loc": ["body", "run_timeout"]}),
    (b"{not json", {"type": "json_invalid"}),
])
def test_an_invalid_request_is_a_422_with_fastapis_detail(dev_sandbox, body, problem):
    response = post(dev_sandbox, body)
    assert response.status == 422
    detail = response.json()["detail"]
    assert any(problem.items() <= item.items() for item in detail), detail


def test_it_listens_on_loopback_only(dev_sandbox):
    """The kernel's own table of listening sockets: the sandbox's port is bound to 127.0.0.1 and nothing else."""
    port = int(dev_sandbox.base_url.rsplit(":", 1)[1])
    bound = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as handle:
            for line in list(handle)[1:]:
                local, state = line.split()[1], line.split()[3]
                address, local_port = local.rsplit(":", 1)
                if state == "0A" and int(local_port, 16) == port:
                    bound.append(address)
    assert bound == ["0100007F"]


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("setpriv"),
                    reason="starting the sandbox as an unprivileged user needs root and setpriv")
def test_started_unprivileged_it_says_what_it_isolates_and_that_holds():
    """The laptop case: no root. A user namespace gives the run its own network where the OS allows it; where it
    does not, the sandbox must say so, and then code does reach the network."""
    port = free_port()
    argv = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
            "/usr/bin/python3", "-m", "dev.sandbox"]
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), "DEV_SANDBOX_PORT": str(port)}
    sandbox = start_sandbox(argv, env, port)
    try:
        with socket.create_server(("127.0.0.1", 0)) as listener:
            code = f"import socket\ntry:\n socket.create_connection(('127.0.0.1', {listener.getsockname()[1]}), " \
                   "timeout=3); print('connected')\nexcept OSError: print('refused')"
            result = post(sandbox, {"code": code, "language": "python"}).json()
        assert "user: the user running the sandbox" in sandbox.startup_line
        if "network: own user and network namespace" in sandbox.startup_line:
            assert result["run_result"]["stdout"] == "refused\n"
        else:
            assert "NOT isolated" in sandbox.startup_line
            assert result["run_result"]["stdout"] == "connected\n"
    finally:
        stop_sandbox(sandbox)
