"""functions/<name>/function.toml: what a function declares, read in one place (docs/architecture.md).

The dev stack, the image's launcher (shared/serve.py), the Knative and skaffold renders (knative/functions.py), the
deploy checks and `make new-function` all read manifests through this module. It imports only the standard
library, so the launcher and the Makefile can use it before anything else is installed.

    python -m shared.function_manifest extras     # every function's pyproject extra, comma-separated
"""
from __future__ import annotations

import re
import sys
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FILENAME = "function.toml"
SERVERS = ("wsgi", "asgi")
VISIBILITIES = ("public", "internal")
# The pyproject extra an ASGI image adds to its own: the server (uvicorn); WSGI's gunicorn is a core dependency.
ASGI_EXTRA = "asgi"
# Files of the jan-keys Secret a function may mount, and the variable that names each one's path.
KEY_FILES = {
    "token-signing-key": ("token-signing-key.pem", "TOKEN_SIGNING_KEY_FILE"),
    "provider-key-encryption-key": ("provider-key-encryption.key", "PROVIDER_KEY_ENCRYPTION_KEY_FILE"),
}
# Paths every function serves (or serves below) that Kong must not route: Prometheus scrapes /metrics inside the
# cluster, /version and /openapi.json describe the build and every route (for operators and the fuzzers, not the
# public), and /internal/... is for other functions (token minting, job runs).
INTERNAL_PATHS = ("/metrics", "/version", "/openapi.json", "/internal")
_SECRET_ENV = re.compile(r"[A-Z][A-Z0-9_]*=[a-z0-9][a-z0-9.-]*/[A-Za-z0-9._-]+")
_NAME = re.compile(r"[a-z][a-z0-9]{1,30}")


class ManifestError(ValueError):
    pass


@dataclass(frozen=True)
class FunctionManifest:
    # The five agreed keys.
    name: str
    port: int
    server: str
    app: str
    extra: str
    visibility: str
    # Optional keys: the Knative Service's scaling, time limits and resources, and the keys it mounts.
    # min_scale >= 1 keeps that many pods warm (always on): for parts whose cold start or background loop cannot wait.
    min_scale: int = 0
    concurrency_target: int = 100
    container_concurrency: int = 250
    max_scale: int = 20
    timeout_seconds: int = 600
    response_start_timeout_seconds: int = 300
    cpu_request: str = "250m"
    memory_request: str = "256Mi"
    memory_limit: str = "512Mi"
    keys: tuple[str, ...] = ()
    # Public paths whose responses stream (SSE): every Kong route that can carry them must not buffer.
    streaming_paths: tuple[str, ...] = ()
    # Variables read from Secrets the operator creates: "VARIABLE=secret-name/key" (e.g. the LiveKit key pair).
    secret_env: tuple[str, ...] = ()
    folder: Path = field(default=Path("."), compare=False)

    @property
    def public(self) -> bool:
        return self.visibility == "public"

    @property
    def always_on(self) -> bool:
        return self.min_scale >= 1

    @property
    def issuer(self) -> bool:
        """The token issuer is the function holding the signing key (llm)."""
        return "token-signing-key" in self.keys

    @property
    def secrets(self) -> list[tuple[str, str, str]]:
        """(variable, Secret name, key) of each secret_env entry."""
        return [(variable, *reference.split("/", 1)) for variable, reference in
                (item.split("=", 1) for item in self.secret_env)]

    @property
    def image(self) -> str:
        return f"jan-{self.name}"

    @property
    def image_extras(self) -> list[str]:
        """The pyproject extras the function's image installs (besides the core dependencies)."""
        return [self.extra, ASGI_EXTRA] if self.server == "asgi" else [self.extra]

    @property
    def build_args(self) -> dict[str, str]:
        """The Dockerfile build arguments of the function's image."""
        return {"FUNCTION": self.name, "EXTRAS": ",".join(self.image_extras)}

    def server_argv(self, environ: dict[str, str]) -> list[str]:
        """The server's command line after `python -m`: gunicorn (gevent workers) for wsgi, uvicorn for asgi.
        Both listen on HOST:PORT of `environ` (Knative sets PORT)."""
        if self.server == "wsgi":
            return ["gunicorn", "--config", "python:shared.gunicorn_conf", self.app]
        return ["uvicorn", "--host", environ.get("HOST", "0.0.0.0"), "--port", environ.get("PORT", "8080"),
                # Knative sends SIGTERM and waits: drain in-flight requests first, as gunicorn's graceful_timeout.
                "--timeout-graceful-shutdown", environ.get("UVICORN_TIMEOUT_GRACEFUL_SHUTDOWN", "30"),
                "--no-access-log", "--log-level", environ.get("LOG_LEVEL", "info").lower(), self.app]


