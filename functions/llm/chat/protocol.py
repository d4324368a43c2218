"""The chat completion request: OpenAI's body plus Jan's extensions, validated before anything is sent upstream."""
from __future__ import annotations

from dataclasses import dataclass

from shared.errors import BadRequest

# Jan's extensions: consumed here, never sent upstream.
JAN_FIELDS = ("conversation", "store", "store_reasoning", "deep_research", "enable_thinking", "image")

ROLES = {"system", "developer", "user", "assistant", "tool", "function"}

_NUMBER_FIELDS = ("temperature", "top_p", "frequency_penalty", "presence_penalty", "top_k", "repetition_penalty",
                  "min_p")
_INT_FIELDS = {"n": 1, "max_tokens": 1, "max_completion_tokens": 1, "seed": None, "top_logprobs": 0}
_BOOL_FIELDS = ("stream", "logprobs", "parallel_tool_calls", "store", "store_reasoning")
_OBJECT_FIELDS = ("response_format", "stream_options", "logit_bias", "metadata")


@dataclass(frozen=True)
class ChatRequest:
    body: dict  # everything to pass upstream except model/messages rewriting
    model: str
    messages: list[dict]
    stream: bool
    include_usage: bool  # whether the *client* asked for the usage chunk
    conversation_id: str | None
    store: bool
    store_reasoning: bool


def _fail(message: str, param: str):
    raise BadRequest(message, param=param)


def _check_types(body: dict) -> None:
    for name in _NUMBER_FIELDS:
        value = body.get(name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
            _fail(f"{name} must be a number", name)
    for name, minimum in _INT_FIELDS.items():
        value = body.get(name)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int):
            _fail(f"{name} must be an integer", name)
        if minimum is not None and value < minimum:
            _fail(f"{name} must be at least {minimum}", name)
    for name in _BOOL_FIELDS:
        value = body.get(name)
        if value is not None and not isinstance(value, bool):
            _fail(f"{name} must be a boolean", name)
    for name in _OBJECT_FIELDS:
        value = body.get(name)
        if value is not None and not isinstance(value, dict):
            _fail(f"{name} must be an object", name)
    stop = body.get("stop")
    if stop is not None and not isinstance(stop, str) and not (
            isinstance(stop, list) and all(isinstance(s, str) for s in stop)):
        _fail("stop must be a string or a list of strings", "stop")
    tools = body.get("tools")
    if tools is not None and not (isinstance(tools, list) and all(isinstance(t, dict) for t in tools)):
        _fail("tools must be a list of objects", "tools")
    tool_choice = body.get("tool_choice")
    if tool_choice is not None and not isinstance(tool_choice, (str, dict)):
        _fail("tool_choice must be a string or an object", "tool_choice")


def _check_messages(messages) -> list[dict]:
    if messages is None or (isinstance(messages, list) and not messages):
        _fail("messages cannot be empty", "messages")
    if not isinstance(messages, list):
        _fail("messages must be a list", "messages")
    for index, message in enumerate(messages):
        param = f"messages[{index}]"
        if not isinstance(message, dict):
            _fail("each message must be an object", param)
        if message.get("role") not in ROLES:
            _fail("message role must be one of: " + ", ".join(sorted(ROLES)), f"{param}.role")
        content = message.get("content")
        if content is None:
            if message["role"] != "assistant":  # assistant turns may carry only tool_calls
                _fail("message content is required", f"{param}.content")
        elif not isinstance(content, (str, list)):
            _fail("message content must be a string or a list of content parts", f"{param}.content")
        elif isinstance(content, list) and not all(isinstance(part, dict) for part in content):
            _fail("each content part must be an object", f"{param}.content")
        if message["role"] == "tool" and not isinstance(message.get("tool_call_id"), str):
            _fail("tool messages need a tool_call_id", f"{param}.tool_call_id")
    return messages


def parse_chat_request(body: dict) -> ChatRequest:
    model = body.get("model")
    if model is None or model == "":
        _fail("model key is required", "model")
    if not isinstance(model, str):
        _fail("model must be a string", "model")
    messages = _check_messages(body.get("messages"))
    _check_types(body)
    conversation = body.get("conversation")
    if isinstance(conversation, dict):
        conversation = conversation.get("id")
    if conversation is not None and (not isinstance(conversation, str) or not conversation):
        _fail("conversation must be an id or an object with an id", "conversation")
    stream_options = body.get("stream_options") or {}
    return ChatRequest(
        body={key: value for key, value in body.items() if key not in JAN_FIELDS},
        model=model,
        messages=messages,
        stream=bool(body.get("stream")),
        include_usage=bool(stream_options.get("include_usage")),
        conversation_id=conversation,
        store=body.get("store") is not False,
        store_reasoning=bool(body.get("store_reasoning")),
    )
