"""python_exec's contract with Jan (services/mcp-tools): the approval gate, arguments, what goes on the wire, how
SandboxFusion's answer becomes the payload, a sandbox that is slow or down, and when the tool is listed. The
sandbox here is ScriptedSandbox, a test double speaking SandboxFusion's protocol."""
from __future__ import annotations

import re
import time

import pytest

from shared.sandbox import (
    APPROVAL_REQUIRED,
    SandboxToolError,
    SandboxToolSettings,
    python_exec,
    python_exec_enabled,
    python_exec_tool_schema,
)
from shared.settings import from_env
from tests.doubles.sandbox_fusion import ScriptedSandbox, success
from tests.sandbox.conftest import free_port


@pytest.fixture
def sandbox():
    with ScriptedSandbox() as double:
        yield double


def settings_for(url: str, **overrides) -> SandboxToolSettings:
    return SandboxToolSettings(sandbox_fusion_url=url, **overrides)


@pytest.mark.parametrize("approved", [True, "true", "True", "TRUE", "1", "t", 1, 2.5])
def test_approval_required_accepts_what_mcp_go_reads_as_true(sandbox, approved):
    result = python_exec({"code": "print(1)", "approved": approved}, settings_for(sandbox.base_url))
    assert result["error"] == ""
    assert len(sandbox.requests) == 1


@pytest.mark.parametrize("arguments", [
    {"code": "print(1)"},
    {"code": "print(1)", "approved": None},
    {"code": "print(1)", "approved": False},
    {"code": "print(1)", "approved": "false"},
    {"code": "print(1)", "approved": "yes"},
    {"code": "print(1)", "approved": 0},
    {"code": "print(1)", "approved": []},
    {},
    None,
], ids=["absent", "null", "false", "false-string", "yes-string", "zero", "list", "no-arguments", "not-an-object"])
def test_approval_required_refuses_anything_else_before_calling_the_sandbox(sandbox, arguments):
    with pytest.raises(SandboxToolError) as raised:
        python_exec(arguments, settings_for(sandbox.base_url))
    assert str(raised.value) == APPROVAL_REQUIRED
    assert sandbox.requests == []


@pytest.mark.parametrize("approved", [None, False, True])
def test_without_the_approval_setting_approved_is_ignored(sandbox, approved):
    arguments = {"code": "print(1)"} if approved is None else {"code": "print(1)", "approved": approved}
    result = python_exec(arguments, settings_for(sandbox.base_url, sandbox_fusion_require_approval=False))
    assert result["error"] == ""
    assert len(sandbox.requests) == 1


def test_approval_is_required_by_default():
    assert SandboxToolSettings().sandbox_fusion_require_approval is True


@pytest.mark.parametrize("arguments, message", [
    ({"approved": True}, 'required argument "code" not found'),
    ({"code": 5, "approved": True}, 'argument "code" is not a string'),
    ({"code": None, "approved": True}, 'argument "code" is not a string'),
])
def test_code_is_required_and_a_string(sandbox, arguments, message):
    with pytest.raises(SandboxToolError) as raised:
        python_exec(arguments, settings_for(sandbox.base_url))
    assert str(raised.value) == message
    assert sandbox.requests == []


@pytest.mark.parametrize("arguments, sent", [
    ({"code": "x"}, {"code": "x", "language": "python"}),
    ({"code": "x", "language": ""}, {"code": "x", "language": "python"}),
    ({"code": "x", "language": 3}, {"code": "x", "language": "python"}),
    ({"code": "x", "language": "bash"}, {"code": "x", "language": "bash"}),
    ({"code": "x", "session_id": "s-1"}, {"code": "x", "language": "python", "session_id": "s-1"}),
    ({"code": "x", "session_id": 7}, {"code": "x", "language": "python"}),
])
def test_the_request_on_the_wire(sandbox, arguments, sent):
    result = python_exec(arguments, settings_for(sandbox.base_url, sandbox_fusion_require_approval=False))
    assert sandbox.requests == [{"path": "/run_code", "content_type": "application/json", "body": sent}]
    assert result["session_id"] == sent.get("session_id", "")


def test_the_payload_from_a_successful_answer(sandbox):
    sandbox.script(success(stdout="out\n", stderr="err\n", execution_time=0.12345,
                           files={"b.png": "YmJi", "a.csv": "YWFh"}))
    result = python_exec({"code": "x", "session_id": "s"}, settings_for(sandbox.base_url,
                                                                        sandbox_fusion_require_approval=False))
    assert result == {"stdout": "out\n", "stderr": "err\n", "duration_ms": 123, "session_id": "s",
                      "artifacts": [{"name": "a.csv", "url": "YWFh"}, {"name": "b.png", "url": "YmJi"}],
                      "error": ""}


