"""Writes one usage record per model request (user, key, model, tokens, latency) for accounting."""
from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy import insert

from shared.db import Database
from shared.domain.usage.tables import usage_records

log = logging.getLogger("jan.llm.usage")


@dataclass
class UsageRecord:
    user_id: int
    api_key_id: str | None
    model: str
    endpoint: str
    stream: bool
    status: str  # completed | incomplete | failed
    latency_ms: float
    provider_id: int | None = None
    conversation_id: int | None = None
    project_id: int | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    first_token_ms: float | None = None
    usage_estimated: bool = False

    def add_usage(self, usage: dict | None, *, prompt_text: str = "", completion_text: str = "") -> None:
        """The provider's token counts; without them, an estimate (4 characters a token) marked as such."""
        if isinstance(usage, dict) and isinstance(usage.get("prompt_tokens"), int):
            self.prompt_tokens = max(usage["prompt_tokens"], 0)
            completion = usage.get("completion_tokens")
            self.completion_tokens = max(completion, 0) if isinstance(completion, int) else 0
            return
        self.prompt_tokens = (len(prompt_text) + 3) // 4
        self.completion_tokens = (len(completion_text) + 3) // 4
        self.usage_estimated = True


_INSERT = insert(usage_records)


class UsageRecorder:
    def __init__(self, db: Database):
        self.db = db

    def record(self, record: UsageRecord) -> None:
        """Never fails the request it accounts for: a lost record is logged, the answer still goes out.
        One round trip, committed without waiting for the WAL flush (Database.relaxed_write)."""
        try:
            with self.db.relaxed_write() as conn:
                conn.execute(_INSERT, dict(
                    user_id=record.user_id, api_key_id=record.api_key_id, model=record.model,
                    endpoint=record.endpoint, stream=record.stream, status=record.status,
                    latency_ms=record.latency_ms, provider_id=record.provider_id,
                    conversation_id=record.conversation_id, project_id=record.project_id,
                    prompt_tokens=record.prompt_tokens, completion_tokens=record.completion_tokens,
                    total_tokens=record.prompt_tokens + record.completion_tokens,
                    usage_estimated=record.usage_estimated,
                    first_token_ms=record.first_token_ms))
        except Exception:
            log.exception("could not record usage for model %s", record.model)
