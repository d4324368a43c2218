"""`make new-function NAME=notes [PORT=8092]`: a new function's folder, manifest, Kong routes and first test.

Writes functions/<name>/ (function.toml with the next free port, main.py, an app factory on shared/app.py,
settings, one authenticated route), the pyproject extra its image installs, its Kong service and routes in
gateway/kong.yml (and its internal paths, /<name>/metrics and the rest, in the internal-blocked route), tests/<name>/test_<name>.py, and then
the generated deploy files (python -m knative.functions write). The dev stack, the image, the Knative Service and
the deploy checks follow from the manifest with no further edits.
"""
from __future__ import annotations

import argparse
import re
import sys
import tomllib
from pathlib import Path

from shared import function_manifest

ROOT = function_manifest.ROOT
FIRST_PORT = 8081
# Ports the local stack uses for itself: the gateway and the local model server.
RESERVED_PORTS = {8000, 8101}


class ScaffoldError(ValueError):
    pass


def next_free_port(root: Path) -> int:
    used = {manifest.port for manifest in function_manifest.all_manifests(root).values()} | RESERVED_PORTS
    port = FIRST_PORT
    while port in used:
        port += 1
    return port


def class_prefix(name: str) -> str:
    return name[0].upper() + name[1:]


def files(name: str, port: int) -> dict[str, str]:
    title = class_prefix(name)
    return {
        f"functions/{name}/function.toml": f'''# What the platform derives for this function (docs/architecture.md "The function manifest").
name = "{name}"
port = {port}
server = "wsgi"
app = "functions.{name}.main:app"
extra = "{name}"
visibility = "public"
''',
        f"functions/{name}/__init__.py": f'"""The {name} function."""\n',
        f"functions/{name}/main.py": f'''"""Entry point: `python -m shared.serve {name}` (the image) or the dev stack serves this app."""
from functions.{name}.app import create_app

app = create_app()
''',
        f"functions/{name}/settings.py": f'''"""The {name} function's settings: the platform's plus its own (each field is an environment variable)."""
from __future__ import annotations

from dataclasses import dataclass

from shared.settings import PlatformSettings, from_env


@dataclass(frozen=True)
class {title}Settings(PlatformSettings):
    service_name: str = "{name}"


def load_settings() -> {title}Settings:
    return from_env({title}Settings)
''',
        f"functions/{name}/app.py": f'''"""The {name} function's app: the shared factory (health, version, metrics, OpenAPI, errors, auth) plus this
function's blueprints."""
from __future__ import annotations

from flask import Flask

from functions.{name}.routes import bp
from functions.{name}.settings import {title}Settings, load_settings

BLUEPRINTS = (bp,)


def create_app(settings: {title}Settings | None = None) -> Flask:
    from shared.app import create_app as create_platform_app

    return create_platform_app(settings or load_settings(), BLUEPRINTS)
''',
        f"functions/{name}/routes.py": f'''"""The {name} function's routes: thin shells (parse, authorise, call a service, shape the response)."""
from __future__ import annotations

from flask import Blueprint

from shared.auth import authenticated, current_principal

bp = Blueprint("{name}", __name__, url_prefix="/v1/{name}")


@bp.get("/whoami")
@authenticated
def whoami():
    """The caller, as this function authenticated them (every function authenticates every request itself)."""
    principal = current_principal()
    return {{"object": "{name}.caller", "user_id": principal.public_id, "auth_method": principal.auth_method}}
''',
        f"tests/{name}/test_{name}.py": f'''"""The {name} function: health through the shared factory, and its route authenticates every request (a token
the llm function issued is accepted; none, or a forged one, is 401)."""
from __future__ import annotations

import pytest

from shared.settings import from_env


@pytest.fixture(scope="module")
def {name}_client(llm_env):
    from functions.{name}.app import create_app
    from functions.{name}.settings import {title}Settings

    return create_app(from_env({title}Settings, environ=llm_env)).test_client()


def test_health_and_version({name}_client):
    assert {name}_client.get("/healthz").status_code == 200
    assert {name}_client.get("/readyz").status_code == 200
    assert {name}_client.get("/version").json["service"] == "{name}"


def test_the_route_needs_credentials({name}_client):
    for headers in ({{}}, {{"Authorization": "Bearer not-a-token"}}):
        response = {name}_client.get("/v1/{name}/whoami", headers=headers)
        assert response.status_code == 401
        assert response.json["error"]["type"] == "authentication_error"


def test_a_token_from_the_issuer_is_accepted({name}_client, guest):
    response = {name}_client.get("/v1/{name}/whoami", headers=guest.headers)
    assert response.status_code == 200, response.json
    assert response.json == {{"object": "{name}.caller", "user_id": guest.user_id, "auth_method": "jwt"}}
''',
    }


