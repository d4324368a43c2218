"""Decorators that authorise a handler. Every function authenticates every request itself."""
from __future__ import annotations

import functools

from flask import current_app, g, request

from shared.auth.principal import Principal
from shared.errors import Forbidden


def current_principal() -> Principal:
    return g.principal


def _authenticate() -> Principal:
    principal = g.get("principal")
    if principal is None:
        principal = current_app.extensions["jan"].principals.resolve(request)
        g.principal = principal
    return principal


def authenticated(view):
    @functools.wraps(view)
    def wrapper(*args, **kwargs):
        _authenticate()
        return view(*args, **kwargs)

    return wrapper


def admin_required(view):
    @functools.wraps(view)
    def wrapper(*args, **kwargs):
        if not _authenticate().is_admin:
            raise Forbidden("admin access required")
        return view(*args, **kwargs)

    return wrapper
