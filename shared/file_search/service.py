"""Per-user file search on PostgreSQL + pgvector: index a document (chunk, embed, store), query it (cosine
similarity with scores, optionally within some documents), delete a document, purge a user.

Users are the internal `users.id`; a document id is the caller's own string, unique per user, so one user's
`document_id` never reaches another user's rows. Framework-free: the mcp function's tools call it.
"""
from __future__ import annotations

import datetime as dt
import json
import re
import typing

from sqlalchemy import bindparam, delete, func, select, text as sql
from sqlalchemy.dialects.postgresql import ARRAY, insert
from sqlalchemy.types import BigInteger

from shared.db import Database
from shared.file_search.chunking import chunk_text
from shared.file_search.errors import InvalidInput, LimitExceeded
from shared.file_search.settings import FileSearchSettings
from shared.schema import file_search_chunks as chunks, file_search_documents as documents

MAX_DOCUMENT_ID_CHARS = 256
MAX_METADATA_BYTES = 16 * 1024
MAX_TAGS = 32
PREVIEW_CHARS = 240  # Jan's text_preview
_WORDS = re.compile(r"\w+")


class Embedder(typing.Protocol):
    def embed(self, texts: list[str], *, authorization: str | None = None) -> list[list[float]]: ...


def _literal(vector: list[float]) -> str:
    return "[" + ",".join(repr(float(value)) for value in vector) + "]"


def _rfc3339(moment: dt.datetime) -> str:
    return moment.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _preview(chunk: str) -> str:
    return chunk if len(chunk) <= PREVIEW_CHARS else chunk[:PREVIEW_CHARS] + "…"