REQUIRED = ("name", "port", "server", "app", "extra", "visibility")
# Every key a manifest may hold, with its TOML type (the annotations are strings: `from __future__ import
# annotations`); the lists are lists of strings.
_KINDS = {f.name: {"int": int, "str": str}.get(f.type, list) for f in fields(FunctionManifest) if f.name != "folder"}
_KIND_NAMES = {int: "an integer", str: "a string", list: "a list of strings"}


def load(path: Path) -> FunctionManifest:
    """One manifest, checked: every required key, no unknown key, values of the right kind and range."""
    try:
        raw = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as error:
        raise ManifestError(f"{path}: not valid TOML: {error}") from None
    where = str(path)
    missing = [key for key in REQUIRED if key not in raw]
    if missing:
        raise ManifestError(f"{where}: missing {', '.join(missing)}")
    unknown = sorted(set(raw) - set(_KINDS))
    if unknown:
        raise ManifestError(f"{where}: unknown keys {', '.join(unknown)} (known: {', '.join(_KINDS)})")
    for key, value in raw.items():
        kind = _KINDS[key]
        strings_only = not isinstance(value, list) or all(isinstance(item, str) for item in value)
        if not isinstance(value, kind) or isinstance(value, bool) or not strings_only:
            raise ManifestError(f"{where}: {key} must be {_KIND_NAMES[kind]}")
    name = raw["name"]
    if name != path.parent.name:
        raise ManifestError(f"{where}: name {name!r} must be the folder's name {path.parent.name!r}")
    if not _NAME.fullmatch(name):
        raise ManifestError(f"{where}: name {name!r} must be 2-31 lowercase letters and digits (a DNS label)")
    if not 1024 <= raw["port"] <= 65535:
        raise ManifestError(f"{where}: port {raw['port']} must be between 1024 and 65535")
    if raw["server"] not in SERVERS:
        raise ManifestError(f"{where}: server must be one of {', '.join(SERVERS)}, not {raw['server']!r}")
    if raw["visibility"] not in VISIBILITIES:
        raise ManifestError(f"{where}: visibility must be one of {', '.join(VISIBILITIES)}")
    if not re.fullmatch(rf"functions\.{name}(\.\w+)+:\w+", raw["app"]):
        raise ManifestError(f"{where}: app must be functions.{name}.<module>:<object>, not {raw['app']!r}")
    unknown_keys = sorted(set(raw.get("keys", [])) - set(KEY_FILES))
    if unknown_keys:
        raise ManifestError(f"{where}: keys {unknown_keys} unknown (known: {', '.join(KEY_FILES)})")
    if not 0 <= raw.get("min_scale", 0) <= raw.get("max_scale", FunctionManifest.max_scale):
        raise ManifestError(f"{where}: min_scale must be between 0 and max_scale")
    if any(not public_path.startswith("/") for public_path in raw.get("streaming_paths", [])):
        raise ManifestError(f"{where}: streaming_paths are public paths, each starting with /")
    if any(not _SECRET_ENV.fullmatch(item) for item in raw.get("secret_env", [])):
        raise ManifestError(f"{where}: secret_env entries are VARIABLE=secret-name/key")
    lists = {key: tuple(raw[key]) for key, kind in _KINDS.items() if kind is list and key in raw}
    return FunctionManifest(**{**raw, **lists}, folder=path.parent)


def all_manifests(root: Path = ROOT) -> dict[str, FunctionManifest]:
    """Every function of the platform, by name: each functions/<name>/function.toml. Ports must be unique."""
    manifests = {path.parent.name: load(path) for path in sorted((root / "functions").glob(f"*/{FILENAME}"))}
    by_port: dict[int, str] = {}
    for manifest in manifests.values():
        if manifest.port in by_port:
            raise ManifestError(f"functions {by_port[manifest.port]} and {manifest.name} both use port "
                                f"{manifest.port}")
        by_port[manifest.port] = manifest.name
    return manifests


def function(name: str, root: Path = ROOT) -> FunctionManifest:
    path = root / "functions" / name / FILENAME
    if not path.is_file():
        raise ManifestError(f"no function {name!r}: {path} does not exist")
    return load(path)


def main(argv: list[str]) -> int:
    if argv == ["extras"]:
        extras = dict.fromkeys(extra for m in all_manifests().values() for extra in m.image_extras)
        print(",".join(extras))
        return 0
    print(__doc__.strip().splitlines()[-1].strip(), file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
