"""The embedding function through HTTP, served by gunicorn as in its image, with the real all-MiniLM-L6-v2 model:
TEI's /embed, /info, /health and OpenAI's /v1/embeddings (through the official SDK), its caps and its auth."""
from __future__ import annotations

import base64
import concurrent.futures
import math

import httpx
import openai
import pytest

from shared.errors import ERROR_TYPES

MODEL = "sentence-transformers/all-MiniLM-L6-v2"


@pytest.fixture(scope="module")
def account(app):
    response = app.test_client().post("/auth/guest-login")
    assert response.status_code == 201
    return response.json


@pytest.fixture(scope="module")
def auth(account):
    return {"Authorization": f"Bearer {account['access_token']}"}


@pytest.fixture(scope="module")
def http(live_embeddings):
    with httpx.Client(base_url=live_embeddings, timeout=30) as session:
        yield session


def assert_error(response, status: int, message: str | None = None, *, code=None, param=None) -> dict:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["error"]["type"] == ERROR_TYPES[status] and body["message"] == body["error"]["message"]
    if message is not None:
        assert body["error"]["message"] == message
    assert (body["error"]["code"], body["error"]["param"]) == (code, param)
    return body


def cosine(a, b) -> float:
    return sum(x * y for x, y in zip(a, b)) / math.sqrt(sum(x * x for x in a) * sum(y * y for y in b))


def embed(http, auth, inputs, **extra):
    response = http.post("/embed", json={"inputs": inputs, **extra}, headers=auth)
    assert response.status_code == 200, response.text
    return response.json()


def test_health_and_info_need_no_credentials(http):
    assert http.get("/health").status_code == 200
    info = http.get("/info").json()
    assert info["model_id"] == MODEL and info["dimension"] == 384
    assert info["max_input_length"] == 256 and info["max_client_batch_size"] == 16


def test_embed_returns_unit_vectors_that_capture_meaning(http, auth):
    vectors = embed(http, auth, ["The cat sits on the mat.", "A kitten is resting on a rug.",
                                 "Quarterly revenue grew by five percent."], normalize=True, truncate=True)
    assert len(vectors) == 3 and all(len(vector) == 384 for vector in vectors)
    assert all(abs(math.sqrt(sum(x * x for x in vector)) - 1) < 1e-4 for vector in vectors)
    cat, kitten, revenue = vectors
    assert cosine(cat, kitten) > 0.5 > cosine(cat, revenue) + 0.3


def test_embed_accepts_a_single_string_and_raw_vectors(http, auth):
    (single,) = embed(http, auth, "The cat sits on the mat.")
    (listed,) = embed(http, auth, ["The cat sits on the mat."])
    assert single == listed
    (raw,) = embed(http, auth, "The cat sits on the mat.", normalize=False)
    norm = math.sqrt(sum(x * x for x in raw))
    assert abs(norm - 1) > 0.01 and cosine(raw, single) > 0.9999


def test_concurrent_requests_are_batched_without_mixing_results(http, auth):
    texts = [f"Sentence number {index} is about topic {'abcdefgh'[index]} and nothing else." * (index + 1)
             for index in range(8)]
    alone = [embed(http, auth, text)[0] for text in texts]
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        together = list(pool.map(lambda text: embed(http, auth, [text, "a shared second input"]), texts))
    for expected, (first, second) in zip(alone, together):
        assert cosine(expected, first) > 0.9999
        assert cosine(second, together[0][1]) > 0.9999


def test_embed_takes_an_api_key(http, client, account):
    key = client.post("/auth/api-keys", json={"name": "embed"},
                      headers={"Authorization": f"Bearer {account['access_token']}"}).json["key"]
    for headers in ({"X-API-Key": key}, {"Authorization": f"Bearer {key}"}):
        assert len(embed(http, headers, "hello")[0]) == 384


@pytest.mark.parametrize("path", ["/embed", "/v1/embeddings"])
def test_embedding_refuses_requests_without_valid_credentials(http, path):
    body = {"inputs": "hello", "input": "hello", "model": MODEL}
    assert_error(http.post(path, json=body), 401, "authentication required")
    assert_error(http.post(path, json=body, headers={"Authorization": "Bearer not-a-token"}), 401, "invalid token")
    assert_error(http.post(path, json=body, headers={"X-API-Key": "sk_live_" + "0" * 48}), 401, "invalid api key")
    # Identity headers from outside are never trusted.
    assert_error(http.post(path, json=body, headers={"X-User-ID": "1", "X-Auth-Method": "apikey"}), 401)


def test_caps_on_inputs_per_request_and_characters_per_input(http, auth):
    assert_error(http.post("/embed", json={"inputs": ["x"] * 17}, headers=auth), 413,
                 "too many inputs: 17; at most 16 per request", code="too_many_inputs", param="inputs")
    assert_error(http.post("/embed", json={"inputs": ["ok", "y" * 4001]}, headers=auth), 413,
                 "inputs[1] has 4001 characters; at most 4000 per input", code="input_too_long", param="inputs")
    assert_error(http.post("/v1/embeddings", json={"model": MODEL, "input": ["x"] * 17}, headers=auth), 413,
                 code="too_many_inputs", param="input")
    # Past the request body limit: 413 before anything is parsed.
    assert_error(http.post("/embed", content=b'{"inputs": "' + b"z" * 300_000 + b'"}', headers=auth), 413)


