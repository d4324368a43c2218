"""Conversation auto-titles by Jan's rules (contract §2.8), applied after a completed chat request:

- only when the request's messages hold exactly one user message or a multiple of five, and the
  conversation's `metadata.title_locked` is not "true";
- with one user message, an existing title is kept unless it is just the fallback title of these messages
  (so titles set by the user or a client survive);
- the new title is the configured title model's answer when that model answers within
  `CONVERSATION_TITLE_TIMEOUT_SECONDS`, else the deterministic fallback: the first user message;
- either way sanitised (no URLs, links or e-mail addresses; letters, digits, spaces and `. , ! ? - '` only)
  and truncated to 256 characters.

Everything happens within the request: no background thread is left behind (a scaled-to-zero pod would
lose it).
"""
from __future__ import annotations

import logging
import re

from sqlalchemy import func, select, update

from shared.db import Database
from shared.inference import InferenceClient
from shared.domain.conversations.tables import conversations
from shared.domain.conversations.content import text_of_content
from shared.domain.conversations.validation import MAX_TITLE_LENGTH

log = logging.getLogger("jan.llm.titles")

SYSTEM_PROMPT = ("You generate short, descriptive conversation titles. Return only the title text with no quotes "
                 "or extra words.")
# How much of the conversation the title model sees.
PROMPT_MESSAGES = 10
PROMPT_MESSAGE_CHARS = 1000

_THINKING = re.compile(r"<think>.*?(?:</think>|$)", re.S | re.I)
_MARKDOWN_LINK = re.compile(r"!?\[([^\]]*)\]\([^)]*\)")
_URL = re.compile(r"(?:https?://|ftp://|www\.)\S*", re.I)
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_KEPT_PUNCTUATION = frozenset(".,!?-'")
_SPACES = re.compile(r"\s+")


def sanitize(text: str) -> str:
    text = _THINKING.sub(" ", text)
    text = _MARKDOWN_LINK.sub(r"\1", text)
    text = _URL.sub(" ", text)
    text = _EMAIL.sub(" ", text)
    text = "".join(ch if ch.isalpha() or ch.isdigit() or ch.isspace() or ch in _KEPT_PUNCTUATION else " "
                   for ch in text)
    text = _SPACES.sub(" ", text).strip().rstrip(" .,!?-'")
    return truncate(text)


def truncate(text: str, limit: int = MAX_TITLE_LENGTH) -> str:
    """At most `limit` characters; a cut ends in `...`, at a word boundary when one lies past the middle."""
    if len(text) <= limit:
        return text
    cut = text[:limit - 3]
    boundary = cut.rfind(" ")
    if boundary > len(cut) // 2:
        cut = cut[:boundary]
    return cut.rstrip() + "..."


def user_message_count(messages: list[dict]) -> int:
    return sum(1 for message in messages if message.get("role") == "user")


def is_title_turn(messages: list[dict]) -> bool:
    count = user_message_count(messages)
    return count == 1 or (count > 0 and count % 5 == 0)


def fallback_title(messages: list[dict]) -> str | None:
    """The first user message with text, sanitised; None when nothing is left (Jan's "New Conversation")."""
    for message in messages:
        if message.get("role") == "user":
            title = sanitize(text_of_content(message.get("content")))
            if title:
                return title
    return None


def title_prompt(messages: list[dict], reply: str) -> str:
    lines = []
    turns = [m for m in messages if m.get("role") in ("user", "assistant")][:PROMPT_MESSAGES]
    for number, message in enumerate(turns, start=1):
        text = _SPACES.sub(" ", text_of_content(message.get("content"))).strip()[:PROMPT_MESSAGE_CHARS]
        lines.append(f"{number}. {message['role']}: {text}")
    if reply:
        lines.append(f"{len(lines) + 1}. assistant: {_SPACES.sub(' ', reply).strip()[:PROMPT_MESSAGE_CHARS]}")
    return ("Create a concise title for this conversation. Max length: 256 characters.\nConversation:\n"
            + "\n".join(lines))


class TitleService:
    def __init__(self, db: Database, catalog, *, model: str, timeout_seconds: float,
                 connect_timeout_seconds: float = 5.0):
        self.db = db
        self.catalog = catalog
        self.model = model  # a public model id; empty: fallback titles only
        self.timeout_seconds = timeout_seconds
        self.inference = InferenceClient(connect_timeout=min(connect_timeout_seconds, timeout_seconds),
                                         read_timeout=timeout_seconds)

    def after_completion(self, conversation, messages: list[dict], reply: str) -> str | None:
        """Apply the rules to `conversation` (its row as the request read it) after a completed request of
        `messages` answered by `reply`; returns the conversation's title afterwards. No query unless the title
        changes; the write is skipped when the title was locked or changed meanwhile (e.g. during a stream)."""
        if not is_title_turn(messages) or (conversation.metadata or {}).get("title_locked") == "true":
            return conversation.title
        fallback = fallback_title(messages)
        if conversation.title and user_message_count(messages) == 1 and conversation.title != fallback:
            return conversation.title
        title = self.model_title(messages, reply) or fallback
        if title is None or title == conversation.title:
            return conversation.title
        with self.db.transaction() as conn:
            stored = conn.execute(update(conversations).where(
                conversations.c.id == conversation.id, conversations.c.deleted_at.is_(None),
                conversations.c.title.is_not_distinct_from(conversation.title),
                func.coalesce(conversations.c.metadata["title_locked"].astext, "false") != "true")
                .values(title=title).returning(conversations.c.title)).scalar()
            if stored is None:  # changed meanwhile: report what is stored now
                stored = conn.execute(select(conversations.c.title)
                                      .where(conversations.c.id == conversation.id)).scalar()
        return stored

    def model_title(self, messages: list[dict], reply: str) -> str | None:
        """The title model's suggestion, sanitised; None when no model is configured, or it fails, times out or
        answers nothing usable."""
        if not self.model:
            return None
        try:
            route = self.catalog.route(self.model)
            body = self.inference.chat_completion(route.endpoint, {
                "model": route.upstream_model,
                "messages": [{"role": "system", "content": SYSTEM_PROMPT},
                             {"role": "user", "content": title_prompt(messages, reply)}],
                "max_tokens": 64, "temperature": 0.2, "stream": False})
            content = body["choices"][0]["message"]["content"]
        except Exception as exc:  # a title is never worth failing the request for
            log.warning("title model %s gave no title: %s", self.model, exc)
            return None
        return sanitize(content) if isinstance(content, str) else None