def _storable(value: str, name: str) -> None:
    if "\x00" in value:
        raise InvalidInput(f"{name} must not contain NUL characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidInput(f"{name} must be valid Unicode (no unpaired surrogates)") from None


_INSERT_CHUNK = sql(
    "INSERT INTO file_search_chunks (document_pk, user_id, chunk_index, text, embedding) "
    "VALUES (:document_pk, :user_id, :chunk_index, :text, CAST(:embedding AS vector))")

# Small scopes: every chunk in scope, exactly (the CTE is materialised so the HNSW index is not used).
_EXACT_QUERY = sql("""
WITH scope AS MATERIALIZED (
    SELECT c.document_pk, c.chunk_index, c.text, c.embedding <=> CAST(:query_vector AS vector) AS distance
    FROM file_search_chunks c
    WHERE c.document_pk = ANY(:document_pks)
)
SELECT d.document_id, d.metadata, d.tags, s.chunk_index, s.text, s.distance
FROM (SELECT * FROM scope ORDER BY distance LIMIT :top_k) s
JOIN file_search_documents d ON d.id = s.document_pk
ORDER BY s.distance, d.document_id, s.chunk_index
""").bindparams(bindparam("document_pks", type_=ARRAY(BigInteger)))

# Large scopes: the HNSW index, filtered by owner (and documents). An iterative scan keeps walking the graph until
# enough rows pass the filter; relaxed_order may return them slightly out of order, so they are re-sorted.
_HNSW_QUERY = """
WITH nearest AS MATERIALIZED (
    SELECT c.document_pk, c.chunk_index, c.text, c.embedding <=> CAST(:query_vector AS vector) AS distance
    FROM file_search_chunks c
    WHERE c.user_id = :user_id {document_filter}
    ORDER BY c.embedding <=> CAST(:query_vector AS vector)
    LIMIT :top_k
)
SELECT d.document_id, d.metadata, d.tags, s.chunk_index, s.text, s.distance
FROM nearest s
JOIN file_search_documents d ON d.id = s.document_pk
ORDER BY s.distance, d.document_id, s.chunk_index
"""
HNSW_QUERY_ALL = sql(_HNSW_QUERY.format(document_filter=""))
HNSW_QUERY_DOCUMENTS = sql(_HNSW_QUERY.format(document_filter="AND c.document_pk = ANY(:document_pks)")
                            ).bindparams(bindparam("document_pks", type_=ARRAY(BigInteger)))


class FileSearch:
    def __init__(self, db: Database, embedder: Embedder, settings: FileSearchSettings):
        self.db = db
        self.embedder = embedder
        self.settings = settings

    # Indexing.

    def index_document(self, user_id: int, document_id: typing.Any, text: typing.Any,
                       metadata: typing.Any = None, *, tags: typing.Any = None,
                       authorization: str | None = None) -> dict:
        """Chunk, embed and store a document, replacing any earlier version with the same id.
        Jan's result: `{"document_id", "status": "indexed", "indexed_at", "token_count"}` (+ `chunk_count`)."""
        document_id = self._document_id(document_id)
        if not isinstance(text, str) or not text.strip():
            raise InvalidInput("text is required: a non-empty string")
        _storable(text, "text")
        metadata_json = self._metadata(metadata)
        tags = self._tags(tags)
        size = len(text.encode("utf-8"))
        cap = self.settings.file_search_max_document_bytes
        if cap and size > cap:
            raise LimitExceeded(f"the document is {size} bytes; at most {cap} bytes per document")
        # Checked before the (slow) embedding, and again under the user's lock before anything is written.
        with self.db.read() as conn:
            self._check_limits(conn, user_id, document_id, size)

        pieces = chunk_text(text, self.settings.file_search_chunk_chars,
                            self.settings.file_search_chunk_overlap_chars)
        vectors = self._embed(pieces, authorization)
        token_count = len(_WORDS.findall(text))

        with self.db.transaction() as conn:
            # One writer per user at a time, so two parallel uploads cannot both pass the limits.
            conn.execute(sql("SELECT pg_advisory_xact_lock(hashtextextended('file_search:' || :user_id, 0))"),
                         {"user_id": str(user_id)})
            self._check_limits(conn, user_id, document_id, size)
            values = dict(metadata=metadata_json, tags=tags, text_bytes=size, chunk_count=len(pieces),
                          token_count=token_count)
            statement = insert(documents).values(user_id=user_id, document_id=document_id, **values)
            row = conn.execute(statement.on_conflict_do_update(
                index_elements=[documents.c.user_id, documents.c.document_id],
                set_={**values, "updated_at": func.now()},
            ).returning(documents.c.id, documents.c.updated_at)).one()
            conn.execute(delete(chunks).where(chunks.c.document_pk == row.id))
            conn.execute(_INSERT_CHUNK, [
                {"document_pk": row.id, "user_id": user_id, "chunk_index": index, "text": piece,
                 "embedding": _literal(vector)}
                for index, (piece, vector) in enumerate(zip(pieces, vectors))])
        return {"document_id": document_id, "status": "indexed", "indexed_at": _rfc3339(row.updated_at),
                "token_count": token_count, "chunk_count": len(pieces)}

    def _embed(self, texts: list[str], authorization: str | None) -> list[list[float]]:
        size = max(1, self.settings.file_search_embed_batch_size)
        vectors: list[list[float]] = []
        for start in range(0, len(texts), size):
            vectors.extend(self.embedder.embed(texts[start:start + size], authorization=authorization))
        return vectors

    def _check_limits(self, conn, user_id: int, document_id: str, size: int) -> None:
        others = conn.execute(
            select(func.count(), func.coalesce(func.sum(documents.c.text_bytes), 0))
            .where(documents.c.user_id == user_id, documents.c.document_id != document_id)).one()
        count, stored = others
        max_documents = self.settings.file_search_max_documents_per_user
        if max_documents and count + 1 > max_documents:
            raise LimitExceeded(f"document limit reached: at most {max_documents} documents per user; "
                                "delete one first")
        max_bytes = self.settings.file_search_max_bytes_per_user
        if max_bytes and stored + size > max_bytes:
            raise LimitExceeded(f"storage limit reached: {stored} bytes stored, this document adds {size}; "
                                f"at most {max_bytes} bytes per user")

    @staticmethod
    def _document_id(value: typing.Any) -> str:
        if not isinstance(value, str) or not value.strip():
            raise InvalidInput("document_id is required: a non-empty string")
        if len(value) > MAX_DOCUMENT_ID_CHARS:
            raise InvalidInput(f"document_id must be at most {MAX_DOCUMENT_ID_CHARS} characters")
        _storable(value, "document_id")
        return value

    @staticmethod
    def _metadata(value: typing.Any) -> dict | None:
        if value is None:
            return None
        if not isinstance(value, dict):
            raise InvalidInput("metadata must be an object")
        try:
            encoded = json.dumps(value, allow_nan=False)
        except (TypeError, ValueError):
            raise InvalidInput("metadata must be plain JSON") from None
        if len(encoded.encode("utf-8")) > MAX_METADATA_BYTES:
            raise InvalidInput(f"metadata must be at most {MAX_METADATA_BYTES} bytes of JSON")
        if "\\u0000" in encoded:
            raise InvalidInput("metadata must not contain NUL characters")
        return value

    @staticmethod
    def _tags(value: typing.Any) -> list[str] | None:
        if value is None:
            return None
        if not isinstance(value, list) or not all(isinstance(tag, str) for tag in value):
            raise InvalidInput("tags must be an array of strings")
        if len(value) > MAX_TAGS:
            raise InvalidInput(f"at most {MAX_TAGS} tags")
        for tag in value:
            _storable(tag, "tags")
        return value

    # Querying.

    def query(self, user_id: int, query: typing.Any, top_k: typing.Any = None,
              document_ids: typing.Any = None, *, authorization: str | None = None) -> dict:
        """The `top_k` chunks most similar to `query` among the user's documents (or those of `document_ids`).
        Jan's result: `{"query", "top_k", "count", "results": [{"document_id", "score", "text_preview",
        "metadata", "tags"}]}`, one result per chunk, with `chunk_index` and the chunk's `text`."""
        if not isinstance(query, str) or not query.strip():
            raise InvalidInput("query is required: a non-empty string")
        if len(query) > self.settings.file_search_max_query_chars:
            raise InvalidInput(f"query must be at most {self.settings.file_search_max_query_chars} characters")
        _storable(query, "query")
        top_k = self._top_k(top_k)
        wanted = self._document_filter(document_ids)

        scope = select(func.array_agg(documents.c.id), func.coalesce(func.sum(documents.c.chunk_count), 0)).where(
            documents.c.user_id == user_id)
        if wanted is not None:
            scope = scope.where(documents.c.document_id.in_(wanted))
        with self.db.read() as conn:
            document_pks, chunk_count = conn.execute(scope).one()
        if not chunk_count:
            return {"query": query, "top_k": top_k, "count": 0, "results": []}

        query_vector = _literal(self.embedder.embed([query], authorization=authorization)[0])
        if chunk_count <= self.settings.file_search_exact_scan_max_chunks:
            with self.db.read() as conn:
                rows = conn.execute(_EXACT_QUERY, {"query_vector": query_vector, "document_pks": document_pks,
                                                   "top_k": top_k}).all()
        else:
            rows = self._hnsw(user_id, query_vector, top_k, document_pks if wanted is not None else None)
        results = [{
            "document_id": row.document_id,
            "score": round(1.0 - float(row.distance), 6),
            "text_preview": _preview(row.text),
            "text": row.text,
            "chunk_index": row.chunk_index,
            "metadata": row.metadata,
            "tags": row.tags,
        } for row in rows]
        return {"query": query, "top_k": top_k, "count": len(results), "results": results}

    def _hnsw(self, user_id: int, query_vector: str, top_k: int, document_pks: list[int] | None):
        settings = self.settings
        with self.db.transaction() as conn:
            # set_config(..., true) is SET LOCAL: these last until this transaction ends, on a pooled connection.
            # The scope is known to be large here, yet the planner, seeing one user's share of the table, may
            # prefer reading every user's rows in sequence: the index is what this path is for.
            conn.execute(sql(
                "SELECT set_config('enable_seqscan', 'off', true), "
                "set_config('hnsw.iterative_scan', 'relaxed_order', true), "
                "set_config('hnsw.ef_search', :ef_search, true), "
                "set_config('hnsw.max_scan_tuples', :max_scan_tuples, true)"),
                {"ef_search": str(max(settings.file_search_hnsw_ef_search, top_k)),
                 "max_scan_tuples": str(settings.file_search_hnsw_max_scan_tuples)})
            parameters = {"query_vector": query_vector, "user_id": user_id, "top_k": top_k}
            if document_pks is None:
                return conn.execute(HNSW_QUERY_ALL, parameters).all()
            return conn.execute(HNSW_QUERY_DOCUMENTS, {**parameters, "document_pks": document_pks}).all()

    def _top_k(self, value: typing.Any) -> int:
        # Jan's rule: missing or not positive -> the default; above the ceiling -> the ceiling.
        if value is None:
            return self.settings.file_search_default_top_k
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value != int(value):
            raise InvalidInput("top_k must be an integer")
        value = int(value)
        if value <= 0:
            return self.settings.file_search_default_top_k
        return min(value, self.settings.file_search_max_top_k)

    @staticmethod
    def _document_filter(value: typing.Any) -> list[str] | None:
        if value is None:
            return None
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            raise InvalidInput("document_ids must be an array of strings")
        return value or None

    # Deleting.

    def delete_document(self, user_id: int, document_id: typing.Any) -> bool:
        """Delete one of the user's documents and its chunks; False when the user has no such document."""
        document_id = self._document_id(document_id)
        with self.db.transaction() as conn:
            deleted = conn.execute(delete(documents).where(
                documents.c.user_id == user_id, documents.c.document_id == document_id)).rowcount
        return bool(deleted)

    def purge_user(self, user_id: int) -> int:
        """Delete everything the user indexed (the account-deletion hook); how many documents went."""
        with self.db.transaction() as conn:
            return conn.execute(delete(documents).where(documents.c.user_id == user_id)).rowcount
