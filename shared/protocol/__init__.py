"""One protocol layer: request and response models (msgspec Structs) that validate bodies and describe each
function's OpenAPI document. Framework-free: the Flask adapter is shared.protocol.flask; an ASGI function
decodes with `decode` and builds its document with shared.protocol.openapi the same way.

Bodies follow Jan's first-JSON-value rule (Gin decodes the first value and ignores trailing bytes; Jan's clients
depend on it). Strict where JSON is strict: `NaN`/`Infinity` are not JSON, nesting deep enough to exhaust the
parser is malformed input, and strings must be storable (PostgreSQL holds neither NUL characters nor unpaired
surrogates), so such a body is a 400 here rather than a database error later.

Types are checked strictly (`"3"` is not an integer, `1` is not a boolean) with one leniency Jan's clients rely
on: a float with an integral value (`3.0`) is accepted where an integer is expected. A failed check is the one
error body (400 invalid_request_error) with `param` naming the offending field; a field may carry its own
message with `Annotated[T, Meta(extra={"error": "...", "required": "..."})]`: `error` for a wrong type or value
anywhere inside the field up to the next struct's fields (and `param` then names the field), `required` for a missing one. JSON null counts as
missing for a required field and is "must not be null" for a field that defaults to UNSET (PATCH bodies: UNSET
means "not sent", None means "clear"). Fields named in `__trimmed__` are stripped of surrounding whitespace, and
a required one that is then empty is a 400. Cross-field rules go in a model's `__post_init__` (call super's
first), raising BadRequest.
"""
from __future__ import annotations

import json
import re
import typing

import msgspec
import msgspec.inspect
import msgspec.structs

from shared.errors import BadRequest

__all__ = [
    "RequestModel",
    "ResponseModel",
    "UNSET",
    "UnsetType",
    "UnstorableText",
    "decode",
    "decode_json_object",
    "parse_json_value",
    "validate",
]

UNSET = msgspec.UNSET
UnsetType = msgspec.UnsetType

T = typing.TypeVar("T", bound="RequestModel")


class RequestModel(msgspec.Struct, kw_only=True, dict=True):
    """A request body. Unknown fields are ignored (Jan's clients send extras); `raw` keeps the body as sent,
    for handlers that pass fields through (the chat relay forwards what it does not name)."""

    __trimmed__: typing.ClassVar[tuple[str, ...]] = ()

    def __post_init__(self):
        for name in self.__trimmed__:
            value = getattr(self, name)
            if isinstance(value, str):
                value = value.strip()
                setattr(self, name, value)
                if not value and name in _required_fields(type(self)):
                    raise BadRequest(f"{name} must not be empty", param=name)

    @property
    def raw(self) -> dict:
        return self.__dict__.get("_raw", {})

    def sent(self) -> dict:
        """The fields the client sent (for PATCH: those left UNSET were absent)."""
        return {name: value for name in self.__struct_fields__
                if (value := getattr(self, name)) is not UNSET}


def _required_fields(model: type) -> frozenset[str]:
    cached = model.__dict__.get("_jan_required")
    if cached is None:
        cached = frozenset(f.name for f in msgspec.structs.fields(model) if f.required)
        setattr(model, "_jan_required", cached)
    return cached


class ResponseModel(msgspec.Struct, kw_only=True):
    """A response body, declared on a route for its OpenAPI document."""


# JSON ---------------------------------------------------------------------------------------------------------

class UnstorableText(ValueError):
    """Valid JSON whose strings PostgreSQL cannot store."""


def _reject_constant(name: str):
    raise ValueError(f"{name} is not valid JSON")


_decoder = json.JSONDecoder(parse_constant=_reject_constant)
# Only bodies with one of these escapes can decode to an unstorable string (raw control characters are
# already rejected by the strict decoder), so most bodies are never walked.
_SUSPECT_ESCAPE = re.compile(r"\\u(?:0000|[dD][89a-fA-F])")


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


def decode_json_object(raw: bytes | str, *, optional: bool = False) -> dict:
    """The body as a JSON object; 400 for malformed JSON or a non-object. An empty body is `{}` when optional."""
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


def decode(raw: bytes | str, model: type[T], *, optional: bool = False) -> T:
    """Decode and validate a request body into `model` (400 in the one error body on any failure)."""
    return validate(decode_json_object(raw, optional=optional), model)


def validate(value: dict, model: type[T]) -> T:
    """Validate a decoded JSON object against `model`."""
    for _ in range(64):  # each retry fixes one integral float; a body has few integer fields
        try:
            instance = msgspec.convert(value, model, strict=True)
        except msgspec.ValidationError as exc:
            message, path = _split(str(exc))
            if _INTEGRAL_FLOAT.match(message) and _make_integer(value, path):
                continue
            raise _bad_request(model, message, path) from None
        instance.__dict__["_raw"] = value
        return instance
    raise BadRequest("too many fields in the request body")


# Errors -------------------------------------------------------------------------------------------------------

