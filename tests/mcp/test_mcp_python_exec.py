"""python_exec end to end: the official MCP client -> the mcp function under uvicorn -> the real dev sandbox."""
from __future__ import annotations

import json
import os
import socket
import sys

import pytest

from tests.mcp.conftest import call_tool, list_tools, start_uvicorn, stop
from tests.sandbox.conftest import free_port, start_sandbox, stop_sandbox


@pytest.fixture(scope="module")
def dev_sandbox():
    port = free_port()
    sandbox = start_sandbox([sys.executable, "-m", "dev.sandbox"],
                            {**os.environ, "DEV_SANDBOX_PORT": str(port), "DEV_SANDBOX_MAX_RUN_TIMEOUT_SECONDS": "2"},
                            port)
    yield sandbox
    stop_sandbox(sandbox)


@pytest.fixture(scope="module")
def mcp_with_sandbox(mcp_env, dev_sandbox, tmp_path_factory):
    # The client waits longer than the sandbox's own run limit, so the limit is what ends a slow run.
    process, base = start_uvicorn({**mcp_env, "SANDBOX_FUSION_URL": dev_sandbox.base_url,
                                   "SANDBOX_FUSION_TIMEOUT_SECONDS": "15"},
                                  tmp_path_factory.mktemp("mcp-sandbox") / "uvicorn.log")
    yield f"{base}/v1/mcp"
    stop(process)


def test_python_exec_is_listed_with_jans_schema_only_when_a_sandbox_is_configured(mcp_with_sandbox, mcp_env, user,
                                                                                  tmp_path_factory):
    listed = {tool.name: tool for tool in list_tools(mcp_with_sandbox, user.headers).tools}
    assert listed["python_exec"].input_schema["required"] == ["code"]
    process, base = start_uvicorn({**mcp_env, "SANDBOX_FUSION_URL": ""},
                                  tmp_path_factory.mktemp("mcp-no-sandbox") / "uvicorn.log")
    try:
        assert "python_exec" not in {tool.name for tool in list_tools(f"{base}/v1/mcp", user.headers).tools}
    finally:
        stop(process)


def test_python_exec_runs_code_in_the_dev_sandbox(mcp_with_sandbox, user):
    result = call_tool(mcp_with_sandbox, user.headers, "python_exec",
                       {"code": "print(sum(range(10)))", "approved": True, "session_id": "s-1"})
    assert not result.is_error
    payload = json.loads(result.content[0].text)
    assert payload["stdout"] == "45\n" and payload["error"] == "" and payload["session_id"] == "s-1"


def test_python_exec_needs_approval(mcp_with_sandbox, user):
    result = call_tool(mcp_with_sandbox, user.headers, "python_exec", {"code": "print(1)"})
    assert result.is_error
    assert result.content[0].text == "sandboxfusion execution requires approval; set the `approved` argument to true"


def test_python_exec_time_limit_and_no_network(mcp_with_sandbox, user):
    slow = json.loads(call_tool(mcp_with_sandbox, user.headers, "python_exec",
                                {"code": "while True: pass", "approved": True}).content[0].text)
    assert slow["error"] == "run time limit exceeded"
    # A listener on this machine's loopback: reachable from here, not from the sandbox's own network namespace.
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        net = json.loads(call_tool(mcp_with_sandbox, user.headers, "python_exec", {
            "code": f"import socket\ntry:\n socket.create_connection(('127.0.0.1', {port}), timeout=2)\n"
                    "except OSError as e:\n print('no network', e.errno)", "approved": True}).content[0].text)
    assert net["stdout"].startswith("no network"), net