@pytest.mark.parametrize("answer, error", [
    ({"status": "SandboxError", "message": "runner crashed", "run_result": None}, "runner crashed"),
    ({"status": "Failed", "message": "", "run_result": {"status": "TimeLimitExceeded", "execution_time": 10.0,
                                                        "return_code": None, "stdout": "", "stderr": ""}},
     "run time limit exceeded"),
    ({"status": "Failed", "message": "", "run_result": {"status": "Finished", "execution_time": 0.1,
                                                        "return_code": 2, "stdout": None, "stderr": "bad"}},
     "run exited with code 2"),
    ({"status": "Failed", "message": "", "run_result": None,
      "compile_result": {"status": "Finished", "execution_time": 0.5, "return_code": 1, "stderr": "syntax"}},
     "compile exited with code 1"),
    ({"status": "Failed", "message": ""}, "sandbox status 'Failed'"),
])
def test_a_status_other_than_success_sets_error(sandbox, answer, error):
    sandbox.script(answer)
    result = python_exec({"code": "x"}, settings_for(sandbox.base_url, sandbox_fusion_require_approval=False))
    assert result["error"] == error
    assert isinstance(result["stdout"], str) and isinstance(result["stderr"], str)


@pytest.mark.parametrize("answer, message", [
    ((500, '{"detail": "boom"}'), 'sandboxfusion error (500): {"detail": "boom"}'),
    ((422, '{"detail": [{"type": "missing"}]}'), 'sandboxfusion error (422): {"detail": [{"type": "missing"}]}'),
    ((200, "<html>proxy</html>"), "answered something that is not a RunCodeResponse"),
    ((200, '"pong"'), "answered something that is not a RunCodeResponse"),
])
def test_an_http_error_or_a_foreign_answer_is_a_tool_error(sandbox, answer, message):
    sandbox.script(answer)
    with pytest.raises(SandboxToolError, match=re.escape(message)):
        python_exec({"code": "x"}, settings_for(sandbox.base_url, sandbox_fusion_require_approval=False))


def test_a_slow_sandbox_ends_in_a_clear_timeout():
    with ScriptedSandbox(delay=5) as slow:
        settings = settings_for(slow.base_url, sandbox_fusion_require_approval=False,
                                sandbox_fusion_timeout_seconds=0.5)
        started = time.monotonic()
        with pytest.raises(SandboxToolError) as raised:
            python_exec({"code": "x"}, settings)
        assert time.monotonic() - started < 2
    assert str(raised.value) == (f"sandboxfusion request failed: no answer from the sandbox at {slow.base_url} "
                                 "within 0.5 s")


def test_a_sandbox_that_is_down_is_a_clear_error():
    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(SandboxToolError) as raised:
        python_exec({"code": "x"}, settings_for(url, sandbox_fusion_require_approval=False))
    assert str(raised.value) == f"sandboxfusion request failed: the sandbox at {url} is unreachable " \
                                "(connection refused)"


@pytest.mark.parametrize("environ, enabled", [
    ({}, False),
    ({"SANDBOX_FUSION_URL": ""}, False),
    ({"SANDBOX_FUSION_URL": "   "}, False),
    ({"SANDBOX_FUSION_URL": "http://sandbox-fusion:8080"}, True),
    ({"SANDBOX_FUSION_URL": "http://sandbox-fusion:8080", "MCP_ENABLE_PYTHON_EXEC": "false"}, False),
])
def test_the_tool_is_listed_only_with_a_sandbox_url(environ, enabled):
    assert python_exec_enabled(from_env(SandboxToolSettings, environ=environ)) is enabled


def test_settings_from_the_environment():
    settings = from_env(SandboxToolSettings, environ={
        "SANDBOX_FUSION_URL": "http://s:8080", "SANDBOX_FUSION_REQUIRE_APPROVAL": "false",
        "SANDBOX_FUSION_TIMEOUT_SECONDS": "7.5"})
    assert (settings.sandbox_fusion_url, settings.sandbox_fusion_require_approval,
            settings.sandbox_fusion_timeout_seconds) == ("http://s:8080", False, 7.5)


def test_the_tool_schema_is_jans():
    assert python_exec_tool_schema() == {
        "name": "python_exec",
        "description": "Execute trusted code inside SandboxFusion and return stdout/stderr/artifacts.",
        "inputSchema": {
            "type": "object",
            "properties": {
                "approved": {"type": "boolean", "description": "Set true when approval is required to run code"},
                "code": {"type": "string", "description": "Python snippet to execute"},
                "language": {"type": "string", "description": "Execution language (default: python)"},
                "session_id": {"type": "string", "description": "Existing SandboxFusion session to reuse"},
            },
            "required": ["code"],
        },
    }
