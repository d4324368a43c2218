"""Reading usage records back: totals and per-day rows for a user, a project, or (admins) everyone.

Every report is one or two GROUP BY queries over `usage_records`, filtered on its indexed columns
(`user_id, created_at` or `project_id, created_at`); nothing is read row by row. Days are UTC days.
"""
from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from sqlalchemy import Date, cast, func, select

from shared.times import rfc3339
from shared.db import Database
from shared.errors import BadRequest, NotFound
from shared.domain.conversations.tables import projects
from shared.domain.usage.tables import usage_records
from shared.schema import users

DEFAULT_DAYS = 30
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})$")


@dataclass(frozen=True)
class Window:
    """[start, end) in UTC."""

    start: dt.datetime
    end: dt.datetime

    def body(self) -> dict:
        return {"from": rfc3339(self.start), "to": rfc3339(self.end)}


def _parse_bound(name: str, raw: str, *, end: bool) -> dt.datetime:
    raw = raw.strip()
    try:
        if _DATE.match(raw):
            day = dt.date.fromisoformat(raw)
            start = dt.datetime(day.year, day.month, day.day, tzinfo=dt.timezone.utc)
            # A date as `to` includes that whole day.
            return start + dt.timedelta(days=1) if end else start
        if _DATETIME.match(raw):
            text = raw.replace("t", "T").replace(" ", "T").replace("z", "Z").replace("Z", "+00:00")
            head, _, rest = text.partition(".")
            round_up = False
            if rest:  # stored times have microseconds: a finer bound (nanoseconds) is rounded up to the next one
                digits = re.match(r"\d+", rest).group(0)
                round_up = digits[6:].strip("0") != ""
                text = f"{head}.{digits[:6].ljust(6, '0')}{rest[len(digits):]}"
            value = dt.datetime.fromisoformat(text).astimezone(dt.timezone.utc)
            return value + dt.timedelta(microseconds=1) if round_up else value
    except (ValueError, OverflowError):
        pass
    raise BadRequest(f"{name} must be an RFC 3339 time or a YYYY-MM-DD date", param=name)


def parse_window(args, *, now: dt.datetime | None = None) -> Window:
    """`from` / `to` from the query string. Default: the last 30 UTC days, today included, up to now."""
    now = now or dt.datetime.now(dt.timezone.utc)
    raw_from, raw_to = args.get("from"), args.get("to")
    end = _parse_bound("to", raw_to, end=True) if raw_to else now
    if raw_from:
        start = _parse_bound("from", raw_from, end=False)
    else:
        today = (end - dt.timedelta(microseconds=1)).astimezone(dt.timezone.utc).date() if raw_to else now.date()
        start = dt.datetime(today.year, today.month, today.day, tzinfo=dt.timezone.utc) - dt.timedelta(
            days=DEFAULT_DAYS - 1)
    if start >= end:
        raise BadRequest("from must be before to", param="from")
    return Window(start, end)


# Aggregates --------------------------------------------------------------------------------------------------

_REQUESTS = func.count().label("requests")
_FAILED = func.count().filter(usage_records.c.status == "failed").label("failed_requests")
_ESTIMATED = func.count().filter(usage_records.c.usage_estimated).label("estimated_requests")
_PROMPT = func.coalesce(func.sum(usage_records.c.prompt_tokens), 0).label("prompt_tokens")
_COMPLETION = func.coalesce(func.sum(usage_records.c.completion_tokens), 0).label("completion_tokens")
_TOTAL = func.coalesce(func.sum(usage_records.c.total_tokens), 0).label("total_tokens")
AGGREGATES = (_REQUESTS, _FAILED, _ESTIMATED, _PROMPT, _COMPLETION, _TOTAL)
COUNTERS = ("requests", "failed_requests", "estimated_requests", "prompt_tokens", "completion_tokens",
            "total_tokens")


def _counters(row) -> dict:
    return {name: int(getattr(row, name)) for name in COUNTERS}


def _zero() -> dict:
    return dict.fromkeys(COUNTERS, 0)


def _add(total: dict, row_counters: dict) -> None:
    for name in COUNTERS:
        total[name] += row_counters[name]


def _by_model_sorted(models: dict[str, dict]) -> list[dict]:
    return [{"model": model, **counters}
            for model, counters in sorted(models.items(), key=lambda kv: (-kv[1]["total_tokens"], kv[0]))]


