"""Jan's MCP tool admin (list, get, update: activate, describe, categorise, disallowed keywords) for admins only,
the public active-tool routes, and what the MCP server makes of the admin's settings."""
from __future__ import annotations

import json
import time

import httpx
import pytest
from mcp.shared.exceptions import MCPError
from sqlalchemy import select, update

from shared.schema import mcp_tools
from tests.mcp.conftest import call_tool, list_tools

# Jan's seeded rows, in list order (by tool key).
SEEDED = ["mcp_edit_image_001", "mcp_file_search_index_001", "mcp_file_search_query_001", "mcp_generate_image_001",
          "mcp_google_search_001", "mcp_scrape_001"]
TOOL_KEYS = {"id", "public_id", "tool_key", "name", "description", "category", "is_active", "created_at",
             "updated_at"}


@pytest.fixture(autouse=True)
def restored_tools(app):
    """The seeded rows as they were before each test."""
    db = app.extensions["jan"].db
    with db.read() as conn:
        rows = [dict(row._mapping) for row in conn.execute(select(mcp_tools))]
    yield
    with db.transaction() as conn:
        for row in rows:
            conn.execute(update(mcp_tools).where(mcp_tools.c.id == row["id"]).values(**row))


def get(base, account, path, **params):
    return httpx.get(base + path, headers=account.headers, params=params)


def patch(base, account, path, body):
    data = body if isinstance(body, (bytes, str)) else json.dumps(body)
    return httpx.patch(base + path, headers={**account.headers, "Content-Type": "application/json"}, content=data)


