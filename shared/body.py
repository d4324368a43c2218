"""Request bodies: lenient JSON decoding (Jan's first-value rule) and small typed field readers.

Jan's Gin binding decodes the first JSON value and ignores trailing bytes; Jan's clients depend on it, so we
decode the same way. Size limits are enforced earlier by Flask's MAX_CONTENT_LENGTH (413).

Strict where JSON is strict: `NaN`/`Infinity` are not JSON, and nesting deep enough to exhaust the parser is
malformed input. Strings must be storable: PostgreSQL text and jsonb hold neither NUL characters nor unpaired
surrogates (`"\\ud800"`), so a body carrying one is a 400 here rather than a database error later.
"""
from __future__ import annotations

import json
import re
import typing

from flask import request

from shared.errors import BadRequest


def _reject_constant(name: str):
    raise ValueError(f"{name} is not valid JSON")


_decoder = json.JSONDecoder(parse_constant=_reject_constant)
# Only bodies with one of these escapes can decode to an unstorable string (raw control characters are
# already rejected by the strict decoder), so most bodies are never walked.
_SUSPECT_ESCAPE = re.compile(r"\\u(?:0000|[dD][89a-fA-F])")
_MISSING = object()


class UnstorableText(ValueError):
    """Valid JSON whose strings PostgreSQL cannot store."""


def parse_json_value(raw: bytes | str) -> typing.Any:
    """The first JSON value of `raw`; ValueError when there is none, UnstorableText for NUL or lone surrogates."""
    text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
    text = text.lstrip()
    if not text:
        raise ValueError("empty body")
    try:
        value, end = _decoder.raw_decode(text)
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None
    if _SUSPECT_ESCAPE.search(text, 0, end):
        _check_storable(value)
    return value


def _check_storable(value: typing.Any) -> None:
    pending = [value]
    while pending:
        current = pending.pop()
        if isinstance(current, dict):
            pending.extend(current.keys())
            pending.extend(current.values())
        elif isinstance(current, list):
            pending.extend(current)
        elif isinstance(current, str):
            if "\x00" in current:
                raise UnstorableText("strings in the request body must not contain NUL characters")
            try:
                current.encode("utf-8")
            except UnicodeEncodeError:
                raise UnstorableText("strings in the request body must be valid Unicode "
                                     "(no unpaired surrogates)") from None


def json_object(*, optional: bool = False) -> dict:
    """The request body as a JSON object; 400 for malformed JSON or a non-object."""
    raw = request.get_data(cache=True)
    if not raw.strip():
        if optional:
            return {}
        raise BadRequest("request body must be a JSON object")
    try:
        value = parse_json_value(raw)
    except UnstorableText as exc:
        raise BadRequest(str(exc)) from None
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


def bool_field(body: dict, name: str, *, default: bool | None = None, required: bool = False) -> bool | None:
    value = body.get(name, _MISSING)
    if value is _MISSING or value is None:
        if required:
            raise BadRequest(f"{name} is required", param=name)
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
