"""The `python_exec` MCP tool: code runs only in a SandboxFusion-compatible service reached by URL, never in the
calling process.

Jan's semantics (services/mcp-tools, sandboxfusion client and route): the tool is listed only when a sandbox URL is
configured (and MCP_ENABLE_PYTHON_EXEC is on); with SANDBOX_FUSION_REQUIRE_APPROVAL the call needs `approved` present
and truthy (mcp-go's GetBool: a bool, a strconv.ParseBool string, or a non-zero number); the request is
`POST {url}/run_code {code, language, session_id}` with a 20 s timeout; the result echoes the caller's session id and
`error` is SandboxFusion's `message` whenever `status` is not "Success". Transport failures and HTTP errors are tool
errors (`SandboxToolError`), not payloads.

Framework-free on purpose: the mcp function lists `python_exec_tool_schema()` when `python_exec_enabled(settings)` and
calls `python_exec` in a worker thread (a run may take the whole timeout).
"""
from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from typing import Any, Mapping

import urllib3

TOOL_NAME = "python_exec"
TOOL_DESCRIPTION = "Execute trusted code inside SandboxFusion and return stdout/stderr/artifacts."
DEFAULT_LANGUAGE = "python"
APPROVAL_REQUIRED = "sandboxfusion execution requires approval; set the `approved` argument to true"
# What the sandbox answered, quoted in an error: enough to see a validation problem, not a whole page.
_ERROR_BODY_CHARS = 1000


class SandboxToolError(Exception):
    """A python_exec call that produced no result: the mcp function reports it as a tool error with this text."""


@dataclass(frozen=True)
class SandboxToolSettings:
    """The settings python_exec reads; the mcp function's settings class inherits them (or has the same names)."""

    # Empty: no sandbox, python_exec is not listed. Jan's compose default is http://sandbox-fusion:8080.
    sandbox_fusion_url: str = ""
    sandbox_fusion_require_approval: bool = True
    sandbox_fusion_timeout_seconds: float = 20.0
    mcp_enable_python_exec: bool = True


def python_exec_enabled(settings: Any) -> bool:
    """Whether tools/list includes python_exec."""
    return bool(settings.mcp_enable_python_exec) and bool(settings.sandbox_fusion_url.strip())


