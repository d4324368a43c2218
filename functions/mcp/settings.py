"""Settings of the mcp function (environment variables; docs/configuration.md)."""
from __future__ import annotations

from dataclasses import dataclass

from shared.file_search.settings import FileSearchSettings
from shared.sandbox import SandboxToolSettings
from shared.settings import PlatformSettings


@dataclass(frozen=True)
class McpSettings(SandboxToolSettings, FileSearchSettings, PlatformSettings):
    """The platform's settings, python_exec's (shared/sandbox.py), file search's (shared/file_search) and the
    tools' below."""

    service_name: str = "mcp"

    # Host names the MCP endpoint answers to (the SDK's DNS-rebinding protection answers 421 to any other Host).
    # `name:*` allows any port. Behind Kong and Knative: the function's cluster-local host names.
    mcp_allowed_hosts: tuple[str, ...] = ("127.0.0.1:*", "localhost:*", "[::1]:*", "mcp.jan.svc.cluster.local",
                                          "mcp.jan.svc.cluster.local:*", "mcp.jan.svc", "mcp.jan.svc:*")
    # Browser origins allowed to call the MCP endpoint (Origin header; the gateway's CORS origins by default);
    # requests without Origin are not affected.
    mcp_allowed_origins: tuple[str, ...] = ("http://127.0.0.1:*", "http://localhost:*", "tauri://localhost")

    # google_search: a Serper-compatible search API (`POST {SEARCH_API_URL}/search` with `X-API-KEY`).
    # Empty URL or key: the tool is not offered.
    search_api_url: str = "https://google.serper.dev"
    search_api_key: str = ""
    search_timeout_seconds: float = 15.0
    # Attempts for a failed search (connection error, timeout, 429 or 5xx), with backoff 0.25 s x1.5.
    search_attempts: int = 3
    # Always added to a call's domain_allow_list (Jan's SERPER_DOMAIN_FILTER).
    search_domain_filter: tuple[str, ...] = ()

    # scrape: direct HTTP through the SSRF guard (shared/outbound.py).
    scrape_timeout_seconds: float = 15.0
    scrape_max_bytes: int = 2 * 1024 * 1024
    scrape_max_redirects: int = 5
    # Host names scrape may fetch even though they resolve to a non-public address (for tests and intranets).
    scrape_allowed_hosts: tuple[str, ...] = ()

    # How long the admin tool table (active flags, descriptions, disallowed keywords) is cached (Jan: 2 min).
    tool_config_ttl_seconds: float = 120.0
