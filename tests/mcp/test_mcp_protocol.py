"""The official MCP client (streamable HTTP) and bare JSON-RPC as Jan's callers send it, against the running
function: tool names, schemas and payloads as Jan; tool failures as isError results; protocol errors as JSON-RPC."""
from __future__ import annotations

import asyncio
import json
import time

import httpx
import pytest
from mcp.shared.exceptions import MCPError

from tests.mcp.conftest import ALL_TOOLS, call_tool, list_tools, run, with_client

SEARCH_ARGUMENTS = {"q", "gl", "hl", "location", "num", "tbs", "page", "autocorrect", "domain_allow_list",
                    "location_hint", "offline_mode"}


def payload(result) -> dict:
    assert result.is_error is False, result.content
    (block,) = result.content
    assert block.type == "text"
    return json.loads(block.text)


def error_text(result) -> str:
    assert result.is_error is True
    (block,) = result.content
    return block.text


def rpc(base: str, headers: dict, method: str, params: dict | None = None, *, path: str = "/v1/mcp",
        extra_headers: dict | None = None) -> httpx.Response:
    """A bare JSON-RPC POST as Jan's response-api sends it: no initialize, no Accept header."""
    body = {"jsonrpc": "2.0", "id": 7, "method": method, **({"params": params} if params is not None else {})}
    return httpx.post(base + path, json=body, headers={**headers, **(extra_headers or {})}, timeout=30)


class TestOfficialClient:
    def test_tools_list_is_jans_tools_sorted_with_their_schemas(self, live_mcp, user):
        result = list_tools(f"{live_mcp}/v1/mcp", user.headers)
        tools = {tool.name: tool for tool in result.tools}
        assert [tool.name for tool in result.tools] == ALL_TOOLS
        search = tools["google_search"].input_schema
        assert set(search["properties"]) == SEARCH_ARGUMENTS and search["required"] == ["q"]
        assert search["properties"]["num"]["type"] == "number"  # Jan's ints are JSON numbers
        assert search["properties"]["domain_allow_list"] == {
            "type": "array", "items": {"type": "string"}, "description": search["properties"]["domain_allow_list"][
                "description"]}
        scrape = tools["scrape"].input_schema
        assert set(scrape["properties"]) == {"url", "includeMarkdown", "offline_mode"} and scrape["required"] == ["url"]
        assert tools["scrape"].description == "Scrape a webpage and retrieve the text with optional markdown formatting."

    def test_google_search_returns_jans_payload_from_the_search_api(self, live_mcp, user, serper):
        serper.script(("results", [
            {"title": "Jan", "link": "https://jan.ai/", "snippet": "x" * 500, "position": 1},
            {"title": "No snippet", "link": "https://example.net/", "position": 2},
        ]))
        result = call_tool(f"{live_mcp}/v1/mcp", user.headers, "google_search",
                           {"q": "jan server", "num": 5, "gl": "us", "domain_allow_list": ["jan.ai", "example.net"],
                            "tool_call_id": "call_1"})
        body = payload(result)
        assert set(body) == {"query", "engine", "live", "cache_status", "metadata", "results", "citations"}
        assert (body["query"], body["engine"], body["live"], body["cache_status"]) == ("jan server", "google", True,
                                                                                     "live")
        first, second = body["results"]
        assert set(first) == {"position", "title", "source_url", "snippet", "cache_status", "fetched_at"}
        assert first["snippet"] == "x" * 420 + "…"
        assert second["snippet"] == "No snippet returned by upstream engine."
        assert [r["position"] for r in body["results"]] == [1, 2]
        assert body["citations"] == ["https://jan.ai/", "https://example.net/"]
        (sent,) = serper.requests
        assert sent["headers"]["x-api-key"] == serper.api_key
        assert sent["body"] == {"q": "(jan server) (site:jan.ai OR site:example.net)", "autocorrect": True,
                                "gl": "us", "num": 5}

    def test_scrape_returns_visible_text(self, live_mcp, user, pages):
        url = f"http://localhost:{pages.port}/page"
        body = payload(call_tool(f"{live_mcp}/v1/mcp", user.headers, "scrape", {"url": url}))
        assert set(body) == {"source_url", "text", "text_preview", "metadata", "cache_status", "fetched_at"}
        assert body["source_url"] == url and body["cache_status"] == "fallback"
        assert "Hello page" in body["text"] and "First paragraph with a\nlink." in body["text"].replace(" link", "\nlink")
        assert "script text" not in body["text"] and "color:red" not in body["text"]
        assert body["metadata"]["title"] == "Test page" and body["metadata"]["fallback_mode"] is True
        assert body["text_preview"] == body["text"]

    def test_scrape_with_markdown_keeps_headings_lists_and_links(self, live_mcp, user, pages):
        body = payload(call_tool(f"{live_mcp}/v1/mcp", user.headers, "scrape",
                                 {"url": f"http://localhost:{pages.port}/redirect-page", "includeMarkdown": True}))
        assert "# Hello page" in body["text"]
        assert "[link](https://example.org/x)" in body["text"]
        assert "- one" in body["text"] and "- two" in body["text"]
        assert body["metadata"]["final_url"] == f"http://localhost:{pages.port}/page"

    def test_the_function_root_is_the_mcp_endpoint_too(self, live_mcp, user):
        """Kong's /mcp route strips its prefix: the function sees POST /."""
        assert [tool.name for tool in list_tools(f"{live_mcp}/", user.headers).tools] == ALL_TOOLS


