"""shared.protocol: Jan's lenient first-JSON-value rule, strict JSON otherwise, storable strings, and models
that validate bodies with the one error body's messages and `param`."""
from __future__ import annotations

import subprocess
import sys
from typing import Annotated, Any, Literal

import pytest
from msgspec import Meta

from shared.errors import BadRequest
from shared.protocol import (
    UNSET,
    RequestModel,
    UnsetType,
    UnstorableText,
    decode,
    decode_json_object,
    parse_json_value,
    validate,
)


# parse_json_value -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("raw, expected", [
    ('{"title": "x"}', {"title": "x"}),
    ('{"title": "x"} }', {"title": "x"}),
    ('{"a": 1}{"b": 2}', {"a": 1}),
    ('  \n\t{"a": 1}  garbage', {"a": 1}),
    (b'{"a": "\xc3\xa9"}', {"a": "é"}),
    ("[1, 2] ]", [1, 2]),
    ('"text" trailing', "text"),
    ("12 34", 12),
    ('{"emoji": "\\ud83d\\ude00"}', {"emoji": "\U0001F600"}),
    ('{"escaped": "\\\\u0000"}', {"escaped": "\\u0000"}),
])
def test_first_json_value_is_decoded_and_the_rest_ignored(raw, expected):
    assert parse_json_value(raw) == expected


@pytest.mark.parametrize("raw", ["", "   ", '{"a": ', "{'a': 1}", "nope", '{"a": NaN}', '{"a": -Infinity}',
                                 "[Infinity]", "[" * 50_000 + "]" * 50_000, '{"a": "raw\ncontrol"}'])
def test_malformed_or_non_standard_json_is_a_value_error(raw):
    with pytest.raises(ValueError):
        parse_json_value(raw)


def test_invalid_utf8_is_a_decode_error():
    with pytest.raises(UnicodeDecodeError):
        parse_json_value(b'{"a": "\xff"}')


@pytest.mark.parametrize("raw", ['{"a": "x\\u0000y"}', '{"a\\u0000": 1}', '[[{"deep": ["\\u0000"]}]]'])
def test_nul_characters_anywhere_are_unstorable(raw):
    with pytest.raises(UnstorableText, match="NUL"):
        parse_json_value(raw)


@pytest.mark.parametrize("raw", ['{"a": "\\ud800"}', '{"a": "\\uDC00x"}', '{"\\udbff": 1}', '["\\ude00\\ud83d"]'])
def test_unpaired_surrogates_anywhere_are_unstorable(raw):
    with pytest.raises(UnstorableText, match="surrogate"):
        parse_json_value(raw)


def test_unstorable_text_after_the_first_value_is_ignored():
    assert parse_json_value('{"a": 1} "\\u0000"') == {"a": 1}


# decode_json_object --------------------------------------------------------------------------------------------

def test_json_object_returns_the_object():
    assert decode_json_object('{"a": [1, {"b": null}]} trailing') == {"a": [1, {"b": None}]}


@pytest.mark.parametrize("data, message", [
    ("", "request body must be a JSON object"),
    ("  \n", "request body must be a JSON object"),
    ("[]", "request body must be a JSON object"),
    ("null", "request body must be a JSON object"),
    ('"x"', "request body must be a JSON object"),
    ("{", "invalid JSON in request body"),
    (b"\xff", "invalid JSON in request body"),
    ('{"a": NaN}', "invalid JSON in request body"),
    ('{"a": "\\u0000"}', "strings in the request body must not contain NUL characters"),
    ('{"a": "\\ud800"}', "strings in the request body must be valid Unicode (no unpaired surrogates)"),
])
def test_json_object_rejects_with_400(data, message):
    with pytest.raises(BadRequest) as caught:
        decode_json_object(data)
    assert (caught.value.status, caught.value.message) == (400, message)


def test_optional_json_object_accepts_an_empty_body_only():
    assert decode_json_object(b"", optional=True) == {}
    assert decode_json_object(" ", optional=True) == {}
    with pytest.raises(BadRequest):
        decode_json_object("[]", optional=True)


# Models -----------------------------------------------------------------------------------------------------

class Part(RequestModel):
    kind: Literal["text", "image"]


