"""The embedding routes: TEI's `/embed`, `/info`, `/health` (Jan's embedding contract) and OpenAI's
`/v1/embeddings`. Embedding needs the platform's credentials (a user token or API key); health and info do not."""
from __future__ import annotations

import base64

from flask import Blueprint, current_app, jsonify

from shared.auth import authenticated
from shared.errors import BadRequest, NotFound
from shared.protocol.flask import body
from functions.embeddings.protocol import EmbeddingsRequest, EmbedRequest
from functions.embeddings.service import EmbeddingService

bp = Blueprint("embeddings", __name__)


def _service() -> EmbeddingService:
    return current_app.extensions["jan"].services["embeddings"]


def _texts(value, name: str) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return value
    if isinstance(value, list) and value and all(isinstance(item, (int, list)) for item in value):
        # Token ids of another tokenizer (tiktoken's, as OpenAI clients send) would embed as noise.
        raise BadRequest(f"{name} must be a string or an array of strings; token arrays are not supported",
                         param=name)
    if value is None:
        raise BadRequest(f"{name} is required: a string or an array of strings", param=name)
    raise BadRequest(f"{name} must be a string or an array of strings", param=name)


@bp.get("/health")
def health():
    """TEI's health check: the model is loaded (the process does not serve before it is)."""
    return {"status": "ok"}


@bp.get("/info")
def info():
    """TEI's model information: which model, its vector size and the request caps."""
    service = _service()
    return {
        "model_id": service.model_id,
        "model_type": {"embedding": {"pooling": "mean"}},
        "dimension": service.dimension,
        "max_input_length": service.max_tokens,
        "max_client_batch_size": service.max_inputs,
        "max_input_chars": service.max_input_chars,
        "version": current_app.extensions["jan"].settings.version,
    }


@bp.post("/embed")
@authenticated
@body(EmbedRequest)
def embed(body: EmbedRequest):
    """TEI's embed: `{"inputs": str | [str], "normalize": true, "truncate": false}` -> `[[float, ...], ...]`."""
    service = _service()
    texts = _texts(body.inputs, "inputs")
    service.check_inputs(texts, param="inputs")
    result = service.embed(texts, normalize=body.normalize is not False, truncate=body.truncate is True,
                           param="inputs", too_long_status=413)
    return jsonify(result.vectors.tolist())


@bp.post("/v1/embeddings")
@authenticated
@body(EmbeddingsRequest)
def openai_embeddings(body: EmbeddingsRequest):
    """OpenAI's embeddings: `{"model", "input", "encoding_format"?, "dimensions"?}` -> a list of embeddings."""
    service = _service()
    if body.model not in (service.model_id, service.model_id.rsplit("/", 1)[-1]):
        raise NotFound(f"The model `{body.model}` does not exist; this service embeds with `{service.model_id}`",
                       code="model_not_found", param="model")
    encoding_format = body.encoding_format or "float"
    if body.dimensions is not None and body.dimensions != service.dimension:
        raise BadRequest(f"dimensions must be {service.dimension} for {service.model_id}", param="dimensions")
    texts = _texts(body.input, "input")
    service.check_inputs(texts, param="input")
    result = service.embed(texts, normalize=True, truncate=False, param="input", too_long_status=400)
    if encoding_format == "base64":
        encoded = [base64.b64encode(vector.astype("<f4").tobytes()).decode("ascii") for vector in result.vectors]
    else:
        encoded = result.vectors.tolist()
    return {
        "object": "list",
        "data": [{"object": "embedding", "index": index, "embedding": vector} for index, vector in enumerate(encoded)],
        "model": service.model_id,
        "usage": {"prompt_tokens": result.token_count, "total_tokens": result.token_count},
    }
