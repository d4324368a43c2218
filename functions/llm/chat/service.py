"""Serving chat completions: route the model, prepend conversation history, call the provider (JSON or SSE),
persist the exchange and account for it."""
from __future__ import annotations

import logging
import queue
import threading
import time
from dataclasses import dataclass

from flask import Response, stream_with_context

from shared import sse
from shared.auth.principal import Principal
from shared.errors import ApiError, UpstreamError
from shared.inference import InferenceClient
from functions.llm.chat.context import DEFAULT_CONTEXT_LENGTH, fit_to_context, output_reserve
from shared.domain.conversations import (
    ConversationService,
    NewItem,
    TitleService,
    chat_content_from_message,
    normalise_content,
    text_of_content,
)
from shared.domain.models import ModelCatalog, ModelRoute
from shared.domain.usage import UsageRecord, UsageRecorder
from functions.llm.chat.protocol import ChatRequest
from functions.llm.chat.relay import Reply, SseRelay
from functions.llm.projects.service import project_messages
from functions.llm.settings import LlmSettings

log = logging.getLogger("jan.llm.chat")

# How often a waiting stream checks whether its client is still there.
DISCONNECT_POLL_SECONDS = 0.25


@dataclass
class PreparedChat:
    principal: Principal
    request: ChatRequest
    route: ModelRoute
    payload: dict
    conversation: object | None  # conversations row, when the exchange is persisted or history prepended
    started: float
    trimmed: bool = False  # the oldest turns were dropped to fit the model's context (Jan's `trimmed: true`)


@dataclass
class ChatOutcome:
    body: dict
    upstream_ms: float
    usage: UsageRecord