def summarise(rows) -> dict:
    """Totals and `by_model` from rows grouped by model."""
    totals = _zero()
    models: dict[str, dict] = {}
    for row in rows:
        counters = _counters(row)
        _add(totals, counters)
        _add(models.setdefault(row.model, _zero()), counters)
    return {**totals, "by_model": _by_model_sorted(models)}


def _in(window: Window):
    return (usage_records.c.created_at >= window.start, usage_records.c.created_at < window.end)


class UsageQueries:
    def __init__(self, db: Database):
        self.db = db

    def for_user(self, user_id: int, public_user_id: str, window: Window) -> dict:
        query = (select(usage_records.c.model, *AGGREGATES)
                 .where(usage_records.c.user_id == user_id, *_in(window))
                 .group_by(usage_records.c.model))
        with self.db.read() as conn:
            rows = conn.execute(query).all()
        return {"object": "usage", "user_id": public_user_id, **window.body(), **summarise(rows)}

    def daily_for_user(self, user_id: int, window: Window) -> dict:
        day = cast(func.timezone("UTC", usage_records.c.created_at), Date).label("day")
        query = (select(day, usage_records.c.model, *AGGREGATES)
                 .where(usage_records.c.user_id == user_id, *_in(window))
                 .group_by(day, usage_records.c.model)
                 .order_by(day))
        with self.db.read() as conn:
            rows = conn.execute(query).all()
        days: dict[dt.date, list] = {}
        for row in rows:
            days.setdefault(row.day, []).append(row)
        data = [{"object": "usage.day", "date": day_.isoformat(), **summarise(day_rows)}
                for day_, day_rows in days.items()]
        return {"object": "list", "data": data, "first_id": data[0]["date"] if data else None,
                "last_id": data[-1]["date"] if data else None, "has_more": False, **window.body()}

    def for_project(self, user_id: int, project_public_id: str, window: Window) -> dict:
        with self.db.read() as conn:
            project_id = conn.execute(select(projects.c.id).where(
                projects.c.public_id == project_public_id, projects.c.user_id == user_id,
                projects.c.deleted_at.is_(None))).scalar()
            if project_id is None:
                raise NotFound("project not found")
            rows = conn.execute(select(usage_records.c.model, *AGGREGATES)
                                .where(usage_records.c.project_id == project_id,
                                       usage_records.c.user_id == user_id, *_in(window))
                                .group_by(usage_records.c.model)).all()
        return {"object": "usage", "project_id": project_public_id, **window.body(), **summarise(rows)}

    def for_everyone(self, window: Window, limit: int, offset: int) -> dict:
        """Per-user totals (one page, busiest first) with their per-model split, and totals per model over all
        users: three grouped queries whatever the page size."""
        per_user = (select(usage_records.c.user_id, *AGGREGATES, func.count().over().label("user_count"))
                    .where(*_in(window)).group_by(usage_records.c.user_id).subquery())
        page_query = (select(per_user, users.c.public_id, users.c.username, users.c.email, users.c.role)
                      .join(users, users.c.id == per_user.c.user_id)
                      .order_by(per_user.c.total_tokens.desc(), per_user.c.requests.desc(), users.c.public_id)
                      .limit(limit + 1).offset(offset))
        with self.db.read() as conn:
            page = conn.execute(page_query).all()
            has_more = len(page) > limit
            page = page[:limit]
            split: dict[int, dict[str, dict]] = {}
            if page:
                for row in conn.execute(select(usage_records.c.user_id, usage_records.c.model, *AGGREGATES)
                                        .where(usage_records.c.user_id.in_([r.user_id for r in page]), *_in(window))
                                        .group_by(usage_records.c.user_id, usage_records.c.model)):
                    split.setdefault(row.user_id, {})[row.model] = _counters(row)
            overall = summarise(conn.execute(select(usage_records.c.model, *AGGREGATES).where(*_in(window))
                                             .group_by(usage_records.c.model)).all())
            if page:
                user_count = page[0].user_count
            else:
                user_count = conn.execute(select(func.count(func.distinct(usage_records.c.user_id)))
                                          .where(*_in(window))).scalar_one()
        data = [{"object": "usage.user", "user_id": row.public_id, "username": row.username, "email": row.email,
                 "role": row.role, **_counters(row), "by_model": _by_model_sorted(split.get(row.user_id, {}))}
                for row in page]
        by_model = overall.pop("by_model")
        return {"object": "list", "data": data, "first_id": data[0]["user_id"] if data else None,
                "last_id": data[-1]["user_id"] if data else None, "has_more": has_more, "total": user_count,
                "limit": limit, "offset": offset, **window.body(), "totals": overall, "by_model": by_model}
