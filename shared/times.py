"""Time on the wire: unix seconds where OpenAI uses them, RFC 3339 (UTC, `Z`) where Jan does."""
from __future__ import annotations

import datetime as dt


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def unix(value: dt.datetime | None) -> int | None:
    return int(value.timestamp()) if value else None


def rfc3339(value: dt.datetime | None) -> str | None:
    return value.astimezone(dt.timezone.utc).isoformat().replace("+00:00", "Z") if value else None
