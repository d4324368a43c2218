"""The public snapshot of a share: Jan's snapshot shape, built only from what is safe to publish.

What goes in (an allow-list; anything else is left out):
- user and assistant messages of the shared branch: text, output text (with URL and file citations) and stored
  reasoning; images and file references only with `include_images`;
- tool calls as the tool's name only (`tool_calls` with no `arguments`): arguments and tool results carry
  secrets and private data fetched on the user's behalf, so they are never published (Jan copies both);
- the conversation's title (or the share's), and `model_name` / `assistant_name` (metadata `model` and
  `assistant`, else the last assistant item's model) — never the rest of the metadata.

Every published string is then scrubbed: e-mail addresses, API keys (`sk_…`, `sk-…`), our refresh tokens,
JWTs, `Bearer`/`Basic` credentials and common cloud tokens become `[redacted]`, and so does the owner's public
user id. No user id, conversation id or database id is part of the snapshot.
"""
from __future__ import annotations

import datetime as dt
import re
from typing import Callable

UNTITLED = "Untitled Conversation"
FALLBACK_TITLE_LENGTH = 50
TOOL_CALL_TYPES = {"function_call", "mcp_call", "custom_tool_call"}
REDACTED = "[redacted]"

# Every pattern starts only where a run of its characters starts (a negative look-behind) and bounds what it
# may re-scan, so scrubbing is linear in the text: a snapshot may be megabytes of adversarial input.
_TOKEN = r"A-Za-z0-9_\-"
# (cheap substring test on the lower-cased text, pattern): a pattern only runs where its marker occurs.
_SECRETS = [
    # e-mail addresses
    (("@",), re.compile(r"(?<![A-Za-z0-9._%+\-])[A-Za-z0-9._%+\-]{1,64}@[A-Za-z0-9\-]{1,63}(?:\.[A-Za-z0-9\-]{1,63})*"
                        r"\.[A-Za-z]{2,24}(?![A-Za-z])")),
    # API keys: ours (sk_live_…), OpenAI's (sk-…), Stripe-like (rk_, pk_); a key has digits
    (("sk_", "sk-", "rk_", "rk-", "pk_", "pk-"),
     re.compile(rf"(?<![{_TOKEN}])(?:sk|rk|pk)[_-](?=[{_TOKEN}]{{0,64}}[0-9])[{_TOKEN}]{{16,}}")),
    (("rt_",), re.compile(rf"(?<![{_TOKEN}])rt_[{_TOKEN}]{{20,}}")),  # our refresh tokens
    (("eyj",), re.compile(rf"(?<![{_TOKEN}])eyJ[{_TOKEN}]{{8,}}\.[{_TOKEN}]{{8,}}\.[{_TOKEN}]*")),  # JWTs
    (("gh", "github_pat_", "xox", "akia", "asia", "aiza", "glpat-"),
     re.compile(rf"(?<![{_TOKEN}])(?:gh[opusr]_|github_pat_|xox[abprs]-|AKIA|ASIA|AIza|glpat-)[{_TOKEN}]{{10,}}")),
]
_CREDENTIAL = re.compile(r"(?i)(?<![A-Za-z])(bearer|basic)[ \t]{1,16}[A-Za-z0-9._~+/=\-]{8,}")


def make_redactor(owner_public_id: str | None) -> Callable[[str], str]:
    owner = re.compile(re.escape(owner_public_id), re.IGNORECASE) if owner_public_id else None

    def redact(value: str) -> str:
        lowered = value.lower()
        for markers, pattern in _SECRETS:
            if any(marker in lowered for marker in markers):
                value = pattern.sub(REDACTED, value)
        if "bearer" in lowered or "basic" in lowered:
            value = _CREDENTIAL.sub(lambda match: f"{match.group(1)} {REDACTED}", value)
        if owner is not None and owner_public_id.lower() in lowered:
            value = owner.sub(REDACTED, value)
        return value

    return redact


def _unix(value: dt.datetime | None) -> int | None:
    return int(value.timestamp()) if value else None


def _text(part: dict) -> str | None:
    value = part.get("text")
    if isinstance(value, dict):
        value = value.get("text")
    if not isinstance(value, str):
        value = part.get(part.get("type", ""))
    return value if isinstance(value, str) and value else None


def _annotations(part: dict, redact) -> list[dict]:
    result = []
    for annotation in part.get("annotations") or []:
        if not isinstance(annotation, dict) or annotation.get("type") not in ("url_citation", "file_citation"):
            continue
        kept = {"type": annotation["type"]}
        for key in ("text", "title", "url", "file_id"):
            if isinstance(annotation.get(key), str) and annotation[key]:
                kept[key] = redact(annotation[key])
        for key in ("start_index", "end_index"):
            if isinstance(annotation.get(key), int) and not isinstance(annotation.get(key), bool):
                kept[key] = annotation[key]
        result.append(kept)
    return result


