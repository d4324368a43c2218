"""Conversation item content: accepting OpenAI's and Jan's content-part forms, and turning stored items back
into chat messages for history prepend."""
from __future__ import annotations

import json

from shared.errors import BadRequest

_TEXT_TYPES = {"input_text", "output_text", "text", "reasoning_text", "refusal"}


def _text_of(part: dict) -> str | None:
    for key in ("text", part.get("type", ""), "input_text", "output_text"):
        value = part.get(key)
        if isinstance(value, str):
            return value
        if isinstance(value, dict) and isinstance(value.get("text"), str):
            return value["text"]
    return None


def normalise_content(content, role: str) -> list[dict]:
    """Stored form: OpenAI content parts (`input_text` for user/system/developer input, `output_text` for
    assistant output, `input_image` for images). Accepts a string, OpenAI parts, Jan's typed blocks, or chat
    `text`/`image_url` parts."""
    text_type = "output_text" if role == "assistant" else "input_text"
    if content is None:
        return []
    if isinstance(content, str):
        return [_text_part(text_type, content)]
    if not isinstance(content, list):
        raise BadRequest("content must be a string or a list of content parts", param="content")
    parts = []
    for part in content:
        if isinstance(part, str):
            parts.append(_text_part(text_type, part))
            continue
        if not isinstance(part, dict) or not isinstance(part.get("type"), str):
            raise BadRequest("each content part must be an object with a type", param="content")
        kind = part["type"]
        if kind in _TEXT_TYPES:
            text = _text_of(part)
            if text is None:
                raise BadRequest(f"content part of type {kind} needs text", param="content")
            stored_type = "output_text" if role == "assistant" and kind in ("text", "output_text") else (
                kind if kind in ("reasoning_text", "refusal") else text_type)
            parts.append(_text_part(stored_type, text))
        elif kind in ("image_url", "input_image", "image"):
            url = _image_url(part)
            if not isinstance(url, str):
                raise BadRequest("image content parts need a URL", param="content")
            parts.append({"type": "input_image", "image_url": url, "detail": part.get("detail", "auto")})
        else:
            parts.append(part)
    return parts


def _image_url(part: dict) -> str | None:
    """`image_url` as a string or `{url}` (chat), `url` (Jan's `image` block), or `image.url`."""
    for value in (part.get("image_url"), part.get("url"), part.get("image")):
        if isinstance(value, dict):
            value = value.get("url")
        if isinstance(value, str):
            return value
    return None


def _text_part(kind: str, text: str) -> dict:
    if kind == "output_text":
        return {"type": "output_text", "text": text, "annotations": []}
    return {"type": kind, "text": text}


def chat_content_from_message(content) -> str | list:
    """A chat message's content as the upstream expects it; Jan also accepts JSON-stringified part lists."""
    if isinstance(content, str) and content.startswith("[{"):
        try:
            decoded = json.loads(content)
        except ValueError:
            return content
        if isinstance(decoded, list):
            return decoded
    return content


def text_of_content(content) -> str:
    """Plain text of chat-message content (string or parts), for persistence and comparison."""
    content = chat_content_from_message(content)
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(_text_of(part) or "" for part in content if isinstance(part, dict)
                       and part.get("type") in _TEXT_TYPES)
    return ""


def item_to_messages(item) -> list[dict]:
    """One stored item as zero or more chat messages (history prepend)."""
    parts = item.content or []
    if item.type == "message":
        role = "system" if item.role == "developer" else item.role
        texts = [p.get("text", "") for p in parts if p.get("type") in ("input_text", "output_text", "text")]
        images = [p for p in parts if p.get("type") == "input_image"]
        if images and role == "user":
            content: str | list = ([{"type": "text", "text": t} for t in texts]
                                   + [{"type": "image_url", "image_url": {"url": p["image_url"]}} for p in images])
        else:
            content = "".join(texts)
        return [{"role": role, "content": content}]
    if item.type == "function_call":
        messages = [{"role": "assistant", "content": None, "tool_calls": [
            {"id": item.call_id, "type": "function",
             "function": {"name": item.name, "arguments": item.arguments or "{}"}}]}]
        if item.output is not None:  # a result written back by call id (MCP tools)
            messages.append({"role": "tool", "tool_call_id": item.call_id, "content": item.output})
        return messages
    if item.type == "function_call_output":
        return [{"role": "tool", "tool_call_id": item.call_id, "content": item.output or ""}]
    return []


def merge_tool_call_messages(messages: list[dict]) -> list[dict]:
    """Consecutive assistant tool-call messages (one per stored function_call item) become one message, and a
    preceding assistant text message absorbs them, as the model produced them."""
    merged: list[dict] = []
    for message in messages:
        previous = merged[-1] if merged else None
        if message.get("tool_calls") and previous is not None and previous["role"] == "assistant":
            previous.setdefault("tool_calls", []).extend(message["tool_calls"])
            continue
        merged.append(message)
    return merged