def kong_service(name: str) -> str:
    return f'''  - name: {name}
    url: http://{name}.jan.svc.cluster.local
    connect_timeout: 10000
    read_timeout: 600000
    write_timeout: 600000
    plugins:
      # One counter per client across the function's routes, in the Redis every instance shares (*redis).
      - name: rate-limiting
        config: {{minute: 120, hour: 3000, limit_by: ip, policy: redis, fault_tolerant: true, redis: *redis}}
    routes:
      # Jan's prefixed form: /{name}/v1/... -> /v1/...
      - name: {name}-prefixed
        paths: [/{name}]
        strip_path: true
        preserve_host: false
      # Its resources at the root; the longer prefix wins over the llm function's /v1.
      - name: {name}-v1
        paths: [/v1/{name}]
        strip_path: false
        preserve_host: false

'''


def with_kong_routes(text: str, name: str) -> str:
    """kong.yml with the function's service added before the global plugins and its internal paths blocked."""
    if re.search(rf"^  - name: {name}$", text, re.M):
        raise ScaffoldError(f"gateway/kong.yml already has a service {name}")
    blocked = re.compile(r"(- name: internal-blocked\n\s+paths: \[)([^\]]*)\]")
    if not blocked.search(text) or "\nplugins:\n" not in text:
        raise ScaffoldError("gateway/kong.yml has no internal-blocked route or no global plugins section")
    own = ", ".join(f"/{name}{path}" for path in function_manifest.INTERNAL_PATHS)
    text = blocked.sub(lambda m: f"{m.group(1)}{m.group(2)}, {own}]", text, count=1)
    return text.replace("\nplugins:\n", "\n" + kong_service(name).rstrip("\n") + "\n\nplugins:\n", 1)


def with_extra(text: str, name: str) -> str:
    """pyproject.toml with the function's (empty) dependency group first under the optional dependencies."""
    header = "[project.optional-dependencies]\n"
    if header not in text:
        raise ScaffoldError("pyproject.toml has no [project.optional-dependencies]")
    if name in tomllib.loads(text)["project"].get("optional-dependencies", {}):
        return text
    head, tail = text.split(header, 1)
    comments = re.match(r"(?:#[^\n]*\n)*", tail).group(0)
    group = f"# The {name} function's image (besides the core dependencies).\n{name} = []\n"
    updated = head + header + comments + group + tail[len(comments):]
    tomllib.loads(updated)
    return updated


def scaffold(name: str, port: int | None = None, root: Path = ROOT) -> list[Path]:
    if not re.fullmatch(r"[a-z][a-z0-9]{1,30}", name):
        raise ScaffoldError(f"NAME={name!r}: 2-31 lowercase letters and digits, starting with a letter")
    if (root / "functions" / name).exists():
        raise ScaffoldError(f"functions/{name} already exists")
    port = port or next_free_port(root)
    taken = {m.port: m.name for m in function_manifest.all_manifests(root).values()}
    if port in taken or port in RESERVED_PORTS:
        raise ScaffoldError(f"port {port} is taken ({taken.get(port, 'the local stack')})")
    kong, pyproject = root / "gateway" / "kong.yml", root / "pyproject.toml"
    kong_text, pyproject_text = with_kong_routes(kong.read_text(), name), with_extra(pyproject.read_text(), name)
    written = []
    for relative, text in files(name, port).items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        written.append(path)
    kong.write_text(kong_text)
    pyproject.write_text(pyproject_text)
    from knative import functions

    return written + [kong, pyproject] + [root / path for path in functions.write(root)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dev.new_function", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("name")
    parser.add_argument("--port", type=int, help="its local port (default: the next free one above 8080)")
    args = parser.parse_args(argv)
    try:
        written = scaffold(args.name, args.port)
    except (ScaffoldError, function_manifest.ManifestError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    for path in written:
        print(f"wrote {path.relative_to(ROOT)}")
    print(f"next: make venv (its dependency group), then `make test-fast`; `make run` starts it on "
          f":{function_manifest.function(args.name).port}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
