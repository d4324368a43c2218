"""Jan's file_search_index and file_search_query tools over the shared per-user file search (pgvector).

Each call acts for the caller only (their internal user id) and presents the caller's own credential of this
request to the embedding service, which authenticates every request itself; nothing is stored.
"""
from __future__ import annotations

from functions.mcp.arguments import ToolFailure
from functions.mcp.server import ToolSpec
from shared.file_search import EmbeddingClient, FileSearch, FileSearchError

INDEX_DESCRIPTION = "Index arbitrary text into the lightweight vector store used for MCP automations."
INDEX_SCHEMA = {
    "type": "object",
    "properties": {
        "document_id": {"type": "string", "description": "Stable identifier for the document"},
        "text": {"type": "string", "description": "Raw text to index"},
        "metadata": {"type": "object", "description": "Optional metadata object stored with the document"},
        "tags": {"type": "array", "items": {"type": "string"},
                 "description": "Optional list of tags used to filter search results"},
    },
    "required": ["document_id", "text"],
}
QUERY_DESCRIPTION = "Run a semantic query against documents indexed via file_search_index."
QUERY_SCHEMA = {
    "type": "object",
    "properties": {
        "query": {"type": "string", "description": "Natural language query to search for"},
        "top_k": {"type": "integer", "description": "Maximum number of results to return (default: 5, max: 20)"},
        "document_ids": {"type": "array", "items": {"type": "string"},
                         "description": "Optional whitelist of document IDs to search within"},
    },
    "required": ["query"],
}
DELETE_DESCRIPTION = "Delete a document indexed via file_search_index, with all its chunks."
DELETE_SCHEMA = {
    "type": "object",
    "properties": {"document_id": {"type": "string", "description": "The document's identifier"}},
    "required": ["document_id"],
}


def file_search_tools(db, settings) -> list[ToolSpec]:
    """Both tools, backed by the embedding service at EMBEDDING_SERVICE_URL (not offered when it is empty)."""
    if not settings.embedding_service_url:
        return []
    search = FileSearch(db, EmbeddingClient(settings.embedding_service_url, dimension=settings.embedding_dimension,
                                            timeout_seconds=settings.embedding_timeout_seconds), settings)

    def index(arguments, _config, principal, authorization):
        return _failing_clearly(lambda: search.index_document(
            principal.user_id, arguments.get("document_id"), arguments.get("text"), arguments.get("metadata"),
            tags=arguments.get("tags"), authorization=authorization))

    def query(arguments, _config, principal, authorization):
        return _failing_clearly(lambda: search.query(
            principal.user_id, arguments.get("query"), arguments.get("top_k"), arguments.get("document_ids"),
            authorization=authorization))

    def delete(arguments, _config, principal, authorization):
        deleted = _failing_clearly(lambda: search.delete_document(principal.user_id, arguments.get("document_id")))
        if not deleted:
            raise ToolFailure(f"no document {arguments.get('document_id')!r} in your index")
        return {"document_id": arguments.get("document_id"), "status": "deleted"}

    # FileSearch checks its own arguments, with Jan's messages (metadata is an object, which the generic checker
    # does not read).
    return [ToolSpec("file_search_index", INDEX_DESCRIPTION, INDEX_SCHEMA, index, check_arguments=False,
                     forward_authorization=True),
            ToolSpec("file_search_query", QUERY_DESCRIPTION, QUERY_SCHEMA, query, check_arguments=False,
                     forward_authorization=True),
            ToolSpec("file_search_delete", DELETE_DESCRIPTION, DELETE_SCHEMA, delete, check_arguments=False,
                     forward_authorization=True)]


def _failing_clearly(call):
    try:
        return call()
    except FileSearchError as error:
        raise ToolFailure(str(error)) from None
