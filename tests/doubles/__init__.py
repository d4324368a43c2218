"""Test doubles: stand-ins for external services that speak their real wire protocol."""

from .openai_upstream import (
    Behavior,
    RecordedRequest,
    ScriptedUpstream,
    error,
    hang,
    malformed,
    openai_error_body,
    reply,
    slow_first_token,
    stream,
    stream_then_fail,
    tool_call_stream,
)

__all__ = [
    "Behavior",
    "RecordedRequest",
    "ScriptedUpstream",
    "error",
    "hang",
    "malformed",
    "openai_error_body",
    "reply",
    "slow_first_token",
    "stream",
    "stream_then_fail",
    "tool_call_stream",
]