class TestAdminRoutes:
    def test_list_is_jans_seed(self, live_mcp, admin):
        response = get(live_mcp, admin, "/v1/admin/mcp-tools")
        assert response.status_code == 200
        body = response.json()
        assert set(body) == {"data", "total"} and body["total"] == 6
        assert [tool["public_id"] for tool in body["data"]] == SEEDED
        search = body["data"][4]
        assert set(search) == TOOL_KEYS | {"disallowed_keywords"}
        assert (search["tool_key"], search["name"], search["category"], search["is_active"]) == (
            "google_search", "google_search", "search", True)
        assert search["disallowed_keywords"] == ["(?i)menlo"]
        assert search["created_at"].endswith("Z") and len(search["created_at"]) == 20
        assert "disallowed_keywords" not in body["data"][5] and "metadata" not in body["data"][5]  # omitempty

    @pytest.mark.parametrize("params, expected", [
        ({"category": "file_search"}, ["mcp_file_search_index_001", "mcp_file_search_query_001"]),
        ({"search": "webpage"}, ["mcp_scrape_001"]),
        ({"search": "IMAGE", "limit": "1"}, ["mcp_edit_image_001"]),
        ({"limit": "2", "offset": "3"}, ["mcp_generate_image_001", "mcp_google_search_001"]),
        ({"is_active": "true", "category": "scrape"}, ["mcp_scrape_001"]),
        ({"is_active": "false"}, []),
    ])
    def test_list_filters(self, live_mcp, admin, params, expected):
        body = get(live_mcp, admin, "/v1/admin/mcp-tools", **params).json()
        assert [tool["public_id"] for tool in body["data"]] == expected

    def test_get_and_unknown(self, live_mcp, admin):
        body = get(live_mcp, admin, "/v1/admin/mcp-tools/mcp_scrape_001").json()
        assert body["data"]["tool_key"] == "scrape"
        missing = get(live_mcp, admin, "/v1/admin/mcp-tools/mcp_nothing_001")
        assert missing.status_code == 404 and missing.json()["error"]["type"] == "not_found_error"

    def test_update(self, live_mcp, admin):
        response = patch(live_mcp, admin, "/v1/admin/mcp-tools/mcp_scrape_001", {
            "description": "Read a page.", "category": "web", "metadata": {"tier": 2},
            "disallowed_keywords": ["(?i)casino"], "name": "ignored: read-only"})
        assert response.status_code == 200
        data = response.json()["data"]
        assert (data["description"], data["category"], data["metadata"], data["disallowed_keywords"], data["name"]) == (
            "Read a page.", "web", {"tier": 2}, ["(?i)casino"], "scrape")
        assert get(live_mcp, admin, "/v1/admin/mcp-tools/mcp_scrape_001").json()["data"] == data

    def test_update_unknown_is_404(self, live_mcp, admin):
        assert patch(live_mcp, admin, "/v1/admin/mcp-tools/mcp_nothing_001", {"is_active": False}).status_code == 404

    @pytest.mark.parametrize("body, param", [
        ({"is_active": "no"}, "is_active"),
        ({"description": ""}, "description"),
        ({"description": 5}, "description"),
        ({"category": "x" * 101}, "category"),
        ({"metadata": [1]}, "metadata"),
        ({"disallowed_keywords": "casino"}, "disallowed_keywords"),
        ({"disallowed_keywords": ["(unclosed"]}, "disallowed_keywords"),
        ({"disallowed_keywords": ["x" * 201]}, "disallowed_keywords"),
        ({"disallowed_keywords": ["a"] * 51}, "disallowed_keywords"),
        (b"{not json", None),
        (b"[1, 2]", None),
    ])
    def test_bad_updates_are_400_and_change_nothing(self, live_mcp, admin, body, param):
        before = get(live_mcp, admin, "/v1/admin/mcp-tools/mcp_google_search_001").json()
        response = patch(live_mcp, admin, "/v1/admin/mcp-tools/mcp_google_search_001", body)
        assert response.status_code == 400
        assert response.json()["error"]["type"] == "invalid_request_error"
        assert response.json()["error"]["param"] == param
        assert get(live_mcp, admin, "/v1/admin/mcp-tools/mcp_google_search_001").json() == before

    def test_other_users_cannot_use_admin_routes(self, live_mcp, user, guest, admin):
        for account in (user, guest):
            for response in (get(live_mcp, account, "/v1/admin/mcp-tools"),
                             get(live_mcp, account, "/v1/admin/mcp-tools/mcp_scrape_001"),
                             patch(live_mcp, account, "/v1/admin/mcp-tools/mcp_scrape_001", {"is_active": False})):
                assert response.status_code == 403
                assert response.json()["error"]["type"] == "permission_error"
        assert get(live_mcp, admin, "/v1/admin/mcp-tools/mcp_scrape_001").json()["data"]["is_active"] is True

    def test_an_admin_api_key_works(self, live_mcp, admin):
        key = admin.post("/auth/api-keys", json={"name": "admin key"}).json["key"]
        response = httpx.get(f"{live_mcp}/v1/admin/mcp-tools", headers={"X-API-Key": key})
        assert response.status_code == 200 and response.json()["total"] == 6


class TestPublicToolRoutes:
    def test_active_tools(self, live_mcp, admin, user):
        patch(live_mcp, admin, "/v1/admin/mcp-tools/mcp_edit_image_001", {"is_active": False})
        body = get(live_mcp, user, "/v1/mcp-tools").json()
        assert [tool["public_id"] for tool in body["data"]] == SEEDED[1:]
        assert get(live_mcp, user, "/v1/mcp-tools/scrape").json()["data"]["public_id"] == "mcp_scrape_001"
        assert get(live_mcp, user, "/v1/mcp-tools/edit_image").status_code == 404
        assert get(live_mcp, user, "/v1/mcp-tools/nothing").status_code == 404


