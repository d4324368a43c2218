"""Telemetry: request ids, W3C trace context, JSON logs, Prometheus metrics and (optionally) OpenTelemetry.

With no OTLP endpoint configured, tracing costs one header parse per request: the incoming `traceparent` is
kept (or a new trace id made) so logs and outbound calls still correlate. With an endpoint, the OpenTelemetry
SDK is imported and each request becomes a server span exported over OTLP/HTTP.
"""
from __future__ import annotations

import json
import logging
import os
import re
import sys
import time
import uuid
from dataclasses import replace

from flask import Flask, g, request

from shared import context
from shared.settings import PlatformSettings

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
_TRACEPARENT = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")


class JsonLogFormatter(logging.Formatter):
    """One JSON object per line, with the request and trace ids of the request being served."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        current = context.current()
        if current is not None:
            entry["request_id"] = current.request_id
            entry["trace_id"] = current.trace_id
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def configure_logging(settings: PlatformSettings) -> None:
    root = logging.getLogger()
    if any(isinstance(handler.formatter, JsonLogFormatter) for handler in root.handlers):
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonLogFormatter())
    root.handlers[:] = [handler]
    root.setLevel(settings.log_level.upper())


def _trace_context(incoming: str | None) -> tuple[str, str]:
    """(trace id, traceparent to send onward): continue the caller's trace, or start one."""
    match = _TRACEPARENT.match(incoming or "")
    trace_id = match.group(1) if match else os.urandom(16).hex()
    flags = match.group(3) if match else "01"
    return trace_id, f"00-{trace_id}-{os.urandom(8).hex()}-{flags}"


def install_request_context(app: Flask) -> None:
    """The Flask side of shared.context: set when a request starts, reset when its context ends (after the
    last chunk of a streamed response)."""

    @app.before_request
    def _start():
        g.started = time.perf_counter()
        incoming = request.headers.get("X-Request-Id", "")
        request_id = incoming if _REQUEST_ID.match(incoming) else str(uuid.uuid4())
        trace_id, traceparent = _trace_context(request.headers.get("traceparent"))
        g.request_context = context.enter(context.RequestContext(request_id, trace_id, traceparent))

    @app.teardown_request
    def _end(_exc):
        token = g.pop("request_context", None)
        if token is not None:
            context.leave(token)

    @app.after_request
    def _identify(response):
        current = context.current()
        response.headers["X-Request-Id"] = current.request_id if current else ""
        principal = g.get("principal")
        if principal is not None:
            response.headers["X-Auth-Method"] = principal.auth_method
            response.headers["X-Principal-Id"] = principal.public_id
            response.headers["X-User-ID"] = principal.public_id
        return response


def install_metrics(app: Flask, service_name: str) -> None:
    from prometheus_client import CollectorRegistry, GCCollector, PlatformCollector, ProcessCollector
    from prometheus_flask_exporter import PrometheusMetrics

    # A registry per app, so /metrics always reports this app's requests and a second app in one process
    # (tests, tools) neither fails on duplicate metric names nor silently loses its request metrics.
    registry = CollectorRegistry(auto_describe=True)
    for collector in (ProcessCollector, PlatformCollector, GCCollector):
        collector(registry=registry)
    metrics = PrometheusMetrics(app, path="/metrics", group_by="url_rule", default_labels={"service": service_name},
                                excluded_paths=["/healthz", "/readyz", "/metrics"], registry=registry)
    metrics.info("jan_function_info", "Function build info", service=service_name)


def install_tracing(app: Flask, settings: PlatformSettings) -> None:
    if not settings.otel_exporter_otlp_endpoint:
        return
    from opentelemetry import context as otel_context, trace
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.propagate import extract, inject
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    provider = TracerProvider(resource=Resource.create({"service.name": settings.service_name}))
    provider.add_span_processor(BatchSpanProcessor(
        OTLPSpanExporter(endpoint=settings.otel_exporter_otlp_endpoint.rstrip("/") + "/v1/traces")))
    trace.set_tracer_provider(provider)
    tracer = trace.get_tracer("jan")

    @app.before_request
    def _open_span():
        token = otel_context.attach(extract({name.lower(): value for name, value in request.headers.items()}))
        span = tracer.start_span(f"{request.method} {request.url_rule.rule if request.url_rule else request.path}",
                                 kind=trace.SpanKind.SERVER)
        g.otel = (token, span, otel_context.attach(trace.set_span_in_context(span)))
        carrier: dict[str, str] = {}
        inject(carrier)
        current = context.current()
        context.enter(replace(current, trace_id=format(span.get_span_context().trace_id, "032x"),
                                  traceparent=carrier.get("traceparent", current.traceparent)))

    @app.teardown_request
    def _close_span(_exc):
        opened = g.pop("otel", None)
        if opened is None:
            return
        token, span, span_token = opened
        span.end()
        otel_context.detach(span_token)
        otel_context.detach(token)