class TestBareJsonRpc:
    def test_tools_list_without_initialize_or_accept(self, live_mcp, user):
        response = rpc(live_mcp, user.headers, "tools/list")
        assert response.status_code == 200 and response.headers["content-type"].startswith("application/json")
        body = response.json()
        assert body["id"] == 7 and [tool["name"] for tool in body["result"]["tools"]] == ALL_TOOLS
        assert body["result"]["tools"][0]["inputSchema"]["required"] == ["q"]

    def test_tools_call_without_initialize(self, live_mcp, user):
        response = rpc(live_mcp, user.headers, "tools/call", {"name": "google_search", "arguments": {"q": "bare"}})
        result = response.json()["result"]
        assert result.get("isError") in (None, False)
        assert json.loads(result["content"][0]["text"])["query"] == "bare"

    def test_unknown_tool_is_json_rpc_invalid_params(self, live_mcp, user):
        body = rpc(live_mcp, user.headers, "tools/call", {"name": "no_such_tool", "arguments": {}}).json()
        assert body["error"]["code"] == -32602
        assert "no_such_tool" in body["error"]["message"]

    def test_unknown_tool_through_the_official_client(self, live_mcp, user):
        with pytest.raises(MCPError) as raised:
            call_tool(f"{live_mcp}/v1/mcp", user.headers, "no_such_tool", {})
        assert raised.value.error.code == -32602

    def test_notification_is_accepted_without_body(self, live_mcp, user):
        response = httpx.post(f"{live_mcp}/v1/mcp", json={"jsonrpc": "2.0", "method": "notifications/initialized"},
                              headers=user.headers)
        assert response.status_code == 202

    def test_a_host_outside_the_allow_list_is_refused(self, live_mcp, user):
        response = rpc(live_mcp, user.headers, "tools/list", extra_headers={"Host": "evil.example"})
        assert response.status_code == 421
        cluster = rpc(live_mcp, user.headers, "tools/list", extra_headers={"Host": "mcp.jan.svc.cluster.local"})
        assert cluster.status_code == 200

    @pytest.mark.parametrize("origin, status", [("https://evil.example", 403), ("http://localhost:3000", 200),
                                                ("tauri://localhost", 200)])
    def test_browser_origins(self, live_mcp, user, origin, status):
        assert rpc(live_mcp, user.headers, "tools/list", extra_headers={"Origin": origin}).status_code == status


class TestBadArguments:
    @pytest.mark.parametrize("arguments, message", [
        ({}, "required argument 'q' is missing"),
        ({"q": ""}, "required argument 'q' is missing"),
        ({"q": 42}, "argument 'q' must be a string"),
        ({"q": "x", "num": "ten"}, "argument 'num' must be a number"),
        ({"q": "x", "num": True}, "argument 'num' must be a number"),
        ({"q": "x", "num": 0}, "argument 'num' must be between 1 and 100"),
        ({"q": "x", "autocorrect": "yes"}, "argument 'autocorrect' must be a boolean"),
        ({"q": "x", "domain_allow_list": "jan.ai"}, "argument 'domain_allow_list' must be an array of strings"),
        ({"q": "x", "tbs": "qdr:never"}, "argument 'tbs' must be one of"),
        ({"q": "x" * 5000}, "argument 'q' must be at most 4096 characters"),
        ({"q": "x", "domain_allow_list": ["a.com"] * 51}, "argument 'domain_allow_list' must hold at most 50 items"),
        ({"q": "x", "offline_mode": True}, "search unavailable: offline mode is enabled"),
    ])
    def test_search_argument_errors_are_tool_errors(self, live_mcp, user, serper, arguments, message):
        result = call_tool(f"{live_mcp}/v1/mcp", user.headers, "google_search", arguments)
        assert error_text(result).startswith(message)
        assert serper.requests == []  # nothing was sent upstream

    @pytest.mark.parametrize("arguments, message", [
        ({}, "required argument 'url' is missing"),
        ({"url": ["http://a"]}, "argument 'url' must be a string"),
        ({"url": "file:///etc/passwd"}, "scrape failed: only http and https URLs can be fetched"),
        ({"url": "not a url"}, "scrape failed: only http and https URLs can be fetched"),
    ])
    def test_scrape_argument_errors_are_tool_errors(self, live_mcp, user, arguments, message):
        assert error_text(call_tool(f"{live_mcp}/v1/mcp", user.headers, "scrape", arguments)) == message

    def test_arguments_that_are_not_an_object_are_an_error_not_a_crash(self, live_mcp, user):
        body = rpc(live_mcp, user.headers, "tools/call", {"name": "scrape", "arguments": ["x"]}).json()
        assert "error" in body or body["result"]["isError"] is True
        assert rpc(live_mcp, user.headers, "tools/list").status_code == 200


