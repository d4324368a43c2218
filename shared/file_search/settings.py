"""File search settings. A function that serves the file_search tools (mcp) adds these to its own settings
(subclass both), or reads them alone with `from_env(FileSearchSettings)`."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class FileSearchSettings:
    # The embedding service (functions/embeddings locally, TEI in production): its `/embed` contract.
    # Empty: no embedding service, so the file_search tools are not offered.
    embedding_service_url: str = ""
    embedding_timeout_seconds: float = 30.0
    # The stored vectors' size; must match the migration's column (same variable) and the service's model.
    embedding_dimension: int = 384
    # Texts per /embed call while indexing (at most the service's EMBEDDING_MAX_INPUTS).
    file_search_embed_batch_size: int = 32

    # Chunks are windows of about this many characters, each repeating the end of the one before; 800 characters
    # of English stay within all-MiniLM-L6-v2's 256 tokens.
    file_search_chunk_chars: int = 800
    file_search_chunk_overlap_chars: int = 160

    # Per-user limits (0 switches one off) and the cap on one document.
    file_search_max_documents_per_user: int = 1000
    file_search_max_bytes_per_user: int = 50 * 1024 * 1024
    file_search_max_document_bytes: int = 2 * 1024 * 1024

    # Query: Jan's top_k default and ceiling; the query text's cap.
    file_search_default_top_k: int = 5
    file_search_max_top_k: int = 20
    file_search_max_query_chars: int = 4000
    # A search over at most this many chunks scans them exactly (fast at this size, and exact); larger scopes
    # use the HNSW index with iterative scans.
    file_search_exact_scan_max_chunks: int = 5000
    # pgvector's default is 40; 100 found 85 % of the exact top 5 instead of 64 % at 100 000 chunks for +7 ms
    # (docs/performance.md).
    file_search_hnsw_ef_search: int = 100
    # How many index entries an iterative scan may visit before it gives up (pgvector's hnsw.max_scan_tuples).
    file_search_hnsw_max_scan_tuples: int = 20000
