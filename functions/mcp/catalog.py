"""Jan's admin-managed tool table: what the MCP server offers (active flag, description, disallowed keywords),
cached briefly per process, and the admin reads and writes behind /v1/admin/mcp-tools."""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

import regex
from sqlalchemy import func, or_, select, update

from shared.audit import Actor, AuditLog
from shared.db import Database
from shared.errors import BadRequest, NotFound
from shared.schema import mcp_tools
from shared.times import rfc3339, utcnow

log = logging.getLogger("jan.mcp.catalog")

# Jan's Go regexps run in linear time; Python's backtrack, so an admin's `(a+)+$` could hang a search. Patterns are
# few and short, matched against capped text, and every result's check has a time budget (the `regex` module's
# timeout): a check that runs out counts as a match, so the result is dropped rather than the search held up.
MAX_KEYWORDS = 50
MAX_KEYWORD_LENGTH = 200
MATCH_TEXT_LIMIT = 5000
MATCH_BUDGET_SECONDS = 0.02


@dataclass(frozen=True)
class ToolConfig:
    is_active: bool
    description: str
    disallowed: tuple[regex.Pattern, ...]

    def disallows(self, *texts: str) -> bool:
        """Whether any pattern matches the joined texts; also when the patterns run past MATCH_BUDGET_SECONDS."""
        joined = " ".join(text for text in texts if text)[:MATCH_TEXT_LIMIT]
        deadline = time.monotonic() + MATCH_BUDGET_SECONDS
        for pattern in self.disallowed:
            try:
                if pattern.search(joined, timeout=max(deadline - time.monotonic(), 0.001)):
                    return True
            except TimeoutError:
                log.warning("disallowed keyword %r ran out of time; the result is dropped", pattern.pattern)
                return True
        return False


def compile_keywords(value) -> tuple[regex.Pattern, ...]:
    """Validated regexes; BadRequest naming the first bad one."""
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise BadRequest("disallowed_keywords must be an array of strings", param="disallowed_keywords")
    if len(value) > MAX_KEYWORDS:
        raise BadRequest(f"disallowed_keywords holds at most {MAX_KEYWORDS} patterns", param="disallowed_keywords")
    compiled = []
    for pattern in value:
        if not pattern or len(pattern) > MAX_KEYWORD_LENGTH:
            raise BadRequest(f"each disallowed keyword must be 1 to {MAX_KEYWORD_LENGTH} characters",
                             param="disallowed_keywords")
        try:
            compiled.append(regex.compile(pattern))
        except regex.error as exc:
            raise BadRequest(f"disallowed keyword {pattern!r} is not a valid regex: {exc}",
                             param="disallowed_keywords") from None
    return tuple(compiled)


def _config(row) -> ToolConfig:
    try:
        disallowed = compile_keywords(list(row.disallowed_keywords or []))
    except BadRequest:  # a row written around the API: its filter is skipped rather than failing every call
        log.warning("tool %s has invalid disallowed_keywords; ignored", row.tool_key)
        disallowed = ()
    return ToolConfig(is_active=row.is_active, description=row.description, disallowed=disallowed)


def tool_body(row) -> dict:
    body = {"id": row.id, "public_id": row.public_id, "tool_key": row.tool_key, "name": row.name,
            "description": row.description, "category": row.category, "is_active": row.is_active}
    # Jan omits empty metadata and keywords (omitempty).
    if row.metadata:
        body["metadata"] = row.metadata
    if row.disallowed_keywords:
        body["disallowed_keywords"] = list(row.disallowed_keywords)
    body["created_at"] = rfc3339(row.created_at.replace(microsecond=0))
    body["updated_at"] = rfc3339(row.updated_at.replace(microsecond=0))
    return body


