"""Tool arguments checked against the tool's input schema: a wrong type or a missing required argument is a clear
tool error (an `isError` result), never a crash. Arguments the schema does not name are ignored, as in Jan
(callers pass tool_call_id, request_id, conversation_id, user_id through)."""
from __future__ import annotations

import math


class ToolFailure(Exception):
    """A tool could not do what was asked; its text is the `isError` result the caller sees."""


MAX_STRING = 4096
MAX_ITEMS = 50

_NAMES = {"string": "a string", "number": "a number", "boolean": "a boolean", "array": "an array of strings"}


def checked(schema: dict, arguments) -> dict:
    if not isinstance(arguments, dict):
        raise ToolFailure("arguments must be an object")
    properties = schema["properties"]
    for name in schema.get("required", ()):
        if arguments.get(name) in (None, ""):
            raise ToolFailure(f"required argument {name!r} is missing")
    values = {}
    for name, spec in properties.items():
        value = arguments.get(name)
        if value is None:
            continue
        kind = spec["type"]
        if kind == "string":
            ok = isinstance(value, str)
            if ok and len(value) > MAX_STRING:
                raise ToolFailure(f"argument {name!r} must be at most {MAX_STRING} characters")
        elif kind == "number":
            ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
        elif kind == "boolean":
            ok = isinstance(value, bool)
        else:
            ok = isinstance(value, list) and all(isinstance(item, str) and len(item) <= 255 for item in value)
            if ok and len(value) > MAX_ITEMS:
                raise ToolFailure(f"argument {name!r} must hold at most {MAX_ITEMS} items")
        if not ok:
            raise ToolFailure(f"argument {name!r} must be {_NAMES[kind]}")
        values[name] = value
    return values