def python_exec_tool_schema() -> dict:
    """Jan's tool definition as mcp-go generates it from SandboxFusionArgs (properties in Go's map order)."""
    return {
        "name": TOOL_NAME,
        "description": TOOL_DESCRIPTION,
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


class SandboxClient:
    """SandboxFusion's `POST /run_code`, one pooled connection set per sandbox URL."""

    def __init__(self, base_url: str, timeout: float = 20.0):
        self.base_url = base_url.strip().rstrip("/")
        self.timeout = timeout
        self._pool = urllib3.PoolManager(num_pools=2, maxsize=8, block=False, retries=False)

    def run_code(self, code: str, language: str = DEFAULT_LANGUAGE, session_id: str = "") -> dict:
        """SandboxFusion's RunCodeResponse as a dict; a SandboxToolError when there is none."""
        request = {"code": code, "language": language}
        if session_id:
            request["session_id"] = session_id
        try:
            response = self._pool.request(
                "POST", f"{self.base_url}/run_code", body=json.dumps(request).encode(),
                headers={"Content-Type": "application/json", "User-Agent": "Jan-MCP-SandboxFusion/1.0"},
                timeout=urllib3.Timeout(total=self.timeout), retries=False,
            )
        except urllib3.exceptions.NewConnectionError as exc:  # before TimeoutError: urllib3 derives it from that
            raise SandboxToolError(
                f"sandboxfusion request failed: the sandbox at {self.base_url} is unreachable "
                f"({_reason(exc)})") from None
        except urllib3.exceptions.TimeoutError:
            raise SandboxToolError(
                f"sandboxfusion request failed: no answer from the sandbox at {self.base_url} "
                f"within {self.timeout:g} s") from None
        except urllib3.exceptions.HTTPError as exc:
            raise SandboxToolError(
                f"sandboxfusion request failed: the sandbox at {self.base_url} is unreachable "
                f"({_reason(exc)})") from None
        text = response.data.decode("utf-8", "replace")
        if response.status >= 400:
            raise SandboxToolError(f"sandboxfusion error ({response.status}): {text[:_ERROR_BODY_CHARS]}")
        try:
            answer = json.loads(text)
        except ValueError:
            answer = None
        if not isinstance(answer, dict):
            raise SandboxToolError(f"sandboxfusion request failed: the sandbox at {self.base_url} answered "
                                   "something that is not a RunCodeResponse")
        return answer


_clients: dict[tuple[str, float], SandboxClient] = {}
_clients_lock = threading.Lock()


def client_for(settings: Any) -> SandboxClient:
    key = (settings.sandbox_fusion_url.strip(), float(settings.sandbox_fusion_timeout_seconds))
    with _clients_lock:
        if key not in _clients:
            _clients[key] = SandboxClient(*key)
        return _clients[key]


def python_exec(arguments: Mapping[str, Any] | None, settings: Any, client: SandboxClient | None = None) -> dict:
    """Run one python_exec call: the result payload, or SandboxToolError (approval, arguments, sandbox failure)."""
    arguments = arguments if isinstance(arguments, Mapping) else None
    if settings.sandbox_fusion_require_approval and not (arguments and _go_bool(arguments.get("approved"))):
        raise SandboxToolError(APPROVAL_REQUIRED)
    code = _require_string(arguments or {}, "code")
    language = _optional_string(arguments or {}, "language") or DEFAULT_LANGUAGE
    session_id = _optional_string(arguments or {}, "session_id")
    answer = (client or client_for(settings)).run_code(code, language, session_id)
    return result_payload(answer, session_id)


def result_payload(answer: dict, session_id: str) -> dict:
    """Jan's RunCodeResponse from SandboxFusion's: run output, duration in whole ms, files as artifacts."""
    run = answer.get("run_result") if isinstance(answer.get("run_result"), dict) else {}
    files = answer.get("files") if isinstance(answer.get("files"), dict) else {}
    error = ""
    if answer.get("status") != "Success":
        # Jan copies `message`, which SandboxFusion leaves empty for a time limit or a non-zero exit; say which.
        error = str(answer.get("message") or "") or _failure_reason(answer)
    return {
        "stdout": run.get("stdout") or "",
        "stderr": run.get("stderr") or "",
        "duration_ms": int((run.get("execution_time") or 0) * 1000),
        "session_id": session_id,
        "artifacts": [{"name": name, "url": files[name]} for name in sorted(files)] or None,
        "error": error,
    }


def _failure_reason(answer: dict) -> str:
    for step in ("compile", "run"):
        result = answer.get(f"{step}_result")
        if not isinstance(result, dict):
            continue
        if result.get("status") == "TimeLimitExceeded":
            return f"{step} time limit exceeded"
        if result.get("status") == "Error":
            return f"{step} error in the sandbox"
        if result.get("return_code") not in (None, 0):
            return f"{step} exited with code {result['return_code']}"
    return f"sandbox status {answer.get('status')!r}"


def _go_bool(value: Any) -> bool:
    """mcp-go's CallToolRequest.GetBool(key, false)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        return value in ("1", "t", "T", "TRUE", "true", "True")
    if isinstance(value, (int, float)):
        return value != 0
    return False


def _require_string(arguments: Mapping[str, Any], key: str) -> str:
    if key not in arguments:
        raise SandboxToolError(f'required argument "{key}" not found')
    if not isinstance(arguments[key], str):
        raise SandboxToolError(f'argument "{key}" is not a string')
    return arguments[key]


def _optional_string(arguments: Mapping[str, Any], key: str) -> str:
    value = arguments.get(key)
    return value if isinstance(value, str) else ""


def _reason(exc: urllib3.exceptions.HTTPError) -> str:
    reason = getattr(exc, "reason", None) or exc
    text = str(reason)
    if "Connection refused" in text:
        return "connection refused"
    if "Name or service not known" in text or "nodename nor servname" in text or "Temporary failure in name" in text:
        return "host not found"
    return type(reason).__name__
