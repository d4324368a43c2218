"""Validating conversation input: titles, metadata, branch names and items (OpenAI's and Jan's forms), with
Jan's limits. Everything here raises BadRequest (400) before anything is stored."""
from __future__ import annotations

import json
import re
from dataclasses import dataclass

from shared.errors import BadRequest
from shared.domain.conversations.content import normalise_content

MAX_ITEMS_PER_REQUEST = 20
MAX_METADATA_KEYS = 16
MAX_METADATA_KEY_BYTES = 64
MAX_METADATA_VALUE_BYTES = 512
MAX_TITLE_LENGTH = 256
MAX_REFERRER_LENGTH = 64
MAX_CALL_ID_LENGTH = 128
MAX_NAME_LENGTH = 255
MAX_CONTENT_PARTS = 100
MAX_TEXT_LENGTH = 100_000
MAX_TOOL_CALLS = 16
MAX_BRANCH_DESCRIPTION_LENGTH = 1024

MAIN = "MAIN"
PLACEHOLDER_TITLE = "New Conversation"
_BRANCH_NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")

ITEM_STATUSES = {"completed", "incomplete", "in_progress", "failed", "cancelled"}
# Statuses an MCP result write-back may set (Jan's full list).
WRITE_BACK_STATUSES = ITEM_STATUSES | {"searching", "generating", "calling", "streaming", "rate_limited"}
TERMINAL_STATUSES = {"completed", "incomplete", "failed", "cancelled"}


def clean_title(title: str | None) -> str | None:
    """A title the user set: trimmed, Jan's placeholder or blank means none, truncated (not rejected) at 256."""
    if title is None:
        return None
    title = title.strip()
    if not title or title == PLACEHOLDER_TITLE:
        return None
    return title[:MAX_TITLE_LENGTH].rstrip()


def validate_metadata(metadata) -> dict:
    if metadata is None:
        return {}
    if not isinstance(metadata, dict):
        raise BadRequest("metadata must be an object of string values", param="metadata")
    if len(metadata) > MAX_METADATA_KEYS:
        raise BadRequest(f"metadata may hold at most {MAX_METADATA_KEYS} keys", param="metadata")
    for key, value in metadata.items():
        if len(key.encode()) > MAX_METADATA_KEY_BYTES:
            raise BadRequest(f"metadata keys must be at most {MAX_METADATA_KEY_BYTES} bytes", param="metadata")
        if not isinstance(value, str) or len(value.encode()) > MAX_METADATA_VALUE_BYTES:
            raise BadRequest(f"metadata values must be strings of at most {MAX_METADATA_VALUE_BYTES} bytes",
                             param="metadata")
    return metadata


def branch_name(value, *, param: str = "branch") -> str:
    """A branch name from a path, query or body: `^[A-Za-z0-9_.-]{1,64}$`; `main` in any case means MAIN."""
    if not isinstance(value, str) or not _BRANCH_NAME.fullmatch(value):
        raise BadRequest(f"{param} is not a valid branch name (1 to 64 letters, digits, '_', '.' or '-')",
                         param=param)
    return MAIN if value.upper() == MAIN else value


@dataclass(frozen=True)
class NewItem:
    """An item to append, already validated."""

    type: str
    role: str | None = None
    content: list | None = None
    status: str = "completed"
    call_id: str | None = None
    name: str | None = None
    arguments: str | None = None
    output: str | None = None
    model: str | None = None
    usage: dict | None = None
    finish_reason: str | None = None
    error: str | None = None
    incomplete_details: dict | None = None


def _item_status(raw: dict) -> str:
    status = raw.get("status") or "completed"
    if not isinstance(status, str) or status not in ITEM_STATUSES:
        raise BadRequest("item status is not valid", param="items")
    return status


def check_content_limits(parts: list[dict], *, param: str = "content") -> list[dict]:
    """Jan's item limits: at most 100 content parts, 100 000 characters per text, 16 tool calls."""
    if len(parts) > MAX_CONTENT_PARTS:
        raise BadRequest(f"an item may hold at most {MAX_CONTENT_PARTS} content parts", param=param)
    tool_calls = 0
    for part in parts:
        for value in part.values():
            if isinstance(value, str) and len(value) > MAX_TEXT_LENGTH:
                raise BadRequest(f"content text must be at most {MAX_TEXT_LENGTH} characters", param=param)
        if isinstance(part.get("tool_calls"), list):
            tool_calls += len(part["tool_calls"])
    if tool_calls > MAX_TOOL_CALLS:
        raise BadRequest(f"an item may carry at most {MAX_TOOL_CALLS} tool calls", param=param)
    return parts


def parse_input_item(raw) -> NewItem:
    """An item from a request body, in OpenAI's form (message, function_call, function_call_output) or Jan's."""
    if not isinstance(raw, dict):
        raise BadRequest("each item must be an object", param="items")
    kind = raw.get("type") or "message"
    if kind == "message":
        role = raw.get("role")
        if role not in ("user", "assistant", "system", "developer"):
            raise BadRequest("item role must be user, assistant, system or developer", param="items")
        status = _item_status(raw)
        content = check_content_limits(normalise_content(raw.get("content"), role))
        return NewItem(type="message", role=role, content=content, status=status)
    if kind in ("function_call", "function_call_output"):
        call_id = raw.get("call_id")
        if not isinstance(call_id, str) or not call_id or len(call_id) > MAX_CALL_ID_LENGTH:
            raise BadRequest(f"{kind} items need a call_id of at most {MAX_CALL_ID_LENGTH} characters",
                             param="items")
        name = raw.get("name")
        if kind == "function_call" and not isinstance(name, str):
            raise BadRequest("function_call items need a name", param="items")
        if name is not None and (not isinstance(name, str) or len(name) > MAX_NAME_LENGTH):
            raise BadRequest(f"item name must be a string of at most {MAX_NAME_LENGTH} characters", param="items")
        arguments = raw.get("arguments")
        if arguments is not None and not isinstance(arguments, str):
            raise BadRequest("function_call arguments must be a JSON-encoded string", param="items")
        output = raw.get("output")
        if output is not None and not isinstance(output, str):
            output = json.dumps(output, ensure_ascii=False)
        for text in (arguments, output):
            if text is not None and len(text) > MAX_TEXT_LENGTH:
                raise BadRequest(f"content text must be at most {MAX_TEXT_LENGTH} characters", param="items")
        return NewItem(type=kind, call_id=call_id, name=name, arguments=arguments, output=output,
                       status=_item_status(raw))
    raise BadRequest(f"item type {kind!r} is not supported", param="items")


def parse_input_items(raw_items, *, required: bool = False) -> list[NewItem]:
    if raw_items is None:
        if required:
            raise BadRequest("items is required", param="items")
        return []
    if not isinstance(raw_items, list):
        raise BadRequest("items must be a list", param="items")
    if len(raw_items) > MAX_ITEMS_PER_REQUEST:
        raise BadRequest(f"at most {MAX_ITEMS_PER_REQUEST} items may be added at once", param="items")
    return [parse_input_item(item) for item in raw_items]