class ChatService:
    def __init__(self, catalog: ModelCatalog, inference: InferenceClient, conversations: ConversationService,
                 usage: UsageRecorder, settings: LlmSettings):
        self.catalog = catalog
        self.inference = inference
        self.conversations = conversations
        self.usage = usage
        self.keepalive_seconds = settings.stream_keepalive_seconds
        self.titles = TitleService(conversations.db, catalog, model=settings.conversation_title_model,
                                   timeout_seconds=settings.conversation_title_timeout_seconds,
                                   connect_timeout_seconds=settings.upstream_connect_timeout_seconds)

    # Preparation -----------------------------------------------------------------------------------------

    def prepare(self, principal: Principal, request: ChatRequest, *, referrer: str | None, started: float) -> PreparedChat:
        route = self.catalog.route(request.model)
        conversation = None
        if request.conversation_id:
            conversation = self.conversations.for_chat(principal.user_id, request.conversation_id)
        elif referrer:
            created = self.conversations.create(principal.user_id, referrer=referrer[:64])
            conversation = self.conversations.for_chat(principal.user_id, created["id"])
        history = (self.conversations.history(conversation.id, conversation.active_branch, request.messages)
                   if conversation else [])
        if conversation is not None:  # a project's instruction leads as the first system message (Jan §2.7)
            history = project_messages(self.conversations.db, conversation) + history
        messages = history + [
            {**message, "content": chat_content_from_message(message.get("content"))} for message in request.messages
        ]
        payload = dict(request.body)
        context_length = route.context_length or DEFAULT_CONTEXT_LENGTH
        messages, trimmed = fit_to_context(messages, context_length=context_length,
                                           reserve=output_reserve(payload, context_length))
        payload["model"] = route.upstream_model
        payload["messages"] = messages
        if not payload.get("tools"):
            payload.pop("tool_choice", None)
        if request.stream:
            payload["stream"] = True
            payload["stream_options"] = {**(payload.get("stream_options") or {}), "include_usage": True}
        return PreparedChat(principal=principal, request=request, route=route, payload=payload,
                            conversation=conversation, started=started, trimmed=trimmed)

    # Non-streaming ---------------------------------------------------------------------------------------

    def complete(self, prepared: PreparedChat) -> ChatOutcome:
        upstream_started = time.perf_counter()
        try:
            body = self.inference.chat_completion(prepared.route.endpoint, prepared.payload)
        except ApiError as exc:
            self._persist(prepared, Reply(), "failed", exc)
            self.usage.record(self._usage(prepared, Reply(), "failed", None))
            raise
        upstream_ms = (time.perf_counter() - upstream_started) * 1000
        reply = Reply.from_completion(body)
        self._persist(prepared, reply, "completed", None)
        if prepared.conversation is not None:
            body["conversation"] = {"id": prepared.conversation.public_id, "title": self._title(prepared, reply)}
        if prepared.trimmed:
            body["trimmed"] = True
        return ChatOutcome(body=body, upstream_ms=upstream_ms, usage=self._usage(prepared, reply, "completed", None))

    # Streaming -------------------------------------------------------------------------------------------

    def stream(self, prepared: PreparedChat, client_socket) -> Response:
        """Open the upstream stream in a helper (thread or greenlet) that feeds a queue. If the provider fails
        before the first byte (within one keep-alive interval) the client gets an HTTP error; after that,
        failures are an SSE error event."""
        events: queue.Queue = queue.Queue()
        cancelled = threading.Event()
        holder: dict = {}

        def pump():
            try:
                upstream = self.inference.open_stream(prepared.route.endpoint, prepared.payload)
            except ApiError as exc:
                events.put(("error", exc))
                return
            holder["upstream"] = upstream
            finished = False
            try:
                if not cancelled.is_set():
                    events.put(("open", None))
                    for chunk in upstream.chunks():
                        events.put(("chunk", chunk))
                    events.put(("end", None))
                    finished = True
            except ApiError as exc:
                if not cancelled.is_set():
                    events.put(("error", exc))
            finally:
                upstream.release() if finished else upstream.close()

        threading.Thread(target=pump, name="upstream-stream", daemon=True).start()
        try:
            first = events.get(timeout=self.keepalive_seconds)
        except queue.Empty:
            first = None
        if first is not None and first[0] == "error":
            self._persist(prepared, Reply(), "failed", first[1])
            self.usage.record(self._usage(prepared, Reply(), "failed", None))
            raise first[1]
        # The request context stays open while streaming: error events and logs carry the request id.
        body = stream_with_context(self._events(prepared, events, first, cancelled, holder, client_socket))
        return Response(body, mimetype="text/event-stream", headers=sse.HEADERS)

    def _events(self, prepared: PreparedChat, events: queue.Queue, pending, cancelled: threading.Event,
                holder: dict, client_socket):
        reply = Reply()
        relay = SseRelay(reply, client_wants_usage=prepared.request.include_usage)
        status, error, first_token_ms = "failed", None, None
        last_write = time.monotonic()
        if pending is None:
            yield sse.KEEPALIVE  # the provider is slow to answer: commit to a stream now
        try:
            while True:
                if pending is None:
                    try:
                        pending = events.get(timeout=min(DISCONNECT_POLL_SECONDS, self.keepalive_seconds))
                    except queue.Empty:
                        if sse.client_disconnected(client_socket):
                            status = "incomplete"
                            return
                        if time.monotonic() - last_write >= self.keepalive_seconds:
                            last_write = time.monotonic()
                            yield sse.KEEPALIVE
                        continue
                kind, value = pending
                pending = None
                if kind == "chunk":
                    if first_token_ms is None:
                        first_token_ms = (time.perf_counter() - prepared.started) * 1000
                    out = relay.feed(value)
                    if out:
                        last_write = time.monotonic()
                        yield out
                elif kind == "end":
                    if relay.done and reply.error is None:
                        status = "completed"
                    else:
                        error = UpstreamError(reply.error.get("message", "model provider failed") if reply.error
                                              else "model provider ended the stream early", code="upstream_stream_broken")
                        if reply.error is None:
                            yield sse.error_event(error)
                    return
                elif kind == "error":
                    error = value
                    yield sse.error_event(value)
                    return
        except GeneratorExit:
            status = "incomplete"
            raise
        finally:
            cancelled.set()
            upstream = holder.get("upstream")
            if upstream is not None and status != "completed":
                upstream.abort()
            self._persist(prepared, reply, status, error)
            if status == "completed":
                self._title(prepared, reply)
            self.usage.record(self._usage(prepared, reply, status, first_token_ms))

    # Persistence and accounting --------------------------------------------------------------------------

    def _title(self, prepared: PreparedChat, reply: Reply) -> str | None:
        """Jan's auto-title after a completed exchange, within the request (bounded by the title timeout)."""
        if prepared.conversation is None:
            return None
        try:
            return self.titles.after_completion(prepared.conversation, prepared.request.messages, reply.content)
        except Exception:
            log.exception("could not title conversation %s", prepared.conversation.public_id)
            return prepared.conversation.title

    def _persist(self, prepared: PreparedChat, reply: Reply, status: str, error: ApiError | None) -> None:
        if prepared.conversation is None or not prepared.request.store:
            return
        items = self._items(prepared, reply, status, error)
        last = prepared.request.messages[-1]
        duplicate_text = text_of_content(last.get("content")) if last["role"] == "user" else None
        try:
            self.conversations.append_to_conversation(prepared.conversation.id, items,
                                                      skip_duplicate_user_text=duplicate_text)
        except Exception:
            log.exception("could not persist chat to conversation %s", prepared.conversation.public_id)

    @staticmethod
    def _items(prepared: PreparedChat, reply: Reply, status: str, error: ApiError | None) -> list[NewItem]:
        items: list[NewItem] = []
        last = prepared.request.messages[-1]
        if last["role"] == "user":
            items.append(NewItem(type="message", role="user",
                                 content=normalise_content(chat_content_from_message(last.get("content")), "user")))
        elif last["role"] == "tool":
            items.append(NewItem(type="function_call_output", call_id=last["tool_call_id"],
                                 output=text_of_content(last.get("content"))))
        parts: list[dict] = []
        if prepared.request.store_reasoning and reply.reasoning:
            parts.append({"type": "reasoning_text", "text": reply.reasoning})
        if reply.content or not reply.tool_calls:
            parts.append({"type": "output_text", "text": reply.content, "annotations": []})
        if parts:
            items.append(NewItem(
                type="message", role="assistant", content=parts, status=status, model=prepared.request.model,
                usage=reply.usage, finish_reason=reply.finish_reason, error=error.message if error else None,
                incomplete_details={"reason": "client_disconnected"} if status == "incomplete" else None))
        for index in sorted(reply.tool_calls):
            call = reply.tool_calls[index]
            items.append(NewItem(type="function_call", call_id=call["id"] or f"call_{index}", name=call["name"],
                                 arguments=call["arguments"], status=status))
        return items

    @staticmethod
    def _usage(prepared: PreparedChat, reply: Reply, status: str, first_token_ms: float | None) -> UsageRecord:
        record = UsageRecord(
            user_id=prepared.principal.user_id, api_key_id=prepared.principal.api_key_id,
            model=prepared.request.model, endpoint="chat.completions", stream=prepared.request.stream, status=status,
            latency_ms=(time.perf_counter() - prepared.started) * 1000, provider_id=prepared.route.provider_id,
            conversation_id=prepared.conversation.id if prepared.conversation is not None else None,
            project_id=prepared.conversation.project_id if prepared.conversation is not None else None,
            first_token_ms=first_token_ms)
        prompt_text = "" if reply.usage else "".join(
            text_of_content(message.get("content")) for message in prepared.payload["messages"])
        record.add_usage(reply.usage, prompt_text=prompt_text,
                         completion_text=reply.content + reply.reasoning + "".join(
                             call["arguments"] for call in reply.tool_calls.values()))
        return record