class TestServerFollowsTheAdmin:
    def test_a_disabled_tool_is_neither_listed_nor_callable(self, live_mcp, admin, user):
        patch(live_mcp, admin, "/v1/admin/mcp-tools/mcp_google_search_001", {"is_active": False})
        assert [tool.name for tool in list_tools(f"{live_mcp}/v1/mcp", user.headers).tools] == ["python_exec", "scrape"]
        with pytest.raises(MCPError) as raised:
            call_tool(f"{live_mcp}/v1/mcp", user.headers, "google_search", {"q": "x"})
        assert raised.value.error.code == -32602

    def test_the_admin_description_is_listed(self, live_mcp, admin, user):
        patch(live_mcp, admin, "/v1/admin/mcp-tools/mcp_scrape_001", {"description": "Fetch one page as text."})
        tools = {tool.name: tool for tool in list_tools(f"{live_mcp}/v1/mcp", user.headers).tools}
        assert tools["scrape"].description == "Fetch one page as text."

    def test_disallowed_keywords_drop_results_and_citations(self, live_mcp, admin, user, serper):
        patch(live_mcp, admin, "/v1/admin/mcp-tools/mcp_google_search_001",
              {"disallowed_keywords": ["(?i)casino", r"bad\.example"]})
        serper.script(("results", [
            {"title": "Good", "link": "https://good.example/", "snippet": "fine"},
            {"title": "Best CASINO", "link": "https://x.example/", "snippet": "fine"},
            {"title": "Fine", "link": "https://bad.example/page", "snippet": "fine"},
            {"title": "Also good", "link": "https://also.example/", "snippet": "fine"},
            {"title": "Menlo", "link": "https://menlo.example/", "snippet": "no longer filtered"},
        ]))
        result = call_tool(f"{live_mcp}/v1/mcp", user.headers, "google_search", {"q": "x"})
        body = json.loads(result.content[0].text)
        assert [r["title"] for r in body["results"]] == ["Good", "Also good", "Menlo"]
        assert [r["position"] for r in body["results"]] == [1, 2, 3]
        assert body["citations"] == ["https://good.example/", "https://also.example/", "https://menlo.example/"]

    def test_a_catastrophic_pattern_is_matched_in_bounded_time(self, live_mcp, admin, user, serper):
        """`(a+)+$` against a long run of a's backtracks for ages in `re`; here the check runs out of its budget,
        the result is dropped, and the search answers at once with the rest."""
        assert patch(live_mcp, admin, "/v1/admin/mcp-tools/mcp_google_search_001",
                     {"disallowed_keywords": ["(a+)+$"]}).status_code == 200
        serper.script(("results", [
            {"title": "Good", "link": "https://good.example/", "snippet": "fine"},
            {"title": "Trap", "link": "https://trap.example/", "snippet": "a" * 400 + "!"},
            {"title": "Matches", "link": "https://match.example/a", "snippet": "its URL ends in a"},
        ]))
        started = time.monotonic()
        result = call_tool(f"{live_mcp}/v1/mcp", user.headers, "google_search", {"q": "x"})
        assert time.monotonic() - started < 5
        body = json.loads(result.content[0].text)
        assert [r["title"] for r in body["results"]] == ["Good"]

    def test_jans_seeded_keyword_filters_by_default(self, live_mcp, user, serper):
        serper.script(("results", [{"title": "Menlo Research", "link": "https://menlo.ai/", "snippet": "s"},
                                   {"title": "Other", "link": "https://other.example/", "snippet": "s"}]))
        body = json.loads(call_tool(f"{live_mcp}/v1/mcp", user.headers, "google_search", {"q": "x"}).content[0].text)
        assert body["citations"] == ["https://other.example/"]


@pytest.mark.parametrize("params", [{"limit": "x"}, {"limit": "0"}, {"offset": "-1"}])
def test_bad_paging_is_400(live_mcp, admin, params):
    response = get(live_mcp, admin, "/v1/admin/mcp-tools", **params)
    assert response.status_code == 400 and response.json()["error"]["param"] in params


def _audit_entries(app, target_id: str) -> list:
    from shared.platform_schema import audit_logs

    with app.extensions["jan"].db.read() as conn:
        return conn.execute(select(audit_logs).where(audit_logs.c.target_id == target_id)
                            .order_by(audit_logs.c.id)).all()


