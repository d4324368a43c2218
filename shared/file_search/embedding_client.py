"""A client of the embedding service's `/embed` contract (TEI's, which functions/embeddings also serves):
`POST /embed {"inputs": [...], "normalize": true, "truncate": true}` -> `[[float, ...], ...]`.

Every failure is an EmbeddingServiceError that says what went wrong, so a tool can report it (`isError`)."""
from __future__ import annotations

import json

import urllib3

from shared.file_search.errors import EmbeddingServiceError


class EmbeddingClient:
    def __init__(self, base_url: str, *, dimension: int, timeout_seconds: float = 30.0,
                 connect_timeout_seconds: float = 3.0):
        self.base_url = base_url.rstrip("/")
        self.dimension = dimension
        self._timeout = urllib3.Timeout(connect=connect_timeout_seconds, read=timeout_seconds)
        self._pool = urllib3.PoolManager(num_pools=2, maxsize=8, retries=False)

    def embed(self, texts: list[str], *, authorization: str | None = None) -> list[list[float]]:
        """Unit vectors for `texts`, in order. `authorization`: the Authorization header value to present (the
        caller's user token or API key, or a delegation token)."""
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if authorization:
            headers["Authorization"] = authorization
        body = json.dumps({"inputs": texts, "normalize": True, "truncate": True}).encode("utf-8")
        url = f"{self.base_url}/embed"
        try:
            response = self._pool.request("POST", url, body=body, headers=headers, timeout=self._timeout)
        except urllib3.exceptions.ConnectTimeoutError as exc:
            # urllib3's NewConnectionError (refused, unknown host) is a ConnectTimeoutError too.
            reason = "cannot connect" if isinstance(exc, urllib3.exceptions.NewConnectionError) else "connect timeout"
            raise EmbeddingServiceError(
                f"embedding service unavailable: cannot reach {self.base_url} ({reason})") from None
        except urllib3.exceptions.TimeoutError:
            raise EmbeddingServiceError(
                f"embedding service timed out after {self._timeout.read_timeout:g} s ({self.base_url})") from None
        except urllib3.exceptions.HTTPError as exc:
            raise EmbeddingServiceError(
                f"embedding service unavailable: cannot reach {self.base_url} ({type(exc).__name__})") from None
        if response.status in (401, 403):
            raise EmbeddingServiceError(f"embedding service refused the credentials ({response.status})")
        if response.status != 200:
            raise EmbeddingServiceError(
                f"embedding service answered {response.status}: {_message(response.data)}")
        try:
            vectors = json.loads(response.data)
        except ValueError:
            raise EmbeddingServiceError("embedding service returned invalid JSON") from None
        if not isinstance(vectors, list) or len(vectors) != len(texts) or not all(
                isinstance(vector, list) for vector in vectors):
            raise EmbeddingServiceError(f"embedding service returned {_describe(vectors)} for {len(texts)} inputs")
        for vector in vectors:
            if len(vector) != self.dimension:
                raise EmbeddingServiceError(
                    f"embedding service returned {len(vector)}-dimensional vectors; the index holds "
                    f"{self.dimension} (EMBEDDING_DIMENSION): re-embed after switching models (docs/deploy.md)")
        return vectors


def _message(data: bytes) -> str:
    try:
        body = json.loads(data)
        return str(body.get("message") or body.get("error", {}).get("message") or body)[:300]
    except (ValueError, AttributeError):
        return data[:300].decode("utf-8", "replace")


def _describe(value) -> str:
    if isinstance(value, list):
        return f"{len(value)} items"
    return type(value).__name__