def test_token_limit_truncates_only_when_asked(http, auth):
    long_text = "word " * 600  # ~600 tokens, under the character cap
    assert_error(http.post("/embed", json={"inputs": long_text}, headers=auth), 413,
                 "inputs[0] is longer than the model's 256 tokens; shorten it or send truncate: true",
                 code="context_length_exceeded", param="inputs")
    assert len(embed(http, auth, long_text, truncate=True)[0]) == 384
    assert_error(http.post("/v1/embeddings", json={"model": MODEL, "input": long_text}, headers=auth), 400,
                 code="context_length_exceeded", param="input")


@pytest.mark.parametrize("body, param", [
    ({}, "inputs"),
    ({"inputs": []}, "inputs"),
    ({"inputs": [""]}, "inputs"),
    ({"inputs": 7}, "inputs"),
    ({"inputs": ["fine", 3]}, "inputs"),
    ({"inputs": [1, 2, 3]}, "inputs"),
    ({"inputs": "x", "normalize": "yes"}, "normalize"),
])
def test_bad_embed_bodies_are_400(http, auth, body, param):
    assert_error(http.post("/embed", json=body, headers=auth), 400, param=param)


def test_malformed_json_is_400(http, auth):
    assert_error(http.post("/embed", content=b"{nope", headers={**auth, "Content-Type": "application/json"}), 400,
                 "invalid JSON in request body")


def test_openai_shape_exactly(http, auth):
    response = http.post("/v1/embeddings", json={"model": MODEL, "input": ["first text", "second text"],
                                                 "encoding_format": "float"}, headers=auth)
    assert response.status_code == 200, response.text
    body = response.json()
    assert list(body) == ["object", "data", "model", "usage"] and body["object"] == "list"
    assert [list(item) for item in body["data"]] == [["object", "index", "embedding"]] * 2
    assert [(item["object"], item["index"]) for item in body["data"]] == [("embedding", 0), ("embedding", 1)]
    assert body["model"] == MODEL
    assert body["usage"]["prompt_tokens"] == body["usage"]["total_tokens"] == 8  # 2 x ([CLS] 2 words [SEP])
    assert body["data"][0]["embedding"] == embed(http, auth, "first text")[0]


def test_openai_sdk_embeddings_create(live_embeddings, account, http, auth):
    client = openai.OpenAI(base_url=f"{live_embeddings}/v1", api_key=account["access_token"], max_retries=0)
    # The SDK asks for base64 by default and decodes it itself.
    created = client.embeddings.create(model=MODEL, input=["The cat sits on the mat.", "Revenue grew."])
    assert [item.index for item in created.data] == [0, 1]
    assert all(len(item.embedding) == 384 for item in created.data)
    expected = embed(http, auth, ["The cat sits on the mat.", "Revenue grew."])
    for item, vector in zip(created.data, expected):
        assert max(abs(a - b) for a, b in zip(item.embedding, vector)) < 1e-6
    floats = client.embeddings.create(model="all-MiniLM-L6-v2", input="Revenue grew.", encoding_format="float")
    assert floats.model == MODEL and floats.usage.prompt_tokens == 5
    assert max(abs(a - b) for a, b in zip(floats.data[0].embedding, expected[1])) < 1e-6
    assert created.usage.total_tokens > 0

    with pytest.raises(openai.NotFoundError) as missing:
        client.embeddings.create(model="text-embedding-3-small", input="x")
    assert missing.value.code == "model_not_found"
    with pytest.raises(openai.BadRequestError, match="dimensions must be 384"):
        client.embeddings.create(model=MODEL, input="x", dimensions=1024)
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=f"{live_embeddings}/v1", api_key="wrong", max_retries=0).embeddings.create(
            model=MODEL, input="x")


def test_openai_base64_is_little_endian_float32(http, auth):
    response = http.post("/v1/embeddings", json={"model": MODEL, "input": "hello", "encoding_format": "base64"},
                         headers=auth)
    import struct

    raw = base64.b64decode(response.json()["data"][0]["embedding"])
    decoded = struct.unpack("<384f", raw)
    assert max(abs(a - b) for a, b in zip(decoded, embed(http, auth, "hello")[0])) < 1e-6


@pytest.mark.parametrize("body, status, param", [
    ({"input": "x"}, 400, "model"),
    ({"model": MODEL}, 400, "input"),
    ({"model": MODEL, "input": [[1, 2], [3]]}, 400, "input"),
    ({"model": MODEL, "input": "x", "encoding_format": "int8"}, 400, "encoding_format"),
    ({"model": MODEL, "input": "x", "dimensions": 0}, 400, "dimensions"),
    ({"model": "other", "input": "x"}, 404, "model"),
])
def test_bad_openai_bodies(http, auth, body, status, param):
    assert_error(http.post("/v1/embeddings", json=body, headers=auth), status, param=param,
                 code="model_not_found" if status == 404 else None)


def test_a_model_of_another_dimension_refuses_to_start(embeddings_env):
    from functions.embeddings.model import ModelMismatch
    from functions.embeddings.service import EmbeddingService
    from functions.embeddings.settings import EmbeddingsSettings
    from shared.settings import from_env

    settings = from_env(EmbeddingsSettings, environ={**embeddings_env, "EMBEDDING_DIMENSION": "1024"})
    with pytest.raises(ModelMismatch, match="produces 384-dimensional vectors but EMBEDDING_DIMENSION is 1024"):
        EmbeddingService(settings)
