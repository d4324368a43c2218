"""The MCP server: the official SDK's MCPServer with Jan's tools, listed and called through the admin table.

`tools/list` offers the tools whose backing service is configured and whose admin row is active, sorted by name,
with the admin's description. `tools/call` of anything else is JSON-RPC -32602 (tool not found); a tool's own
failure (bad arguments, an upstream fault, a refused URL) is an `isError` result. Tools run in worker threads
(they make blocking HTTP calls), so one slow call never holds up the others.
"""
from __future__ import annotations

import functools

import json
import logging
from dataclasses import dataclass
from typing import Any, Callable

import anyio.to_thread
from mcp.server.mcpserver import MCPServer
from mcp.shared.exceptions import MCPError
from mcp.types import INVALID_PARAMS, CallToolResult, TextContent, Tool

from functions.mcp.arguments import ToolFailure, checked
from functions.mcp.catalog import ToolCatalog, ToolConfig
from functions.mcp.write_back import CALL_ID_HEADER, CONVERSATION_HEADER, ResultWriter
from shared.auth.asgi import PRINCIPAL_KEY
from shared.auth.principal import Principal

log = logging.getLogger("jan.mcp")


@dataclass(frozen=True)
class ToolSpec:
    name: str
    description: str
    input_schema: dict
    # (arguments, the tool's admin config or None, the caller) -> the JSON payload of the text result
    run: Callable[[dict, ToolConfig | None, Principal], dict]
    # False: the tool reads its raw arguments itself (python_exec keeps Jan's lenient boolean parsing).
    check_arguments: bool = True
    # True: `run` also gets `authorization`, the caller's own credential of this request, to present to a service
    # that authenticates the caller itself (the embedding service); never stored.
    forward_authorization: bool = False


class ToolsServer(MCPServer):
    def __init__(self, tools: list[ToolSpec], catalog: ToolCatalog, on_call: Callable[[str, str], None],
                 writer: ResultWriter | None = None):
        super().__init__(name="menlo-platform", version="1.0.0", log_level="WARNING")
        self.tools = {tool.name: tool for tool in tools}
        self.catalog = catalog
        self.on_call = on_call  # (tool, outcome) for metrics
        self.writer = writer

    async def _offered(self) -> dict[str, tuple[ToolSpec, ToolConfig | None]]:
        configs = await anyio.to_thread.run_sync(self.catalog.configs)
        offered = {}
        for name, tool in self.tools.items():
            config = configs.get(name)
            if config is None or config.is_active:
                offered[name] = (tool, config)
        return offered

    async def list_tools(self) -> list[Tool]:
        offered = await self._offered()
        return [Tool(name=name, description=config.description if config else tool.description,
                     input_schema=tool.input_schema)
                for name, (tool, config) in sorted(offered.items())]

    async def call_tool(self, name: str, arguments: dict[str, Any], context=None) -> CallToolResult:
        offered = await self._offered()
        if name not in offered:
            raise MCPError(code=INVALID_PARAMS, message=f"tool '{name}' not found: tool not found")
        tool, config = offered[name]
        request = context.request_context.request
        principal = request.scope[PRINCIPAL_KEY]
        result = await self._run(name, tool, config, arguments, principal, request)
        await self._write_back(request, principal, result)
        return result

    async def _run(self, name, tool, config, arguments, principal, request) -> CallToolResult:
        try:
            values = checked(tool.input_schema, arguments) if tool.check_arguments else arguments
            run = tool.run
            if tool.forward_authorization:
                run = functools.partial(tool.run, authorization=_credential(request))
            payload = await anyio.to_thread.run_sync(run, values, config, principal)
        except ToolFailure as failure:
            self.on_call(name, "tool_error")
            return CallToolResult(content=[TextContent(type="text", text=str(failure))], is_error=True)
        except Exception:
            log.exception("tool %s failed unexpectedly", name)
            self.on_call(name, "internal_error")
            return CallToolResult(content=[TextContent(type="text", text=f"{name} failed unexpectedly")],
                                  is_error=True)
        self.on_call(name, "ok")
        return CallToolResult(content=[TextContent(type="text", text=json.dumps(payload, ensure_ascii=False))])

    async def _write_back(self, request, principal: Principal, result: CallToolResult) -> None:
        conversation_id = request.headers.get(CONVERSATION_HEADER)
        call_id = request.headers.get(CALL_ID_HEADER)
        if self.writer is None or not conversation_id or not call_id:
            return
        text = "".join(block.text for block in result.content if isinstance(block, TextContent))
        try:
            await anyio.to_thread.run_sync(functools.partial(
                self.writer.write, principal, conversation_id, call_id, text, failed=bool(result.is_error)))
        except Exception:  # the caller still gets the tool's result; the write-back is best effort, as Jan's
            log.exception("write-back of call %s failed", call_id)


def _credential(request) -> str | None:
    """The caller's credential as an Authorization header value (an `X-API-Key` becomes `Bearer sk_…`)."""
    authorization = request.headers.get("authorization")
    if authorization:
        return authorization
    api_key = request.headers.get("x-api-key")
    return f"Bearer {api_key}" if api_key else None
