"""Settings: environment variables parsed once into a typed, frozen object per function.

Every field of a settings dataclass is read from the upper-cased environment variable of the same name.
String fields also accept `<NAME>_FILE` (a path whose contents are the value), so Kubernetes Secrets can be
mounted as files. Defaults are the documented embedded-development values.
"""
from __future__ import annotations

import dataclasses
import os
import typing
from dataclasses import dataclass


class SettingsError(ValueError):
    """A setting has a value that cannot be parsed; raised at start, never per request."""


def _read_raw(name: str, environ: typing.Mapping[str, str]) -> str | None:
    if name in environ:
        return environ[name]
    path = environ.get(f"{name}_FILE")
    if path:
        try:
            with open(path, encoding="utf-8") as handle:
                return handle.read().strip()
        except OSError as exc:
            raise SettingsError(f"{name}_FILE={path!r} cannot be read: {exc}") from exc
    return None


def _convert(name: str, raw: str, kind: typing.Any) -> typing.Any:
    if kind is bool:
        lowered = raw.strip().lower()
        if lowered in {"1", "true", "yes", "on"}:
            return True
        if lowered in {"0", "false", "no", "off", ""}:
            return False
        raise SettingsError(f"{name} must be a boolean, got {raw!r}")
    if kind is int or kind is float:
        try:
            return kind(raw)
        except ValueError as exc:
            raise SettingsError(f"{name} must be a number, got {raw!r}") from exc
    if kind == tuple[str, ...]:
        return tuple(part.strip() for part in raw.split(",") if part.strip())
    return raw


def from_env(cls: type, environ: typing.Mapping[str, str] | None = None, **overrides: typing.Any):
    """Build a settings dataclass from the environment (explicit overrides win, e.g. in tests)."""
    environ = os.environ if environ is None else environ
    hints = typing.get_type_hints(cls)
    values: dict[str, typing.Any] = {}
    for item in dataclasses.fields(cls):
        if item.name in overrides:
            values[item.name] = overrides[item.name]
            continue
        raw = _read_raw(item.name.upper(), environ)
        if raw is None:
            continue
        kind = hints[item.name]
        if typing.get_origin(kind) is typing.Union or isinstance(kind, type(str | None)):
            kind = next(arg for arg in typing.get_args(kind) if arg is not type(None))
        values[item.name] = _convert(item.name.upper(), raw, kind)
    return cls(**values)


@dataclass(frozen=True)
class PlatformSettings:
    """What every function needs. Function settings subclass this and add their own fields."""

    service_name: str = "jan"
    environment: str = "development"
    version: str = "0.1.0"
    log_level: str = "INFO"

    database_url: str = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
    db_pool_size: int = 2
    db_max_overflow: int = 4
    db_pool_timeout_seconds: float = 10.0
    db_statement_timeout_ms: int = 15000
    # PgBouncer in transaction mode rejects startup options and server-side prepared statements: the statement
    # timeout then comes from `ALTER ROLE … SET statement_timeout` (docs/deploy.md).
    db_behind_pgbouncer: bool = False

    max_request_bytes: int = 10 * 1024 * 1024
    # Empty: CORS is left to the gateway (Kong or the dev gateway); set when a function is exposed directly.
    cors_origins: tuple[str, ...] = ()

    # Token verification. JWKS is the public key set of our own issuer (the llm function signs).
    token_issuer: str = "jan-serverless"
    token_audience: str = "jan"
    jwks: str = ""
    # Optional external OIDC issuer (Keycloak) trusted in addition to our own.
    issuer: str = ""
    jwks_url: str = ""
    audience: str = ""
    auth_clock_skew_seconds: int = 60
    # This function's own credential for asking the llm issuer for delegation and service tokens (a Kubernetes
    # Secret; the issuer holds only its SHA-256), and where that issuer is reached inside the cluster.
    service_credential: str = ""
    token_issuer_url: str = "http://127.0.0.1:8080"

    # A header that the proxy in front of the function sets to the client's address (Kong and the dev gateway
    # set `X-Real-IP`), for per-client limits on public routes. Empty: the TCP peer address.
    client_address_header: str = ""

    # Durable jobs (shared/jobs.py). A job runs inside one request, so its maximum duration stays under the
    # Knative Service's timeoutSeconds (600); its lease lasts that long plus the grace, then the sweep requeues it.
    job_max_duration_seconds: float = 540.0
    job_lease_grace_seconds: float = 30.0
    job_max_attempts: int = 5
    # Retry n waits base * 2^(n-1) seconds, at most the maximum.
    job_retry_base_seconds: float = 10.0
    job_retry_max_seconds: float = 3600.0
    # Where each function is reached inside the cluster, for job dispatch: `name=url`, comma-separated.
    function_urls: tuple[str, ...] = ()

    otel_exporter_otlp_endpoint: str = ""
    # Calls to other services (JWKS, OIDC token endpoint); model calls have their own timeouts.
    outbound_timeout_seconds: float = 10.0

