"""What file search raises. Every error is a FileSearchError with a message meant for the caller (an MCP tool
returns it as `isError` text)."""
from __future__ import annotations


class FileSearchError(Exception):
    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class InvalidInput(FileSearchError):
    """The arguments are wrong (missing text, an over-long id, ...)."""


class LimitExceeded(FileSearchError):
    """Indexing would pass a per-user limit or the per-document cap."""


class EmbeddingServiceError(FileSearchError):
    """The embedding service is down, slow, refuses us, or answers something unusable."""
