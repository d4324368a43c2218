"""The mcp function behind the dev gateway serving gateway/kong.yml: Jan's public paths reach it, its internals
do not."""
from __future__ import annotations

import subprocess
import sys
import time

import httpx
import pytest

from tests.conftest import ROOT, free_port
from tests.mcp.conftest import ALL_TOOLS, call_tool, list_tools


@pytest.fixture(scope="module")
def gateway(live_mcp, tmp_path_factory):
    port = free_port()
    log_path = tmp_path_factory.mktemp("gateway") / "gateway.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "gateway.devgateway", "--config", "gateway/kong.yml", "--port", str(port),
             "--no-access-log", "--upstream", f"mcp={live_mcp}"], cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                httpx.get(f"{base}/mcp/healthz", timeout=1)
                break
            except httpx.TransportError:
                if process.poll() is not None:
                    raise RuntimeError(log_path.read_text())
                time.sleep(0.1)
        yield base
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_tools_through_jans_mcp_path(gateway, user):
    assert [tool.name for tool in list_tools(f"{gateway}/mcp", user.headers).tools] == ALL_TOOLS
    result = call_tool(f"{gateway}/mcp", user.headers, "google_search", {"q": "through kong"})
    assert result.is_error is False and '"query": "through kong"' in result.content[0].text


def test_bare_json_rpc_through_the_gateway(gateway, user):
    response = httpx.post(f"{gateway}/mcp", headers=user.headers,
                          json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"})
    assert response.status_code == 200 and [tool["name"] for tool in response.json()["result"]["tools"]] == ALL_TOOLS


def test_unauthenticated_through_the_gateway_is_the_functions_401(gateway):
    response = httpx.post(f"{gateway}/mcp", json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"})
    assert response.status_code == 401 and response.json()["error"]["type"] == "authentication_error"


@pytest.mark.parametrize("path, status", [("/mcp/healthz", "ok"), ("/mcp/readyz", "ready")])
def test_health_through_the_gateway(gateway, path, status):
    response = httpx.get(gateway + path)
    assert response.status_code == 200 and response.json()["status"] == status


def test_admin_routes_through_the_gateway(gateway, admin, user):
    assert httpx.get(f"{gateway}/v1/admin/mcp-tools", headers=admin.headers).json()["total"] == 6
    assert httpx.get(f"{gateway}/v1/admin/mcp-tools", headers=user.headers).status_code == 403
    assert httpx.get(f"{gateway}/v1/mcp-tools/scrape", headers=user.headers).json()["data"]["tool_key"] == "scrape"


@pytest.mark.parametrize("path", ["/mcp/metrics", "/mcp/version", "/mcp/openapi.json", "/metrics"])
@pytest.mark.parametrize("method", ["GET", "POST"])
def test_internals_are_not_reachable(gateway, path, method):
    response = httpx.request(method, gateway + path)
    assert response.status_code == 404
    assert "mcp_tool_calls" not in response.text and "openapi" not in response.text
