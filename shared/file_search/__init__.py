"""Per-user file search (Jan's file_search_index / file_search_query tools) on PostgreSQL + pgvector."""
from shared.file_search.embedding_client import EmbeddingClient
from shared.file_search.errors import EmbeddingServiceError, FileSearchError, InvalidInput, LimitExceeded
from shared.file_search.service import FileSearch
from shared.file_search.settings import FileSearchSettings

__all__ = ["EmbeddingClient", "EmbeddingServiceError", "FileSearch", "FileSearchError", "FileSearchSettings",
           "InvalidInput", "LimitExceeded"]
