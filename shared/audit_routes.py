"""The audit log in Flask handlers: `@audited(...)` on every admin write, and the admin list route.

`@audited` loads the target before the handler runs and again after it succeeded (or takes the response body
when there is nothing to load), then appends exactly one entry. A handler that fails (any error status) leaves
no entry. The entry is written right after the handler's own transaction commits, in the same request.
"""
from __future__ import annotations

import datetime as dt
import functools
from typing import Callable

from flask import Blueprint, current_app, request

from shared.audit import AuditFilters, AuditLog, actor_of
from shared.auth import admin_required, current_principal
from shared.errors import ApiError, BadRequest
from shared.context import current as current_request
from shared.pagination import Page, list_body
from shared.protocol import decode_json_object
from shared.protocol.flask import paginated


def audit_log() -> AuditLog:
    platform = current_app.extensions["jan"]
    log = platform.services.get("audit")
    if log is None:
        log = platform.services["audit"] = AuditLog(platform.db)
    return log


def _response_json(response) -> object:
    if isinstance(response, tuple):
        response = response[0]
    if isinstance(response, (dict, list)):
        return response
    get_json = getattr(response, "get_json", None)
    return get_json(silent=True) if get_json else None


def _status(response) -> int:
    if isinstance(response, tuple) and len(response) > 1 and isinstance(response[1], int):
        return response[1]
    return getattr(response, "status_code", 200)


def audited(action: str, target_type: str, *, target_arg: str | None = None,
            load: Callable[[str], dict] | None = None, with_request: bool = False):
    """Record one audit entry per successful call of the decorated admin handler.

    `target_arg`: the URL argument naming the target (else the created object's `id` in the response).
    `load(target_id)`: the target's state, read before and after the write (NotFound after means deleted);
    without it `after` is the response body. `with_request`: keep the request body too (bulk changes, whose
    target is a selection rather than one object)."""

    def decorate(view):
        @functools.wraps(view)
        def wrapper(*args, **kwargs):
            target_id = kwargs.get(target_arg) if target_arg else None
            before = _load(load, target_id)
            response = view(*args, **kwargs)
            if _status(response) >= 400:
                return response
            body = _response_json(response)
            if target_id is None and isinstance(body, dict) and isinstance(body.get("id"), str):
                target_id = body["id"]
            after = _load(load, target_id) if load is not None and target_id is not None else body
            if with_request:
                after = {"request": decode_json_object(request.get_data(), optional=True), "result": after}
            audit_log().record(actor_of(current_principal()), action, target_type, target_id,
                               before=before, after=after, request_id=_request_id())
            return response

        return wrapper

    return decorate


def _request_id() -> str | None:
    context = current_request()
    return context.request_id if context is not None else None


def _load(load, target_id):
    if load is None or target_id is None:
        return None
    try:
        return load(target_id)
    except ApiError:  # not there (yet, or any more): the handler answers for it
        return None


bp = Blueprint("audit_logs", __name__, url_prefix="/v1/admin")


def _time_arg(name: str) -> dt.datetime | None:
    raw = request.args.get(name)
    if raw in (None, ""):
        return None
    try:
        return dt.datetime.fromtimestamp(int(raw), dt.timezone.utc)
    except (ValueError, OverflowError, OSError):
        raise BadRequest(f"{name} must be a unix time in seconds", param=name) from None


def _text_arg(name: str) -> str | None:
    value = request.args.get(name) or None
    if value is not None and len(value) > 255:
        raise BadRequest(f"{name} must be at most 255 characters", param=name)
    return value


@bp.get("/audit-logs")
@admin_required
@paginated(default_limit=50, max_limit=200)
def list_audit_logs(page: Page):
    """Audit entries, newest first; filters: actor, action, target_type, target_id, since, until (unix seconds)."""
    filters = AuditFilters(actor=_text_arg("actor"), action=_text_arg("action"),
                           target_type=_text_arg("target_type"), target_id=_text_arg("target_id"),
                           since=_time_arg("since"), until=_time_arg("until"))
    entries, has_more = audit_log().list(filters, limit=page.limit, order=page.order, after=page.after)
    return list_body(entries, has_more=has_more)
