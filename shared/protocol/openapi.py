"""A function's OpenAPI 3.1 document from its routes and the models they declare (framework-free: the Flask
adapter lists Flask's routes, an ASGI function lists its own)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable

import msgspec

from shared.protocol import ResponseModel

__all__ = ["ErrorResponse", "Operation", "Route", "openapi_document"]


class ErrorDetail(ResponseModel):
    message: str
    type: str
    param: str | None
    code: str | None


class ErrorResponse(ResponseModel):
    """design.md's one error body: OpenAI clients read `error.message`, Jan clients read `message`."""

    error: ErrorDetail
    message: str
    request_id: str | None


@dataclass(frozen=True)
class Operation:
    """What a route declares: its request body model and its responses (status → model, or None for no body)."""

    request: type | None = None
    request_optional: bool = False
    responses: dict[int, type | None] = field(default_factory=dict)
    query: tuple[dict, ...] = ()  # OpenAPI parameter objects (`in: query`)


@dataclass(frozen=True)
class Route:
    path: str  # OpenAPI template: /v1/conversations/{conversation_id}
    method: str  # lower case
    operation_id: str
    summary: str
    description: str | None
    path_parameters: tuple[str, ...]
    operation: Operation


_REF = "#/components/schemas/{name}"
_BODILESS = {"get", "head", "delete"}


def openapi_document(*, title: str, version: str, routes: Iterable[Route]) -> dict:
    routes = list(routes)
    models = {ErrorResponse}
    for route in routes:
        if route.operation.request is not None:
            models.add(route.operation.request)
        models.update(model for model in route.operation.responses.values() if model is not None)
    ordered = sorted(models, key=lambda model: model.__name__)
    schemas, components = msgspec.json.schema_components(ordered, ref_template=_REF)
    refs = dict(zip(ordered, schemas))
    error = {"description": "The error body (design.md \"Errors\")",
             "content": {"application/json": {"schema": refs[ErrorResponse]}}}

    paths: dict[str, dict] = {}
    for route in routes:
        operation = route.operation
        entry: dict = {
            "summary": route.summary,
            "operationId": route.operation_id,
            "parameters": [*({"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
                             for name in route.path_parameters), *operation.query],
        }
        if route.description:
            entry["description"] = route.description
        if operation.request is not None and route.method not in _BODILESS:
            entry["requestBody"] = {
                "required": not operation.request_optional,
                "content": {"application/json": {"schema": refs[operation.request]}},
            }
        responses: dict[str, dict] = {}
        for status, model in sorted(operation.responses.items()):
            response = {"description": "OK" if status < 300 else "see docs/api.md"}
            if model is not None:
                response["content"] = {"application/json": {"schema": refs[model]}}
            responses[str(status)] = response
        if not responses:
            responses["200"] = {"description": "see docs/api.md"}
        responses["default"] = error
        entry["responses"] = responses
        paths.setdefault(route.path, {})[route.method] = entry
    return {
        "openapi": "3.1.0",
        "info": {"title": title, "version": version},
        "components": {
            "schemas": components,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
            },
        },
        "security": [{"bearer": []}, {"apiKey": []}],
        "paths": paths,
    }
