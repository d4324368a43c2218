"""The chat completion protocol: OpenAI's request body plus Jan's extensions, validated before anything is sent
upstream, and the response shapes for the OpenAPI document."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Literal

from msgspec import Meta

from shared.errors import BadRequest
from shared.protocol import RequestModel, ResponseModel

# Jan's extensions: consumed here, never sent upstream.
JAN_FIELDS = ("conversation", "store", "store_reasoning", "deep_research", "enable_thinking", "image")

ROLES = ("assistant", "developer", "function", "system", "tool", "user")
Role = Literal["assistant", "developer", "function", "system", "tool", "user"]


class ChatMessage(RequestModel):
    role: Annotated[Role, Meta(extra={"error": "message role must be one of: " + ", ".join(ROLES)})]
    # Content parts are checked below so a bad part names the message's content (Jan's param).
    content: Annotated[str | list[Any] | None, Meta(
        extra={"error": "message content must be a string or a list of content parts"},
        extra_json_schema={"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "object"}},
                                     {"type": "null"}]})] = None
    name: str | None = None
    tool_call_id: str | None = None
    tool_calls: list[dict[str, Any]] | None = None


Integer1 = Annotated[int, Meta(ge=1)]


class ChatCompletionRequest(RequestModel):
    """OpenAI's chat completion body; Jan's `conversation` (an id or `{"id"}`), `store` and `store_reasoning`.
    Fields not named here are passed to the provider as sent."""

    model: str | None = None
    messages: list[Annotated[ChatMessage, Meta(extra={"error": "each message must be an object"})]] | None = None
    temperature: float | None = None
    top_p: float | None = None
    frequency_penalty: float | None = None
    presence_penalty: float | None = None
    top_k: float | None = None
    repetition_penalty: float | None = None
    min_p: float | None = None
    n: Integer1 | None = None
    max_tokens: Integer1 | None = None
    max_completion_tokens: Integer1 | None = None
    seed: int | None = None
    top_logprobs: Annotated[int, Meta(ge=0)] | None = None
    stream: bool | None = None
    logprobs: bool | None = None
    parallel_tool_calls: bool | None = None
    response_format: dict[str, Any] | None = None
    stream_options: dict[str, Any] | None = None
    logit_bias: dict[str, Any] | None = None
    metadata: dict[str, Any] | None = None
    stop: Annotated[str | list[str] | None, Meta(extra={"error": "stop must be a string or a list of strings"})] = None
    tools: Annotated[list[dict[str, Any]] | None, Meta(extra={"error": "tools must be a list of objects"})] = None
    tool_choice: Annotated[str | dict[str, Any] | None, Meta(
        extra={"error": "tool_choice must be a string or an object"})] = None
    conversation: Annotated[str | dict[str, Any] | None, Meta(
        extra={"error": "conversation must be an id or an object with an id"})] = None
    store: bool | None = None
    store_reasoning: bool | None = None

    def __post_init__(self):
        if not self.model:
            raise BadRequest("model key is required", param="model")
        if not self.messages:
            raise BadRequest("messages cannot be empty", param="messages")
        for index, message in enumerate(self.messages):
            param = f"messages[{index}]"
            if message.content is None and message.role != "assistant":  # assistant turns may carry only tool_calls
                raise BadRequest("message content is required", param=f"{param}.content")
            if isinstance(message.content, list) and not all(isinstance(part, dict) for part in message.content):
                raise BadRequest("each content part must be an object", param=f"{param}.content")
            if message.role == "tool" and message.tool_call_id is None:
                raise BadRequest("tool messages need a tool_call_id", param=f"{param}.tool_call_id")
        conversation = self.conversation
        if isinstance(conversation, dict):
            conversation = conversation.get("id")
        if conversation is not None and (not isinstance(conversation, str) or not conversation):
            raise BadRequest("conversation must be an id or an object with an id", param="conversation")


@dataclass(frozen=True)
class ChatRequest:
    """What the chat service works from: the validated body, as sent, with Jan's fields taken out."""

    body: dict  # everything to pass upstream except model/messages rewriting
    model: str
    messages: list[dict]
    stream: bool
    include_usage: bool  # whether the *client* asked for the usage chunk
    conversation_id: str | None
    store: bool
    store_reasoning: bool


def chat_request(request: ChatCompletionRequest) -> ChatRequest:
    raw = request.raw
    conversation = request.conversation
    return ChatRequest(
        body={key: value for key, value in raw.items() if key not in JAN_FIELDS},
        model=request.model,
        messages=raw["messages"],
        stream=bool(request.stream),
        include_usage=bool((request.stream_options or {}).get("include_usage")),
        conversation_id=conversation.get("id") if isinstance(conversation, dict) else conversation,
        store=request.store is not False,
        store_reasoning=bool(request.store_reasoning),
    )


# Responses (OpenAI's shapes; Jan's `conversation` added) -----------------------------------------------------

class ChatCompletionMessage(ResponseModel):
    role: str
    content: str | None
    reasoning_content: str | None = None
    tool_calls: list[dict[str, Any]] | None = None


class ChatCompletionChoice(ResponseModel):
    index: int
    message: ChatCompletionMessage
    finish_reason: str | None
    logprobs: dict[str, Any] | None = None


class CompletionUsage(ResponseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class ConversationRef(ResponseModel):
    id: str
    title: str | None


class ChatCompletion(ResponseModel):
    """A non-streamed completion (`stream: true` answers `text/event-stream` chunks of the same fields)."""

    id: str
    object: Literal["chat.completion"]
    created: int
    model: str
    choices: list[ChatCompletionChoice]
    usage: CompletionUsage | None = None
    system_fingerprint: str | None = None
    conversation: ConversationRef | None = None
