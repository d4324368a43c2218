"""One error body everywhere, with a fixed status mapping (design.md "Conventions").

`{"error": {"message", "type", "param", "code"}, "message": <same>, "request_id"}`: OpenAI clients read
`error.message`, Jan clients read `message`. Framework-free (the request id comes from shared.context); the Flask
handlers that render these errors are in shared.protocol.flask.
"""
from __future__ import annotations

from shared import context

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
    """The error body; `request_id` defaults to the request context's (shared.context)."""
    return {
        "error": {
            "message": message,
            "type": error_type or ERROR_TYPES.get(status, "server_error" if status >= 500 else "invalid_request_error"),
            "param": param,
            "code": code,
        },
        "message": message,
        "request_id": request_id if request_id is not None else (
            request.request_id if (request := context.current()) else None),
    }
