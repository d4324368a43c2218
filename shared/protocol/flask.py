"""The Flask side of the protocol layer: `@body(Model)` validates the request body and passes it as `body=`,
`@returns(Model)` declares a response; the OpenAPI document is built from the registered routes; errors are
rendered in the one error body; query parameters are read for shared.pagination."""
from __future__ import annotations

import dataclasses
import functools
import logging

from flask import Flask, jsonify, request
from werkzeug.exceptions import HTTPException

from shared.errors import ApiError, error_body
from shared.pagination import offset_from, page_from
from shared.protocol import decode
from shared.protocol.openapi import Operation, Route, openapi_document

__all__ = ["body", "error_response", "flask_openapi_document", "offset_params", "paginated", "register_error_handlers",
           "returns"]

log = logging.getLogger("jan.errors")
_OPERATION = "__jan_operation__"


def _declared(view) -> Operation:
    return getattr(view, _OPERATION, None) or Operation()


def body(model: type, *, optional: bool = False):
    """Decode the body into `model` (an empty body is allowed when `optional`); 400 before the handler runs.
    Put it below the authorisation decorator, so an unauthenticated request is a 401 whatever it sends."""

    def decorate(view):
        @functools.wraps(view)
        def wrapper(*args, **kwargs):
            kwargs["body"] = decode(request.get_data(cache=True), model, optional=optional)
            return view(*args, **kwargs)

        setattr(wrapper, _OPERATION, dataclasses.replace(_declared(view), request=model, request_optional=optional))
        return wrapper

    return decorate


def returns(model: type | None, status: int = 200):
    """Declare a response of the route (None: no body, as a 204)."""

    def decorate(view):
        declared = _declared(view)
        setattr(view, _OPERATION, dataclasses.replace(declared, responses={**declared.responses, status: model}))
        return view

    return decorate


def paginated(*, default_limit: int = 20, max_limit: int = 100, default_order: str = "desc"):
    """Read `limit`, `after` and `order` (shared.pagination.page_from) and pass them as `page=`; the route's
    OpenAPI operation lists them. Put it below the authorisation decorator."""
    parameters = (
        {"name": "limit", "in": "query", "required": False,
         "schema": {"type": "integer", "minimum": 1, "maximum": max_limit, "default": default_limit}},
        {"name": "after", "in": "query", "required": False, "description": "the last id of the previous page",
         "schema": {"type": "string", "maxLength": 128}},
        {"name": "order", "in": "query", "required": False,
         "schema": {"enum": ["asc", "desc"], "default": default_order}},
    )

    def decorate(view):
        @functools.wraps(view)
        def wrapper(*args, **kwargs):
            kwargs["page"] = page_from(request.args, default_limit=default_limit, max_limit=max_limit,
                                       default_order=default_order)
            return view(*args, **kwargs)

        setattr(wrapper, _OPERATION, dataclasses.replace(_declared(view), query=parameters))
        return wrapper

    return decorate


def offset_params(*, max_limit: int = 1000) -> tuple[int, int]:
    return offset_from(request.args, max_limit=max_limit)


def flask_openapi_document(app: Flask, *, title: str, version: str) -> dict:
    routes = []
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static":
            continue
        path = rule.rule
        for argument in rule.arguments:
            path = path.replace(f"<path:{argument}>", f"{{{argument}}}").replace(f"<{argument}>", f"{{{argument}}}")
        view = app.view_functions[rule.endpoint]
        doc = (view.__doc__ or rule.endpoint).strip()
        summary, _, description = doc.partition("\n")
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            routes.append(Route(path=path, method=method.lower(), operation_id=f"{rule.endpoint}_{method.lower()}",
                                summary=summary.strip(), description=" ".join(description.split()) or None,
                                path_parameters=tuple(sorted(rule.arguments)), operation=_declared(view)))
    return openapi_document(title=title, version=version, routes=routes)


def error_response(status: int, message: str, *, code: str | None = None, param: str | None = None,
                   headers: dict | None = None):
    response = jsonify(error_body(status, message, code=code, param=param))
    response.status_code = status
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(ApiError)
    def _api_error(exc: ApiError):
        return error_response(exc.status, exc.message, code=exc.code, param=exc.param, headers=exc.headers)

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException):
        messages = {
            404: "not found",
            405: "method not allowed",
            413: "request body too large",
        }
        status = exc.code or 500
        allowed = getattr(exc, "valid_methods", None)
        headers = {"Allow": ", ".join(allowed)} if allowed else None
        return error_response(status, messages.get(status, exc.description or exc.name), headers=headers)

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception):
        log.exception("unhandled error")
        return error_response(500, "internal server error")
