"""The embedding bodies: TEI's `/embed` and OpenAI's `/v1/embeddings`."""
from __future__ import annotations

from typing import Annotated, Any, Literal

from msgspec import Meta

from shared.protocol import RequestModel

# A string or an array of strings; checked by the route (token arrays get their own message).
Texts = Annotated[Any, Meta(extra_json_schema={
    "anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]})]


class EmbedRequest(RequestModel):
    """TEI's embed: `{"inputs": str | [str], "normalize": true, "truncate": false}`."""

    inputs: Texts = None
    normalize: bool | None = None
    truncate: bool | None = None


class EmbeddingsRequest(RequestModel):
    """OpenAI's embeddings: `{"model", "input", "encoding_format"?, "dimensions"?, "user"?}`."""

    model: str
    input: Texts = None
    encoding_format: Annotated[Literal["float", "base64"],
                               Meta(extra={"error": "encoding_format must be 'float' or 'base64'"})] | None = None
    dimensions: Annotated[int, Meta(ge=1)] | None = None
    user: str | None = None