def _image_url(part: dict) -> str | None:
    for value in (part.get("image_url"), part.get("url"), part.get("image")):
        if isinstance(value, dict):
            value = value.get("url")
        if isinstance(value, str) and value:
            return value
    return None


def snapshot_content(part, *, include_images: bool, redact) -> dict | None:
    """One stored content part in Jan's snapshot form, or None when it is not published."""
    if not isinstance(part, dict):
        return None
    kind = part.get("type")
    if kind in ("input_text", "text", "reasoning_text", "thinking"):
        text = _text(part)
        return {"type": kind, kind: redact(text)} if text else None
    if kind == "output_text":
        text = _text(part)
        if not text:
            return None
        content = {"type": "output_text", "output_text": redact(text)}
        annotations = _annotations(part, redact)
        if annotations:
            content["annotations"] = annotations
        return content
    if kind in ("input_image", "image", "image_url") and include_images:
        url = _image_url(part)
        if not url:
            return None
        image = {"url": url if url.startswith("data:") else redact(url)}
        detail = part.get("detail")
        if detail is None and isinstance(part.get("image"), dict):
            detail = part["image"].get("detail")
        if isinstance(detail, str) and detail in ("low", "high", "auto"):
            image["detail"] = detail
        return {"type": "image", "image": image}
    if kind in ("input_file", "file") and include_images:
        source = part.get("file") if isinstance(part.get("file"), dict) else part
        file_id = source.get("file_id")
        if not isinstance(file_id, str) or not file_id:
            return None
        ref = {"file_id": file_id}
        for key in ("mime_type", "name"):
            if isinstance(source.get(key), str):
                ref[key] = redact(source[key])
        return {"type": "file", "file_ref": ref}
    if kind == "tool_calls":  # Jan's assistant block: names only
        calls = [_tool_call(call.get("id"), (call.get("function") or {}).get("name"), redact)
                 for call in part.get("tool_calls") or [] if isinstance(call, dict)
                 and isinstance(call.get("function"), dict)]
        calls = [call for call in calls if call]
        return {"type": "tool_calls", "tool_calls": calls} if calls else None
    return None  # tool results, MCP output, audio, code, refusals, anything unknown


def _tool_call(call_id, name, redact) -> dict | None:
    if not isinstance(name, str) or not name:
        return None
    return {"id": call_id if isinstance(call_id, str) else "", "type": "function", "function": {"name": redact(name)}}


def snapshot_item(item, *, include_images: bool, redact) -> dict | None:
    """One stored item in Jan's snapshot form, or None when nothing of it is published."""
    if item.type == "message":
        if item.role not in ("user", "assistant"):
            return None  # system and developer messages are the owner's private instructions
        content = [c for c in (snapshot_content(part, include_images=include_images, redact=redact)
                               for part in item.content or []) if c]
    elif item.type in TOOL_CALL_TYPES:
        call = _tool_call(item.call_id, item.name, redact)
        content = [{"type": "tool_calls", "tool_calls": [call]}] if call else []
    else:
        return None  # tool outputs and other item types
    if not content:
        return None
    return {"id": item.public_id, "type": item.type, "role": item.role or "assistant", "content": content,
            "created_at": _unix(item.created_at)}


def first_user_text(items) -> str | None:
    for item in items:
        if item.type == "message" and item.role == "user":
            for part in item.content or []:
                if isinstance(part, dict) and part.get("type") in ("input_text", "text"):
                    text = _text(part)
                    if text and text.strip():
                        return text.strip()
    return None


def share_title(requested: str | None, conversation_title: str | None, items) -> str:
    """The request's title, else the conversation's, else the first user message (50 characters), as Jan."""
    if requested:
        return requested
    if conversation_title:
        return conversation_title
    text = first_user_text(items)
    if text:
        return text[:FALLBACK_TITLE_LENGTH] + "..." if len(text) > FALLBACK_TITLE_LENGTH else text
    return UNTITLED


def model_name(metadata: dict | None, items) -> str | None:
    value = (metadata or {}).get("model")
    if isinstance(value, str) and value:
        return value
    for item in reversed(items):
        if item.type == "message" and item.role == "assistant" and item.model:
            return item.model
    return None


def build_snapshot(conversation, items, *, title: str, include_images: bool, redact) -> dict:
    snapshot = {"title": redact(title)}
    name = model_name(conversation.metadata, items)
    if name:
        snapshot["model_name"] = redact(name)
    assistant = (conversation.metadata or {}).get("assistant")
    if isinstance(assistant, str) and assistant:
        snapshot["assistant_name"] = redact(assistant)
    snapshot["created_at"] = _unix(conversation.created_at)
    snapshot["items"] = [entry for entry in (snapshot_item(item, include_images=include_images, redact=redact)
                                             for item in items) if entry]
    return snapshot
