"""Fitting a chat's messages into the model's context, as Jan does (§3): its estimator (about 4 characters a
token, CJK 1.5), the leading system messages and the latest turns kept, the oldest turns dropped."""
from __future__ import annotations

import math
import re

from shared.domain.conversations import text_of_content

# Jan's budget when the catalog does not say.
DEFAULT_CONTEXT_LENGTH = 220_000
_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff\uff00-\uffef]")


def estimate_tokens(text: str) -> int:
    cjk = len(_CJK.findall(text))
    return math.ceil((len(text) - cjk) / 4 + cjk / 1.5)


def _tokens(message: dict) -> int:
    total = estimate_tokens(text_of_content(message.get("content")))
    for call in message.get("tool_calls") or []:
        function = (call.get("function") or {}) if isinstance(call, dict) else {}
        total += estimate_tokens(str(function.get("name") or "") + str(function.get("arguments") or ""))
    return total


def output_reserve(body: dict, context_length: int) -> int:
    """Room left for the reply: what the request asks for, else a quarter of the context (at most 1024)."""
    for field in ("max_completion_tokens", "max_tokens"):
        value = body.get(field)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return min(value, context_length // 2)
    return min(1024, context_length // 4)


def fit_to_context(messages: list[dict], *, context_length: int, reserve: int) -> tuple[list[dict], bool]:
    """(messages that fit, whether any were dropped). The leading system messages and the last message are
    always kept; turns are kept newest first while they fit; a tool result never outlives its call."""
    budget = context_length - reserve
    if sum(_tokens(message) for message in messages) <= budget:
        return messages, False
    lead = 0
    while lead < len(messages) - 1 and messages[lead].get("role") in ("system", "developer"):
        lead += 1
    head, turns = messages[:lead], messages[lead:]
    used = sum(_tokens(message) for message in head) + _tokens(turns[-1])
    start = len(turns) - 1
    while start > 0 and used + _tokens(turns[start - 1]) <= budget:
        start -= 1
        used += _tokens(turns[start])
    while start < len(turns) - 1 and turns[start].get("role") == "tool":
        start += 1
    return head + turns[start:], True
