"""Pagination parameters and OpenAI's list shape: `{"object": "list", "data", "first_id", "last_id", "has_more"}`.

Framework-free: the readers take the query parameters as a mapping; shared.protocol.flask reads Flask's.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

from shared.errors import BadRequest


@dataclass(frozen=True)
class Page:
    limit: int
    order: str  # "asc" | "desc"
    after: str | None


def page_from(args: Mapping[str, str], *, default_limit: int = 20, max_limit: int = 100,
              default_order: str = "desc") -> Page:
    """Read `limit`, `order` and `after`; invalid values are a 400, never clamped silently."""
    raw_limit = args.get("limit")
    if raw_limit is None or raw_limit == "":
        limit = default_limit
    else:
        try:
            limit = int(raw_limit)
        except ValueError:
            raise BadRequest("limit must be an integer", param="limit") from None
        if limit < 1 or limit > max_limit:
            raise BadRequest(f"limit must be between 1 and {max_limit}", param="limit")
    order = args.get("order") or default_order
    if order not in ("asc", "desc"):
        raise BadRequest("order must be 'asc' or 'desc'", param="order")
    after = args.get("after") or None
    if after is not None and len(after) > 128:
        raise BadRequest("after is not a valid cursor", param="after")
    return Page(limit=limit, order=order, after=after)


def int_from(args: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    """An integer query parameter within [low, high]; anything else is a 400 naming it."""
    raw = args.get(name)
    if raw in (None, ""):
        return default
    try:
        value = int(raw)
    except ValueError:
        raise BadRequest(f"{name} must be an integer", param=name) from None
    if not low <= value <= high:
        raise BadRequest(f"{name} must be between {low} and {high}", param=name)
    return value


def offset_from(args: Mapping[str, str], *, max_limit: int = 1000) -> tuple[int, int]:
    """Jan's admin lists: `limit` (default 20) and `offset`."""
    return int_from(args, "limit", 20, 1, max_limit), int_from(args, "offset", 0, 0, 10**9)


def list_body(items: list[dict], *, has_more: bool, **extra) -> dict:
    body = {
        "object": "list",
        "data": items,
        "first_id": items[0]["id"] if items else None,
        "last_id": items[-1]["id"] if items else None,
        "has_more": has_more,
    }
    body.update(extra)
    return body
