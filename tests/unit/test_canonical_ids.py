"""Jan's canonical `<vendor>/<model>` model ids, derived from a provider's own model ids."""
from __future__ import annotations

import pytest

from shared.domain.models.providers import canonical_model_id


@pytest.mark.parametrize("upstream_id, vendor, expected", [
    ("test-model", "scripted", "scripted/test-model"),
    ("Llama3", "OpenAI", "openai/llama3"),
    ("Qwen2.5_7B Instruct", "vllm", "vllm/qwen2.5-7b-instruct"),
    ("  gpt-4o  ", "openai", "openai/gpt-4o"),
    ("model:q4@latest", "ollama", "ollama/model-q4-latest"),
    ("SmolLM2-135M-Instruct-Q8_0.gguf", "local", "local/smollm2-135m-instruct-q8-0.gguf"),
])
def test_vendor_is_prefixed_and_model_slugged(upstream_id, vendor, expected):
    assert canonical_model_id(upstream_id, vendor) == expected


@pytest.mark.parametrize("upstream_id, expected", [
    ("meta-llama/Llama-3.1-8B-Instruct", "meta-llama/llama-3.1-8b-instruct"),
    ("Qwen/Qwen2.5 Coder", "qwen/qwen2.5-coder"),
    ("org/sub/Model", "org/sub/model"),
])
def test_an_id_that_names_its_own_vendor_keeps_it(upstream_id, expected):
    assert canonical_model_id(upstream_id, "vllm") == expected


def test_leading_and_trailing_slashes_and_dashes_are_trimmed():
    assert canonical_model_id("/model/", "vllm") == "vllm/model"
    assert canonical_model_id("--model--", "vllm") == "vllm/model"


@pytest.mark.parametrize("vendor, expected", [
    ("", "unknown/m"),
    (None, "unknown/m"),
    ("My Vendor", "my-vendor/m"),
    ("a/b", "a-b/m"),
    ("Big_Co!", "big-co/m"),
])
def test_vendor_is_slugged_into_one_path_segment(vendor, expected):
    assert canonical_model_id("m", vendor) == expected


def test_canonical_ids_are_stable():
    once = canonical_model_id("Mixtral 8x7B_Instruct", "Mistral AI")
    assert once == "mistral-ai/mixtral-8x7b-instruct"
    vendor, model = once.split("/", 1)
    assert canonical_model_id(model, vendor) == once
