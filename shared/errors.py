"""One error body everywhere, with a fixed status mapping (design.md "Conventions").

`{"error": {"message", "type", "param", "code"}, "message": <same>, "request_id"}`: OpenAI clients read
`error.message`, Jan clients read `message`.
"""
from __future__ import annotations

import logging

from flask import Flask, g, has_app_context, jsonify
from werkzeug.exceptions import HTTPException

log = logging.getLogger("jan.errors")

ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    405: "invalid_request_error",
    409: "conflict",
    410: "gone",
    413: "request_too_large",
    415: "invalid_request_error",
    422: "invalid_request_error",
    429: "rate_limit_error",
    500: "server_error",
    501: "not_implemented",
    502: "upstream_error",
    503: "service_unavailable",
    504: "upstream_timeout",
}


class ApiError(Exception):
    """An error the client should see, with its HTTP status."""

    status = 400

    def __init__(self, message: str, *, status: int | None = None, code: str | None = None,
                 param: str | None = None, headers: dict | None = None):
        super().__init__(message)
        self.message = message
        if status is not None:
            self.status = status
        self.code = code
        self.param = param
        self.headers = headers or {}


class BadRequest(ApiError):
    status = 400


class Unauthorized(ApiError):
    status = 401

    def __init__(self, message: str = "unauthorized", **kwargs):
        super().__init__(message, **kwargs)


class Forbidden(ApiError):
    status = 403


class NotFound(ApiError):
    status = 404


class Conflict(ApiError):
    status = 409


class Gone(ApiError):
    status = 410


class TooManyRequests(ApiError):
    status = 429


class UpstreamError(ApiError):
    """The model provider or another remote service failed (502), timed out (504) or is unavailable (503)."""

    status = 502


def error_body(status: int, message: str, *, code: str | None = None, param: str | None = None,
               error_type: str | None = None, request_id: str | None = None) -> dict:
    """The error body; `request_id` defaults to the Flask request's (ASGI callers pass their own)."""
    return {
        "error": {
            "message": message,
            "type": error_type or ERROR_TYPES.get(status, "server_error" if status >= 500 else "invalid_request_error"),
            "param": param,
            "code": code,
        },
        "message": message,
        "request_id": request_id if request_id is not None else (g.get("request_id") if has_app_context() else None),
    }


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
