"""Relaying a provider's SSE stream: lines pass through verbatim as they complete, while the assistant's reply
(content, reasoning, tool calls, finish reason, usage) is accumulated for persistence."""
from __future__ import annotations

import json
from dataclasses import dataclass, field


@dataclass
class Reply:
    """The assistant's answer as it was produced, streamed or not."""

    content: str = ""
    reasoning: str = ""
    tool_calls: dict[int, dict] = field(default_factory=dict)
    finish_reason: str | None = None
    usage: dict | None = None
    error: dict | None = None

    @classmethod
    def from_completion(cls, body: dict) -> "Reply":
        reply = cls(usage=body.get("usage") if isinstance(body.get("usage"), dict) else None)
        choices = body.get("choices") or []
        if choices and isinstance(choices[0], dict):
            message = choices[0].get("message") or {}
            reply.content = message.get("content") or ""
            reply.reasoning = message.get("reasoning_content") or message.get("reasoning") or ""
            reply.finish_reason = choices[0].get("finish_reason")
            for index, call in enumerate(message.get("tool_calls") or []):
                function = call.get("function") or {}
                reply.tool_calls[index] = {"id": call.get("id"), "name": function.get("name"),
                                           "arguments": function.get("arguments") or ""}
        return reply

    def add_chunk(self, chunk: dict) -> None:
        if isinstance(chunk.get("usage"), dict):
            self.usage = chunk["usage"]
        if isinstance(chunk.get("error"), dict):
            self.error = chunk["error"]
        for choice in chunk.get("choices") or []:
            if not isinstance(choice, dict) or choice.get("index", 0) != 0:
                continue  # persistence keeps the first choice, as Jan does
            delta = choice.get("delta") or {}
            self.content += delta.get("content") or ""
            self.reasoning += delta.get("reasoning_content") or delta.get("reasoning") or ""
            for call in delta.get("tool_calls") or []:
                slot = self.tool_calls.setdefault(call.get("index", 0), {"id": None, "name": None, "arguments": ""})
                function = call.get("function") or {}
                slot["id"] = call.get("id") or slot["id"]
                slot["name"] = function.get("name") or slot["name"]
                slot["arguments"] += function.get("arguments") or ""
            if choice.get("finish_reason"):
                self.finish_reason = choice["finish_reason"]


class SseRelay:
    """Feed raw bytes from the provider; get back the bytes to send to the client."""

    def __init__(self, reply: Reply, *, client_wants_usage: bool):
        self.reply = reply
        self.client_wants_usage = client_wants_usage
        self.done = False
        self._buffer = b""
        self._drop_blank = False

    def feed(self, data: bytes) -> bytes:
        self._buffer += data
        if b"\n" not in self._buffer:
            return b""
        complete, _, self._buffer = self._buffer.rpartition(b"\n")
        out = []
        for line in complete.split(b"\n"):
            if self._keep(line):
                out.append(line + b"\n")
        return b"".join(out)

    def _keep(self, line: bytes) -> bool:
        stripped = line.strip()
        if not stripped:
            if self._drop_blank:
                self._drop_blank = False
                return False
            return True
        self._drop_blank = False
        if not stripped.startswith(b"data:"):
            return True
        payload = stripped[5:].strip()
        if payload == b"[DONE]":
            self.done = True
            return True
        try:
            chunk = json.loads(payload)
        except ValueError:
            return True
        if not isinstance(chunk, dict):
            return True
        self.reply.add_chunk(chunk)
        # Usage is always requested upstream (for accounting); the usage-only chunk reaches the client only
        # when it asked for it.
        if not self.client_wants_usage and chunk.get("usage") and not chunk.get("choices"):
            self._drop_blank = True
            return False
        return True