class TestSearchProviderFaults:
    def test_garbage_answer(self, live_mcp, user, serper):
        serper.script(("garbage", b"<html>not json"))
        result = call_tool(f"{live_mcp}/v1/mcp", user.headers, "google_search", {"q": "x"})
        assert error_text(result) == "search provider returned an invalid response"

    def test_transient_failure_is_retried(self, live_mcp, user, serper):
        serper.script(("status", 503))
        body = payload(call_tool(f"{live_mcp}/v1/mcp", user.headers, "google_search", {"q": "retry me"}))
        assert body["query"] == "retry me" and len(serper.requests) == 2

    def test_persistent_failure_gives_up(self, live_mcp, user, serper):
        serper.script(("status", 500), ("status", 502), ("status", 503))
        result = call_tool(f"{live_mcp}/v1/mcp", user.headers, "google_search", {"q": "x"})
        assert error_text(result) == "search provider failed (HTTP 503)" and len(serper.requests) == 3

    def test_rejection_is_not_retried(self, live_mcp, user, serper):
        serper.script(("status", 400))
        result = call_tool(f"{live_mcp}/v1/mcp", user.headers, "google_search", {"q": "x"})
        assert error_text(result) == "search provider rejected the request (HTTP 400)" and len(serper.requests) == 1

    def test_a_hanging_provider_times_out_within_the_limit(self, live_mcp, user, serper):
        serper.script(("hang", 10), ("hang", 10), ("hang", 10))
        started = time.monotonic()
        result = call_tool(f"{live_mcp}/v1/mcp", user.headers, "google_search", {"q": "x"})
        assert error_text(result) == "search provider timed out"
        assert time.monotonic() - started < 4  # SEARCH_TIMEOUT_SECONDS=2 covers every attempt
        assert list_tools(f"{live_mcp}/v1/mcp", user.headers).tools  # still serving

    def test_slow_tool_calls_run_concurrently(self, live_mcp, user, serper):
        """Tools run in worker threads: four calls that each wait 1.5 s upstream finish together, and a
        tools/list made meanwhile is not held up."""
        serper.script(*[("hang", 1.5)] * 4)

        async def scenario(client):
            started = time.monotonic()
            calls = [asyncio.create_task(client.call_tool("google_search", {"q": f"slow {n}"})) for n in range(4)]
            await asyncio.sleep(0.3)
            listed = await client.list_tools()
            listed_after = time.monotonic() - started
            results = await asyncio.gather(*calls)
            return listed, listed_after, results, time.monotonic() - started

        listed, listed_after, results, elapsed = run(with_client(f"{live_mcp}/v1/mcp", user.headers, scenario))
        assert all(result.is_error is False for result in results)
        assert listed.tools and listed_after < 1.2
        assert elapsed < 3.5, elapsed  # serially it would be 6 s


class TestPythonExec:
    """shared/sandbox.py's python_exec, offered because SANDBOX_FUSION_URL is set (its semantics are tested in
    tests/sandbox; here: that the function lists and runs it for the caller)."""

    def test_listed_with_jans_schema(self, live_mcp, user):
        tools = {tool.name: tool for tool in list_tools(f"{live_mcp}/v1/mcp", user.headers).tools}
        assert tools["python_exec"].input_schema["required"] == ["code"]
        assert set(tools["python_exec"].input_schema["properties"]) == {"approved", "code", "language", "session_id"}

    def test_approved_code_runs_in_the_sandbox(self, live_mcp, user, sandbox):
        from tests.doubles.sandbox_fusion import success

        sandbox.script(success(stdout="42\n"))
        result = call_tool(f"{live_mcp}/v1/mcp", user.headers, "python_exec",
                           {"code": "print(6 * 7)", "approved": True, "session_id": "s1"})
        body = payload(result)
        assert (body["stdout"], body["session_id"], body["error"]) == ("42\n", "s1", "")
        assert sandbox.requests[-1]["body"] == {"code": "print(6 * 7)", "language": "python", "session_id": "s1"}

    def test_unapproved_code_is_a_tool_error(self, live_mcp, user, sandbox):
        before = len(sandbox.requests)
        result = call_tool(f"{live_mcp}/v1/mcp", user.headers, "python_exec", {"code": "print(1)"})
        assert "requires approval" in error_text(result)
        assert len(sandbox.requests) == before


def test_an_unreachable_search_api_is_named_so(tmp_path, mcp_env, user):
    """A search API that refuses connections is 'unreachable', not a timeout, and fails fast."""
    from tests.conftest import free_port
    from tests.mcp.conftest import start_uvicorn, stop

    process, base = start_uvicorn({**mcp_env, "SEARCH_API_URL": f"http://127.0.0.1:{free_port()}",
                                   "SEARCH_ATTEMPTS": "2"}, tmp_path / "uvicorn.log")
    try:
        started = time.monotonic()
        result = call_tool(f"{base}/v1/mcp", user.headers, "google_search", {"q": "x"})
        assert error_text(result) == "search provider unreachable" and time.monotonic() - started < 2
    finally:
        stop(process)