_LOCATION = re.compile(r"^(?P<message>.*?)(?: - at `\$(?P<path>[^`]*)`)?$", re.S)
_SEGMENT = re.compile(r"\.([A-Za-z_][A-Za-z0-9_]*)|\[(\d+)\]")
_INTEGRAL_FLOAT = re.compile(r"^Expected `int[^`]*`, got `float`$")
_EXPECTED = re.compile(r"^Expected `(?P<types>[^`]+)`, got `[^`]+`$")
_BOUND = re.compile(r"^Expected `(?P<type>[a-z]+)`(?P<length> of length)? (?P<op>>=|<=|>|<) (?P<limit>-?[\d.]+)$")
_MISSING = re.compile(r"^Object missing required field `(?P<field>[^`]+)`$")
_NOUNS = {"str": "a string", "int": "an integer", "float": "a number", "bool": "a boolean", "object": "an object",
          "array": "a list"}


def _split(text: str) -> tuple[str, list[str | int]]:
    match = _LOCATION.match(text)
    path: list[str | int] = []
    for name, index in _SEGMENT.findall(match.group("path") or ""):
        path.append(name if name else int(index))
    return match.group("message"), path


def _param(path: list[str | int]) -> str:
    text = ""
    for segment in path:
        text += f"[{segment}]" if isinstance(segment, int) else (f".{segment}" if text else segment)
    return text


def _make_integer(value: typing.Any, path: list[str | int]) -> bool:
    """Replace the integral float at `path` with its int; False when it is not one."""
    parent, key = None, None
    node = value
    try:
        for segment in path:
            parent, key, node = node, segment, node[segment]
    except (KeyError, IndexError, TypeError):
        return False
    if parent is None or isinstance(node, bool) or not isinstance(node, float) or not node.is_integer():
        return False
    parent[key] = int(node)
    return True


def _unwrap(node):
    """(inner type, extra) of a type, looking through Metadata wrappers."""
    extra: dict = {}
    while isinstance(node, msgspec.inspect.Metadata):
        extra = {**(node.extra or {}), **extra}
        node = node.type
    return node, extra


def _extra(node) -> dict:
    """A field's messages, whether on its type or on a member of its union (`Annotated[...] | None`)."""
    node, extra = _unwrap(node)
    if isinstance(node, msgspec.inspect.UnionType):
        for member in node.types:
            extra = {**_unwrap(member)[1], **extra}
    return extra


def _members(node) -> list:
    node, _ = _unwrap(node)
    if isinstance(node, msgspec.inspect.UnionType):
        return [_unwrap(member)[0] for member in node.types]
    return [node]


def _walk(model: type, path: list[str | int]):
    """Follow `path` through the model's types: (node at the end, the struct field it is if any, nearest field
    override as (extra, depth))."""
    node = msgspec.inspect.type_info(model)
    override = None
    field = None
    for depth, segment in enumerate(path):
        step = None
        field = None
        for member in _members(node):
            if isinstance(segment, str) and isinstance(member, msgspec.inspect.StructType):
                field = next((f for f in member.fields if f.encode_name == segment), None)
                step = field.type if field else None
            elif isinstance(segment, int) and isinstance(member, (msgspec.inspect.ListType,
                                                                  msgspec.inspect.SetType,
                                                                  msgspec.inspect.VarTupleType)):
                step = member.item_type
            if step is not None:
                break
        if step is None:
            return None, None, override
        if field is not None:
            override = None  # a message names its own field, not the fields of a struct inside it
        extra = _extra(step)
        if "error" in extra or "required" in extra:
            override = (extra, depth + 1)
        node = step
    return node, field, override


def _bad_request(model: type, message: str, path: list[str | int]) -> BadRequest:
    missing = _MISSING.match(message)
    if missing:
        path = [*path, missing.group("field")]
    node, field, override = _walk(model, path)
    param = _param(path)
    extra, depth = override if override else ({}, 0)
    expected = _EXPECTED.match(message)
    if missing or (expected and message.endswith("got `null`") and field is not None):
        if missing or field.required:
            if depth == len(path) and (extra.get("required") or extra.get("error")):
                return BadRequest(extra.get("required") or extra["error"], param=param)
            return BadRequest(f"{param} is required", param=param)
        # a field defaulting to UNSET shows as one without a default
        if field.default is msgspec.inspect.NODEFAULT and field.default_factory is msgspec.inspect.NODEFAULT:
            return BadRequest(f"{param} must not be null", param=param)
    bound = _BOUND.match(message)
    if bound:
        return BadRequest(_bound_message(param, bound), param=param)
    if extra.get("error"):
        return BadRequest(extra["error"], param=_param(path[:depth]))
    choices = [m for m in _members(node) if isinstance(m, msgspec.inspect.LiteralType)]
    if choices and (expected or message.startswith("Invalid enum value")):
        values = sorted(str(v) for m in choices for v in m.values)
        return BadRequest(f"{param} must be one of: {', '.join(values)}", param=param)
    if expected:
        nouns = [_NOUNS.get(name, name) for name in expected.group("types").split(" | ") if name != "null"]
        return BadRequest(f"{param} must be {' or '.join(nouns)}", param=param)
    return BadRequest(f"{param} is not valid", param=param)


def _bound_message(param: str, bound: re.Match) -> str:
    limit, op, kind = bound.group("limit"), bound.group("op"), bound.group("type")
    if bound.group("length"):
        if kind == "str":
            if op == ">=" and limit == "1":
                return f"{param} must not be empty"
            return f"{param} must be {'at least' if op == '>=' else 'at most'} {limit} characters"
        return f"{param} may hold {'at least' if op == '>=' else 'at most'} {limit} entries"
    words = {">=": "at least", "<=": "at most", ">": "greater than", "<": "less than"}
    return f"{param} must be {words[op]} {limit}"
