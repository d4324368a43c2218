"""Decorators that authorise a handler. Every function authenticates every request itself."""
from __future__ import annotations

import functools

from flask import current_app, g, request

from shared.auth.principal import Principal
from shared.errors import Forbidden


def current_principal() -> Principal:
    return g.principal


def _authenticate(*, allow_delegation: bool = False) -> Principal:
    principal = g.get("principal")
    if principal is None:
        principal = current_app.extensions["jan"].principals.resolve(request)
        g.principal = principal
    # Delegation is opt-in per route: a token minted for a service's call is not a user's login.
    if principal.acting_service is not None and not allow_delegation:
        raise Forbidden("this route does not accept delegation tokens")
    return principal


def authenticated(view=None, *, allow_delegation: bool = False):
    """`@authenticated`, or `@authenticated(allow_delegation=True)` for routes other functions call for a user."""
    if view is None:
        return functools.partial(authenticated, allow_delegation=allow_delegation)

    @functools.wraps(view)
    def wrapper(*args, **kwargs):
        _authenticate(allow_delegation=allow_delegation)
        return view(*args, **kwargs)

    return wrapper


def admin_required(view):
    @functools.wraps(view)
    def wrapper(*args, **kwargs):
        if not _authenticate().is_admin:
            raise Forbidden("admin access required")
        return view(*args, **kwargs)

    return wrapper
