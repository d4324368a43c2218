"""file_search_index / file_search_query through the official MCP client: the mcp function (uvicorn) with the
real embedding service (all-MiniLM-L6-v2) and pgvector on the embedded PostgreSQL."""
from __future__ import annotations

import json

import pytest

from tests.mcp.conftest import call_tool, list_tools, start_uvicorn, stop

DOCUMENTS = {
    "garden": "Tomatoes need six hours of sun and deep watering twice a week; mulch keeps the soil moist.",
    "invoice": "Invoice 2291 is due on the 30th; late payments incur a two percent monthly fee.",
    "trip": "The train to Lyon leaves at 7:42 from platform 4; bring the booking code printed on the ticket.",
}


@pytest.fixture(scope="module")
def mcp_with_file_search(mcp_env, live_embeddings, tmp_path_factory):
    process, base = start_uvicorn({**mcp_env, "EMBEDDING_SERVICE_URL": live_embeddings},
                                  tmp_path_factory.mktemp("mcp-file-search") / "uvicorn.log")
    yield base
    stop(process)


def payload(result) -> dict:
    assert not result.is_error, result.content[0].text
    return json.loads(result.content[0].text)


def test_file_search_is_offered_only_with_an_embedding_service(mcp_with_file_search, live_mcp, user):
    assert {"file_search_index", "file_search_query", "file_search_delete"} <= {tool.name for tool in
                                                          list_tools(mcp_with_file_search, user.headers).tools}
    assert not {"file_search_index", "file_search_query"} & {tool.name for tool in
                                                             list_tools(live_mcp, user.headers).tools}


def test_a_query_finds_the_right_document_and_another_user_sees_none(mcp_with_file_search, new_user):
    owner, stranger = new_user(), new_user()
    for document_id, text in DOCUMENTS.items():
        indexed = payload(call_tool(mcp_with_file_search, owner.headers, "file_search_index",
                                    {"document_id": document_id, "text": text, "metadata": {"kind": document_id}}))
        assert indexed["document_id"] == document_id and indexed["status"] == "indexed"

    found = payload(call_tool(mcp_with_file_search, owner.headers, "file_search_query",
                              {"query": "when does my train depart?", "top_k": 2}))
    assert found["results"][0]["document_id"] == "trip", found
    assert found["results"][0]["score"] > found["results"][1]["score"]

    only_invoice = payload(call_tool(mcp_with_file_search, owner.headers, "file_search_query",
                                     {"query": "when does my train depart?", "document_ids": ["invoice"]}))
    assert {result["document_id"] for result in only_invoice["results"]} == {"invoice"}

    nothing = payload(call_tool(mcp_with_file_search, stranger.headers, "file_search_query",
                                {"query": "when does my train depart?"}))
    assert nothing["results"] == []
    not_theirs = call_tool(mcp_with_file_search, stranger.headers, "file_search_delete", {"document_id": "trip"})
    assert not_theirs.is_error

    assert payload(call_tool(mcp_with_file_search, owner.headers, "file_search_delete",
                             {"document_id": "trip"})) == {"document_id": "trip", "status": "deleted"}
    after = payload(call_tool(mcp_with_file_search, owner.headers, "file_search_query",
                              {"query": "when does my train depart?"}))
    assert "trip" not in {result["document_id"] for result in after["results"]}


def test_bad_arguments_and_a_down_embedding_service_are_clear_tool_errors(mcp_env, mcp_with_file_search, user,
                                                                           tmp_path_factory):
    missing = call_tool(mcp_with_file_search, user.headers, "file_search_query", {"query": "  "})
    assert missing.is_error and "query" in missing.content[0].text

    process, base = start_uvicorn({**mcp_env, "EMBEDDING_SERVICE_URL": "http://127.0.0.1:9"},
                                  tmp_path_factory.mktemp("mcp-embeddings-down") / "uvicorn.log")
    try:
        down = call_tool(base, user.headers, "file_search_index", {"document_id": "d", "text": "some text"})
    finally:
        stop(process)
    assert down.is_error and "embedding service" in down.content[0].text, down.content[0].text
