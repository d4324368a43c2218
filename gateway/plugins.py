"""The Kong plugins the dev gateway emulates, one instance per route after Kong's precedence (route over service
over global). They run in Kong's priority order: cors (2000), request-size-limiting (951), request-termination (2).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from gateway.cors import Cors
from gateway.cors import SUPPORTED_KEYS as CORS_KEYS

# Accepted in kong.yml and enforced only by Kong: the dev gateway serves one developer.
NOT_EMULATED = frozenset({"rate-limiting"})

_SIZE_UNITS = {"bytes": 1, "kilobytes": 2**10, "megabytes": 2**20}
# Kong's request-termination answers these when no message or body is configured.
_DEFAULT_MESSAGES = {401: "Unauthorized", 404: "Not found", 405: "Method not allowed",
                     500: "An unexpected error occurred", 502: "Bad Gateway", 503: "Service unavailable"}


class PluginConfigError(ValueError):
    pass


def kong_json(message: str) -> bytes:
    """A body as Kong's own responses carry it (cjson: no spaces)."""
    return json.dumps({"message": message}, separators=(",", ":")).encode()


@dataclass(frozen=True)
class SizeLimit:
    max_bytes: int

    @classmethod
    def from_config(cls, config: dict) -> SizeLimit:
        _check_keys("request-size-limiting", config, {"allowed_payload_size", "size_unit"})
        unit = config.get("size_unit", "megabytes")
        if unit not in _SIZE_UNITS:
            raise PluginConfigError(f"request-size-limiting: unknown size_unit {unit!r}")
        return cls(int(config.get("allowed_payload_size", 128)) * _SIZE_UNITS[unit])


@dataclass(frozen=True)
class Termination:
    status: int
    body: bytes
    content_type: str

    @classmethod
    def from_config(cls, config: dict) -> Termination:
        _check_keys("request-termination", config, {"status_code", "message", "body", "content_type"})
        status = int(config.get("status_code", 503))
        if config.get("body") is not None:
            return cls(status, str(config["body"]).encode(), config.get("content_type") or "application/json")
        message = config.get("message") or _DEFAULT_MESSAGES.get(status, "")
        return cls(status, kong_json(message), "application/json; charset=utf-8")


@dataclass(frozen=True)
class RoutePlugins:
    cors: Cors | None = None
    size_limit: SizeLimit | None = None
    termination: Termination | None = None


def build_route_plugins(configs: dict[str, dict]) -> RoutePlugins:
    """From the effective plugin configs of one route (plugin name -> config)."""
    unknown = set(configs) - {"cors", "request-size-limiting", "request-termination"} - NOT_EMULATED
    if unknown:
        raise PluginConfigError(f"plugin(s) {sorted(unknown)} are not emulated by the dev gateway")
    cors = configs.get("cors")
    if cors is not None:
        _check_keys("cors", cors, CORS_KEYS)
        if cors.get("credentials") and (not cors.get("origins") or "*" in cors["origins"]):
            # Kong would echo every Origin with Allow-Credentials: any site could read credentialed responses.
            raise PluginConfigError("cors: credentials with any origin ('*' or none listed) echo every Origin")
        try:
            cors = Cors(cors)
        except re.error as error:
            raise PluginConfigError(f"cors: origin pattern {error.pattern!r}: {error}") from None
    size = configs.get("request-size-limiting")
    termination = configs.get("request-termination")
    return RoutePlugins(
        cors=cors,
        size_limit=SizeLimit.from_config(size) if size is not None else None,
        termination=Termination.from_config(termination) if termination is not None else None,
    )


def _check_keys(plugin: str, config: dict, supported: set[str] | frozenset[str]) -> None:
    unsupported = set(config) - set(supported)
    if unsupported:
        raise PluginConfigError(f"{plugin}: config key(s) {sorted(unsupported)} are not emulated by the dev gateway")