class Sample(RequestModel):
    __trimmed__ = ("name", "note")

    name: Annotated[str, Meta(max_length=5)]
    note: str | None = None
    count: Annotated[int, Meta(ge=1, le=10)] | None = None
    flag: bool | None = None
    options: dict[str, Any] | None = None
    tags: Annotated[list[str], Meta(max_length=2, extra={"error": "tags must be a list of strings"})] | None = None
    parts: list[Annotated[Part, Meta(extra={"error": "each part must be an object"})]] | None = None
    mode: Annotated[Literal["a", "b"], Meta(extra={"required": "mode key is required"})] = "a"
    patched: int | UnsetType = UNSET
    cleared: int | None | UnsetType = UNSET


def rejects(body: dict, message: str, param: str):
    with pytest.raises(BadRequest) as caught:
        validate(body, Sample)
    assert (caught.value.status, caught.value.message, caught.value.param) == (400, message, param)


def test_a_valid_body_is_typed_and_keeps_the_raw_mapping():
    body = validate({"name": "  x  ", "count": 3.0, "extra": [1], "parts": [{"kind": "text"}]}, Sample)
    assert (body.name, body.count, body.parts[0].kind, body.mode) == ("x", 3, "text", "a")
    assert body.raw["extra"] == [1]
    assert body.sent() == {"name": "x", "note": None, "count": 3, "flag": None, "options": None, "tags": None,
                           "parts": body.parts, "mode": "a"}
    assert validate({"name": "x", "cleared": None}, Sample).sent()["cleared"] is None


def test_strings():
    rejects({}, "name is required", "name")
    rejects({"name": None}, "name is required", "name")
    rejects({"name": "   "}, "name must not be empty", "name")
    rejects({"name": 1}, "name must be a string", "name")
    rejects({"name": ["x"]}, "name must be a string", "name")
    rejects({"name": "x" * 6}, "name must be at most 5 characters", "name")
    assert validate({"name": "x", "note": "  "}, Sample).note == ""


def test_integers_accept_integral_floats_only():
    assert validate({"name": "x", "count": 10}, Sample).count == 10
    rejects({"name": "x", "count": True}, "count must be an integer", "count")
    rejects({"name": "x", "count": 2.5}, "count must be an integer", "count")
    rejects({"name": "x", "count": "3"}, "count must be an integer", "count")
    rejects({"name": "x", "count": 0}, "count must be at least 1", "count")
    rejects({"name": "x", "count": 11.0}, "count must be at most 10", "count")


def test_booleans_and_objects():
    assert validate({"name": "x", "flag": False}, Sample).flag is False
    rejects({"name": "x", "flag": "true"}, "flag must be a boolean", "flag")
    rejects({"name": "x", "flag": 1}, "flag must be a boolean", "flag")
    rejects({"name": "x", "options": []}, "options must be an object", "options")


def test_field_messages_name_the_field():
    rejects({"name": "x", "tags": "a"}, "tags must be a list of strings", "tags")
    rejects({"name": "x", "tags": ["a", 1]}, "tags must be a list of strings", "tags")
    rejects({"name": "x", "tags": ["a", "b", "c"]}, "tags may hold at most 2 entries", "tags")
    rejects({"name": "x", "parts": ["p"]}, "each part must be an object", "parts[0]")
    rejects({"name": "x", "parts": [{}]}, "parts[0].kind is required", "parts[0].kind")
    rejects({"name": "x", "parts": [{"kind": "x"}]}, "parts[0].kind must be one of: image, text", "parts[0].kind")
    rejects({"name": "x", "mode": None}, "mode must be one of: a, b", "mode")


def test_null_for_a_patch_field_that_cannot_be_cleared():
    rejects({"name": "x", "patched": None}, "patched must not be null", "patched")


def test_decode_applies_the_first_value_rule_then_the_model():
    assert decode('{"name": "a"} }', Sample).name == "a"
    with pytest.raises(BadRequest, match="request body must be a JSON object"):
        decode(b"", Sample)


def test_the_protocol_core_imports_without_flask():
    code = ("import sys, shared.protocol, shared.protocol.openapi, shared.errors, shared.outbound; "
            "print('flask' in sys.modules or 'werkzeug' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"
