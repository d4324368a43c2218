"""shared/body.py: Jan's lenient first-JSON-value rule, strict JSON otherwise, storable strings, typed readers."""
from __future__ import annotations

import pytest
from flask import Flask

from shared.body import (
    UnstorableText,
    bool_field,
    int_field,
    json_object,
    object_field,
    parse_json_value,
    string_field,
)
from shared.errors import BadRequest

app = Flask(__name__)


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


# json_object --------------------------------------------------------------------------------------------------

def body_of(data, **kwargs):
    with app.test_request_context("/", method="POST", data=data, content_type="application/json"):
        return json_object(**kwargs)


def test_json_object_returns_the_object():
    assert body_of('{"a": [1, {"b": null}]} trailing') == {"a": [1, {"b": None}]}


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
        body_of(data)
    assert (caught.value.status, caught.value.message) == (400, message)


def test_optional_json_object_accepts_an_empty_body_only():
    assert body_of("", optional=True) == {}
    assert body_of(" ", optional=True) == {}
    with pytest.raises(BadRequest):
        body_of("[]", optional=True)


# Field readers ------------------------------------------------------------------------------------------------

def rejects(reader, body, name, message, **kwargs):
    with pytest.raises(BadRequest) as caught:
        reader(body, name, **kwargs)
    assert (caught.value.message, caught.value.param) == (message, name)


def test_string_field():
    assert string_field({"a": "  x  "}, "a") == "x"
    assert string_field({"a": "  x  "}, "a", strip=False) == "  x  "
    assert string_field({}, "a") is None
    assert string_field({"a": None}, "a") is None
    assert string_field({"a": ""}, "a") == ""
    assert string_field({"a": "x" * 5}, "a", max_length=5) == "xxxxx"
    rejects(string_field, {}, "a", "a is required", required=True)
    rejects(string_field, {"a": None}, "a", "a is required", required=True)
    rejects(string_field, {"a": 1}, "a", "a must be a string")
    rejects(string_field, {"a": ["x"]}, "a", "a must be a string")
    rejects(string_field, {"a": "  "}, "a", "a must not be empty", required=True)
    rejects(string_field, {"a": ""}, "a", "a must not be empty", allow_empty=False)
    rejects(string_field, {"a": "x" * 6}, "a", "a must be at most 5 characters", max_length=5)


def test_int_field():
    assert int_field({"n": 3}, "n") == 3
    assert int_field({"n": 3.0}, "n") == 3
    assert int_field({}, "n") is None
    assert int_field({"n": None}, "n") is None
    assert int_field({"n": 1}, "n", minimum=1, maximum=1) == 1
    rejects(int_field, {}, "n", "n is required", required=True)
    rejects(int_field, {"n": True}, "n", "n must be an integer")
    rejects(int_field, {"n": 2.5}, "n", "n must be an integer")
    rejects(int_field, {"n": "3"}, "n", "n must be an integer")
    rejects(int_field, {"n": 0}, "n", "n must be at least 1", minimum=1)
    rejects(int_field, {"n": 11}, "n", "n must be at most 10", maximum=10)


def test_bool_field():
    assert bool_field({"b": False}, "b") is False
    assert bool_field({}, "b") is None
    assert bool_field({}, "b", default=True) is True
    assert bool_field({"b": None}, "b", default=False) is False
    rejects(bool_field, {"b": "true"}, "b", "b must be a boolean")
    rejects(bool_field, {"b": 1}, "b", "b must be a boolean")


def test_object_field():
    assert object_field({"o": {"k": 1}}, "o") == {"k": 1}
    assert object_field({"o": {}}, "o") == {}
    assert object_field({}, "o") is None
    assert object_field({"o": None}, "o") is None
    rejects(object_field, {"o": []}, "o", "o must be an object")
    rejects(object_field, {"o": "x"}, "o", "o must be an object")