class ToolCatalog:
    def __init__(self, db: Database, ttl_seconds: float):
        self.db = db
        self.audit = AuditLog(db)
        self.ttl = ttl_seconds
        self._configs: dict[str, ToolConfig] | None = None
        self._expires_at = float("-inf")
        self._lock = threading.Lock()

    # --- what the MCP server reads (blocking; called from a worker thread) ---

    def configs(self) -> dict[str, ToolConfig]:
        """Tool key -> its admin configuration; a tool without a row runs with its built-in description."""
        if self._configs is not None and time.monotonic() < self._expires_at:
            return self._configs
        with self._lock:
            if self._configs is None or time.monotonic() >= self._expires_at:
                try:
                    with self.db.read() as conn:
                        rows = conn.execute(select(mcp_tools)).all()
                    self._configs = {row.tool_key: _config(row) for row in rows}
                except Exception as exc:
                    if self._configs is None:
                        raise
                    # The database blinked: keep serving the last known configuration until the next try.
                    log.warning("reloading tool configuration failed: %s", exc)
                self._expires_at = time.monotonic() + self.ttl
        return self._configs

    def invalidate(self) -> None:
        self._expires_at = float("-inf")

    # --- Jan's tool admin and public tool routes ---

    def list(self, *, category: str | None, is_active: bool | None, search: str | None, limit: int,
             offset: int) -> tuple[list[dict], int]:
        conditions = []
        if category:
            conditions.append(mcp_tools.c.category == category)
        if is_active is not None:
            conditions.append(mcp_tools.c.is_active.is_(is_active))
        if search:
            like = "%" + search.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            conditions.append(or_(mcp_tools.c.name.ilike(like), mcp_tools.c.description.ilike(like),
                                  mcp_tools.c.tool_key.ilike(like)))
        with self.db.read() as conn:
            total = conn.execute(select(func.count()).select_from(mcp_tools).where(*conditions)).scalar_one()
            rows = conn.execute(select(mcp_tools).where(*conditions).order_by(mcp_tools.c.tool_key)
                                .limit(limit).offset(offset)).all()
        return [tool_body(row) for row in rows], total

    def active(self) -> list[dict]:
        with self.db.read() as conn:
            rows = conn.execute(select(mcp_tools).where(mcp_tools.c.is_active.is_(True))
                                .order_by(mcp_tools.c.tool_key)).all()
        return [tool_body(row) for row in rows]

    def get(self, public_id: str) -> dict:
        with self.db.read() as conn:
            row = conn.execute(select(mcp_tools).where(mcp_tools.c.public_id == public_id)).first()
        if row is None:
            raise NotFound("mcp tool not found")
        return tool_body(row)

    def active_by_key(self, tool_key: str) -> dict:
        with self.db.read() as conn:
            row = conn.execute(select(mcp_tools).where(mcp_tools.c.tool_key == tool_key)).first()
        if row is None or not row.is_active:
            raise NotFound("tool not found or inactive")
        return tool_body(row)

    def update(self, public_id: str, changes: dict, actor: Actor, *, request_id: str | None = None) -> dict:
        """Apply an admin's changes and append its audit entry (the row before and after) in one transaction."""
        values = {**changes, "updated_at": utcnow(), "updated_by": actor.user_id}
        with self.db.transaction() as conn:
            before = conn.execute(select(mcp_tools).where(mcp_tools.c.public_id == public_id)
                                  .with_for_update()).first()
            if before is None:
                raise NotFound("mcp tool not found")
            row = conn.execute(update(mcp_tools).where(mcp_tools.c.public_id == public_id).values(**values)
                               .returning(*mcp_tools.c)).first()
            after = tool_body(row)
            self.audit.record(actor, "mcp_tool.update", "mcp_tool", public_id, before=tool_body(before),
                              after=after, request_id=request_id, conn=conn)
        self.invalidate()
        return after


def parse_update(body) -> dict:
    """Jan's PATCH body: description?, category?, is_active?, metadata?, disallowed_keywords? (name is read-only)."""
    if not isinstance(body, dict):
        raise BadRequest("request body must be a JSON object")
    changes: dict = {}
    if "description" in body:
        value = body["description"]
        if not isinstance(value, str) or not value.strip() or len(value) > 10000:
            raise BadRequest("description must be a non-empty string of at most 10000 characters",
                             param="description")
        changes["description"] = value
    if "category" in body:
        value = body["category"]
        if not isinstance(value, str) or not value.strip() or len(value) > 100:
            raise BadRequest("category must be a non-empty string of at most 100 characters", param="category")
        changes["category"] = value
    if "is_active" in body:
        if not isinstance(body["is_active"], bool):
            raise BadRequest("is_active must be a boolean", param="is_active")
        changes["is_active"] = body["is_active"]
    if "metadata" in body:
        if body["metadata"] is not None and not isinstance(body["metadata"], dict):
            raise BadRequest("metadata must be an object", param="metadata")
        changes["metadata"] = body["metadata"]
    if "disallowed_keywords" in body:
        value = body["disallowed_keywords"]
        value = [] if value is None else value
        compile_keywords(value)
        changes["disallowed_keywords"] = value
    return changes
