"""POST /v1/chat/completions."""
from __future__ import annotations

import time

from flask import Blueprint, g, jsonify, request

from shared.auth import authenticated, current_principal
from shared.protocol.flask import body, returns
from shared.sse import client_socket
from functions.llm.chat.protocol import ChatCompletion, ChatCompletionRequest, chat_request as to_chat_request
from functions.llm.services import services

bp = Blueprint("chat", __name__, url_prefix="/v1/chat")


@bp.post("/completions")
@authenticated
@body(ChatCompletionRequest)
@returns(ChatCompletion)
def create_chat_completion(body: ChatCompletionRequest):
    """OpenAI-compatible chat completion (JSON or SSE), with Jan's `conversation` and `store`."""
    chat_request = to_chat_request(body)
    chat = services().chat
    prepared = chat.prepare(current_principal(), chat_request, referrer=request.args.get("referrer"),
                            started=g.started)
    if chat_request.stream:
        return chat.stream(prepared, client_socket(request.environ))
    outcome = chat.complete(prepared)
    response = jsonify(outcome.body)
    overhead_ms = (time.perf_counter() - g.started) * 1000 - outcome.upstream_ms
    response.headers["X-Overhead-Duration-Ms"] = f"{overhead_ms:.2f}"
    response.call_on_close(lambda: chat.usage.record(outcome.usage))
    return response
