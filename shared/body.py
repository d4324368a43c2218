"""Request bodies: lenient JSON decoding (Jan's first-value rule) and small typed field readers.

Jan's Gin binding decodes the first JSON value and ignores trailing bytes; Jan's clients depend on it, so we
decode the same way. Size limits are enforced earlier by Flask's MAX_CONTENT_LENGTH (413).
"""
from __future__ import annotations

import json
import typing

from flask import request

from shared.errors import BadRequest

_decoder = json.JSONDecoder()
_MISSING = object()


def parse_json_value(raw: bytes | str) -> typing.Any:
    text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
    text = text.lstrip()
    if not text:
        raise ValueError("empty body")
    value, _ = _decoder.raw_decode(text)
    return value


def json_object(*, optional: bool = False) -> dict:
    """The request body as a JSON object; 400 for malformed JSON or a non-object."""
    raw = request.get_data(cache=True)
    if not raw.strip():
        if optional:
            return {}
        raise BadRequest("request body must be a JSON object")
    try:
        value = parse_json_value(raw)
    except (ValueError, UnicodeDecodeError):
        raise BadRequest("invalid JSON in request body") from None
    if not isinstance(value, dict):
        raise BadRequest("request body must be a JSON object")
    return value


def string_field(body: dict, name: str, *, required: bool = False, max_length: int | None = None,
                 strip: bool = True, allow_empty: bool = True) -> str | None:
    value = body.get(name, _MISSING)
    if value is _MISSING or value is None:
        if required:
            raise BadRequest(f"{name} is required", param=name)
        return None
    if not isinstance(value, str):
        raise BadRequest(f"{name} must be a string", param=name)
    if strip:
        value = value.strip()
    if not value and (required or not allow_empty):
        raise BadRequest(f"{name} must not be empty", param=name)
    if max_length is not None and len(value) > max_length:
        raise BadRequest(f"{name} must be at most {max_length} characters", param=name)
    return value


def int_field(body: dict, name: str, *, required: bool = False, minimum: int | None = None,
              maximum: int | None = None) -> int | None:
    value = body.get(name, _MISSING)
    if value is _MISSING or value is None:
        if required:
            raise BadRequest(f"{name} is required", param=name)
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        else:
            raise BadRequest(f"{name} must be an integer", param=name)
    if minimum is not None and value < minimum:
        raise BadRequest(f"{name} must be at least {minimum}", param=name)
    if maximum is not None and value > maximum:
        raise BadRequest(f"{name} must be at most {maximum}", param=name)
    return value


def bool_field(body: dict, name: str, *, default: bool | None = None) -> bool | None:
    value = body.get(name, _MISSING)
    if value is _MISSING or value is None:
        return default
    if not isinstance(value, bool):
        raise BadRequest(f"{name} must be a boolean", param=name)
    return value


def object_field(body: dict, name: str) -> dict | None:
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, dict):
        raise BadRequest(f"{name} must be an object", param=name)
    return value
