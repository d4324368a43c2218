"""What the routes call: validate inputs against the per-request caps, tokenise, embed through the batcher."""
from __future__ import annotations

import logging
from dataclasses import dataclass

from shared.errors import ApiError, BadRequest
from functions.embeddings.batching import MicroBatcher
from functions.embeddings.model import TOKENIZER_PATH, ModelMismatch, SentenceEncoder, default_model_path
from functions.embeddings.settings import EmbeddingsSettings

log = logging.getLogger("jan.embeddings")


class InputTooLarge(ApiError):
    status = 413


@dataclass(frozen=True)
class Embeddings:
    vectors: object  # numpy float32 array, one row per input
    token_count: int


class EmbeddingService:
    def __init__(self, settings: EmbeddingsSettings):
        self.settings = settings
        self.model_id = settings.embedding_model_id
        self.dimension = settings.embedding_dimension
        self.max_tokens = settings.embedding_max_tokens
        self.max_inputs = settings.embedding_max_inputs
        self.max_input_chars = settings.embedding_max_input_chars
        self.encoder = SentenceEncoder(
            settings.embedding_model_path or default_model_path(),
            settings.embedding_tokenizer_path or str(TOKENIZER_PATH),
            max_tokens=settings.embedding_max_tokens, threads=settings.embedding_threads)
        self._check_dimension()
        self.batcher = MicroBatcher(self.encoder.pooled, batch_size=settings.embedding_batch_size,
                                    wait_seconds=settings.embedding_batch_wait_ms / 1000)

    def _check_dimension(self) -> None:
        probe = self.encoder.pooled(self.encoder.tokenize(["dimension probe"]))
        produced = int(probe.shape[1])
        if produced != self.dimension:
            raise ModelMismatch(
                f"the model {self.model_id!r} produces {produced}-dimensional vectors but EMBEDDING_DIMENSION is "
                f"{self.dimension}: set EMBEDDING_DIMENSION={produced} everywhere and re-embed stored vectors "
                "(docs/deploy.md, \"Switching the embedding model\")")
        log.info("embedding model %s loaded: %d dimensions", self.model_id, produced)

    def check_inputs(self, texts: list[str], *, param: str) -> None:
        if not texts:
            raise BadRequest(f"{param} must not be empty", param=param)
        if len(texts) > self.max_inputs:
            raise InputTooLarge(f"too many inputs: {len(texts)}; at most {self.max_inputs} per request",
                                code="too_many_inputs", param=param)
        for index, text in enumerate(texts):
            if not text:
                raise BadRequest(f"{param}[{index}] must not be an empty string", param=param)
            if len(text) > self.max_input_chars:
                raise InputTooLarge(f"{param}[{index}] has {len(text)} characters; at most "
                                    f"{self.max_input_chars} per input", code="input_too_long", param=param)

    def embed(self, texts: list[str], *, normalize: bool, truncate: bool, param: str,
              too_long_status: int) -> Embeddings:
        """Vectors for already-validated texts. Without `truncate`, an input over the token limit is an error."""
        encodings = self.encoder.tokenize(texts)
        if not truncate:
            for index, encoding in enumerate(encodings):
                if self.encoder.truncated(encoding):
                    raise ApiError(f"{param}[{index}] is longer than the model's {self.max_tokens} tokens; "
                                   "shorten it or send truncate: true", status=too_long_status,
                                   code="context_length_exceeded", param=param)
        vectors = self.batcher.pooled(encodings)
        if normalize:
            vectors = self.encoder.normalise(vectors)
        return Embeddings(vectors=vectors, token_count=sum(len(encoding.ids) for encoding in encodings))