class TestAuditLog:
    """Every tool admin write leaves one entry in the shared audit log, in the write's transaction."""

    def test_a_patch_leaves_one_entry_with_before_and_after(self, live_mcp, admin, app):
        already = len(_audit_entries(app, "mcp_scrape_001"))
        before = get(live_mcp, admin, "/v1/admin/mcp-tools/mcp_scrape_001").json()["data"]
        response = patch(live_mcp, admin, "/v1/admin/mcp-tools/mcp_scrape_001",
                         {"is_active": False, "disallowed_keywords": ["(?i)casino"]})
        assert response.status_code == 200
        entries = _audit_entries(app, "mcp_scrape_001")[already:]
        assert len(entries) == 1
        entry = entries[0]
        assert (entry.action, entry.target_type, entry.actor_user_id, entry.actor_auth_method,
                entry.actor_service) == ("mcp_tool.update", "mcp_tool", admin.user_id, "jwt", None)
        assert entry.before == before and entry.before["is_active"] is True
        assert entry.after == response.json()["data"]
        assert entry.after["is_active"] is False and entry.after["disallowed_keywords"] == ["(?i)casino"]
        assert entry.request_id == response.headers["x-request-id"]

        listed = admin.get("/v1/admin/audit-logs", query_string={"target_type": "mcp_tool",
                                                                 "target_id": "mcp_scrape_001"}).json
        assert listed["data"][0]["id"] == entry.public_id
        assert listed["data"][0]["before"] == before and listed["data"][0]["after"] == entry.after

    @pytest.mark.parametrize("account, path, body", [
        ("admin", "/v1/admin/mcp-tools/mcp_scrape_001", {"is_active": "no"}),
        ("admin", "/v1/admin/mcp-tools/mcp_scrape_001", {"disallowed_keywords": ["(unclosed"]}),
        ("admin", "/v1/admin/mcp-tools/mcp_scrape_001", {}),
        ("admin", "/v1/admin/mcp-tools/mcp_nothing_001", {"is_active": False}),
        ("user", "/v1/admin/mcp-tools/mcp_scrape_001", {"is_active": False}),
    ])
    def test_a_refused_or_empty_patch_leaves_none(self, live_mcp, app, request, account, path, body):
        target = path.rsplit("/", 1)[1]
        already = len(_audit_entries(app, target))
        response = patch(live_mcp, request.getfixturevalue(account), path, body)
        assert response.status_code in (200, 400, 403, 404)
        assert len(_audit_entries(app, target)) == already


def test_the_keyword_check_has_a_time_budget():
    """In-process: every result's check stops within its budget, and a run-out counts as a match."""
    from functions.mcp.catalog import MATCH_BUDGET_SECONDS, ToolConfig, compile_keywords

    config = ToolConfig(is_active=True, description="", disallowed=compile_keywords(["(x+x+)+y", "(a|aa)+$"]))
    started = time.monotonic()
    assert config.disallows("a" * 4000 + "!", "x" * 4000)
    assert time.monotonic() - started < MATCH_BUDGET_SECONDS + 0.5
    assert not ToolConfig(True, "", compile_keywords(["(?i)casino"])).disallows("a" * 4000 + "!")
    assert ToolConfig(True, "", compile_keywords(["(?i)casino"])).disallows("Best CASINO")


def test_the_tool_configuration_is_cached_for_its_ttl(app):
    """In-process: the server sees a change made around the cache only after the TTL (or an admin write)."""
    from functions.mcp.catalog import ToolCatalog
    from shared.audit import Actor

    db = app.extensions["jan"].db
    catalog = ToolCatalog(db, ttl_seconds=3600)
    assert catalog.configs()["scrape"].description.startswith("Scrape a webpage")
    with db.transaction() as conn:
        conn.execute(update(mcp_tools).where(mcp_tools.c.tool_key == "scrape").values(description="changed"))
    assert catalog.configs()["scrape"].description.startswith("Scrape a webpage")
    catalog.invalidate()
    assert catalog.configs()["scrape"].description == "changed"
    catalog.update("mcp_scrape_001", {"description": "again"}, Actor(user_id=None, auth_method="service"))
    assert catalog.configs()["scrape"].description == "again"
