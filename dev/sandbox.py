"""The dev sandbox: a SandboxFusion-compatible code runner for the local stack (`python -m dev.sandbox`).

It speaks SandboxFusion's wire protocol (`POST /run_code`, `GET /v1/ping`) for Python only, on 127.0.0.1 only, and
is off unless DEV_SANDBOX_ENABLED=true starts it with the stack. Each run is a fresh `python -I` in a fresh temporary
directory with a minimal environment, limited by rlimits set between fork and exec: CPU seconds, address space,
process count, file size, open files, no core dumps; a wall-clock limit kills its process group; stdout and stderr
are cut at a byte limit. Where the OS allows, the run gets its own network namespace (nothing but a downed loopback:
no network at all) and, started as root, runs as an unprivileged user. What this does not isolate on a laptop is in
docs/sandbox.md: it is a development convenience, not a security boundary; production runs SandboxFusion under
gVisor (knative/components/sandbox).
"""
from __future__ import annotations

import base64
import ctypes
import json
import logging
import math
import os
import pwd
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Mapping

from shared.settings import from_env

log = logging.getLogger("jan.dev.sandbox")

HOST = "127.0.0.1"
# SandboxFusion's RunCodeRequest.language values; only python runs here, the rest get a SandboxError.
LANGUAGES = ('python', 'cpp', 'nodejs', 'go', 'go_test', 'java', 'php', 'csharp', 'bash', 'typescript', 'sql',
             'rust', 'cuda', 'lua', 'R', 'perl', 'D_ut', 'ruby', 'scala', 'julia', 'pytest', 'junit',
             'kotlin_script', 'jest', 'verilog', 'python_gpu', 'lean', 'swift', 'racket')
MAX_REQUEST_BYTES = 8 * 1024 * 1024
TRUNCATION_NOTE = "\n[output truncated: more than {limit} bytes]"

_CLONE_NEWNET = 0x40000000
_CLONE_NEWUSER = 0x10000000
_libc = ctypes.CDLL(None, use_errno=True)


@dataclass(frozen=True)
class DevSandboxSettings:
    # Read by the dev stack: start this service (and point the mcp function at it) only when true.
    dev_sandbox_enabled: bool = False
    dev_sandbox_port: int = 8190
    # A request's run_timeout (SandboxFusion's default 10 s) is capped here; memory_limit_MB -1 means this cap.
    dev_sandbox_max_run_timeout_seconds: float = 30.0
    dev_sandbox_memory_limit_mb: int = 512
    dev_sandbox_max_processes: int = 16
    dev_sandbox_max_file_bytes: int = 16 * 1024 * 1024
    dev_sandbox_max_output_bytes: int = 1024 * 1024
    dev_sandbox_max_concurrent_runs: int = 2
    # Started as root, runs execute as this user (who must not own anything worth protecting).
    dev_sandbox_user: str = "nobody"
    # True: refuse to start where no network namespace can be made, instead of running code with network access.
    dev_sandbox_require_network_isolation: bool = False
    # The interpreter runs use. Empty: this process's own, or the system's python3 when the run user cannot start
    # that one (a virtualenv under a private home directory).
    dev_sandbox_python: str = ""


class RequestInvalid(ValueError):
    """A request SandboxFusion's FastAPI app would answer 422; `detail` is pydantic's error list."""

    def __init__(self, detail: list[dict]):
        super().__init__(detail[0]["msg"])
        self.detail = detail


@dataclass(frozen=True)
class RunRequest:
    code: str
    language: str
    run_timeout: float
    memory_limit_mb: int
    stdin: str | None
    files: dict
    fetch_files: list


@dataclass(frozen=True)
class Isolation:
    """What each run gets beyond rlimits, decided once at start by trying it."""

    python: str
    network_namespace: str  # "" (none), "root" (CLONE_NEWNET) or "user" (CLONE_NEWUSER | CLONE_NEWNET)
    run_as_uid: int | None
    run_as_gid: int | None

    def describe(self) -> dict:
        return {
            "python": self.python,
            "network": {"root": "own network namespace", "user": "own user and network namespace",
                        "": "NOT isolated: runs can reach the network"}[self.network_namespace],
            "user": f"uid {self.run_as_uid}" if self.run_as_uid is not None else "the user running the sandbox",
        }


def parse_request(body: bytes) -> RunRequest:
    try:
        data = json.loads(body)
    except ValueError as exc:
        raise RequestInvalid([{"type": "json_invalid", "loc": ["body", 0], "msg": "JSON decode error",
                               "ctx": {"error": str(exc)}}]) from None
    if not isinstance(data, dict):
        raise RequestInvalid([_problem("model_attributes_type", [], "Input should be a valid dictionary", data)])
    problems = []
    for name in ("code", "language"):
        if name not in data:
            problems.append(_problem("missing", [name], "Field required", data))
        elif not isinstance(data[name], str):
            problems.append(_problem("string_type", [name], "Input should be a valid string", data[name]))
    if isinstance(data.get("language"), str) and data["language"] not in LANGUAGES:
        allowed = ", ".join(f"'{name}'" for name in LANGUAGES)
        problems.append(_problem("literal_error", ["language"], f"Input should be {allowed}", data["language"]))
    for name, default in (("run_timeout", 10), ("compile_timeout", 10), ("memory_limit_MB", -1)):
        value = data.get(name, default)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            problems.append(_problem("float_type", [name], "Input should be a valid number", value))
    if data.get("stdin") is not None and not isinstance(data["stdin"], str):
        problems.append(_problem("string_type", ["stdin"], "Input should be a valid string", data["stdin"]))
    files = data.get("files", {})
    if not isinstance(files, dict) or not all(isinstance(v, (str, type(None))) for v in files.values()):
        problems.append(_problem("dict_type", ["files"], "Input should be a valid dictionary of strings", files))
    fetch = data.get("fetch_files", [])
    if not isinstance(fetch, list) or not all(isinstance(v, str) for v in fetch):
        problems.append(_problem("list_type", ["fetch_files"], "Input should be a valid list of strings", fetch))
    if problems:
        raise RequestInvalid(problems)
    return RunRequest(code=data["code"], language=data["language"], run_timeout=float(data.get("run_timeout", 10)),
                      memory_limit_mb=int(data.get("memory_limit_MB", -1)), stdin=data.get("stdin"),
                      files=files, fetch_files=fetch)


def _problem(kind: str, loc: list, msg: str, value) -> dict:
    return {"type": kind, "loc": ["body", *loc], "msg": msg, "input": value}


class Runner:
    """Runs one request at a time per slot (max_concurrent_runs slots), each in a fresh limited child."""

    def __init__(self, settings: DevSandboxSettings, isolation: Isolation):
        self.settings = settings
        self.isolation = isolation
        self._slots = threading.BoundedSemaphore(settings.dev_sandbox_max_concurrent_runs)

    def run(self, request: RunRequest) -> dict:
        response = {"status": "Success", "message": "", "compile_result": None, "run_result": None,
                    "executor_pod_name": None, "files": {}}
        if request.language != "python":
            response.update(status="SandboxError",
                            message=f"language {request.language!r} is not available in the dev sandbox (python only)")
            return response
        with self._slots, tempfile.TemporaryDirectory(prefix="jan-sandbox-",
                                                     ignore_cleanup_errors=True) as workdir:
            try:
                _restore_files(Path(workdir), request.files)
            except ValueError as exc:
                response.update(status="SandboxError", message=str(exc))
                return response
            script = Path(workdir, "main.py")
            script.write_text(request.code, encoding="utf-8")
            self._hand_over(Path(workdir))
            run_result = self._execute(request, workdir, script)
            response["run_result"] = run_result
            response["files"] = _fetch_files(Path(workdir), request.fetch_files,
                                             self.settings.dev_sandbox_max_file_bytes)
        if run_result["status"] == "TimeLimitExceeded" or run_result["return_code"] != 0:
            response["status"] = "Failed"
        return response

    def _hand_over(self, workdir: Path) -> None:
        """The run's user owns its working directory and nothing else."""
        if self.isolation.run_as_uid is None:
            return
        for path in [workdir, *workdir.rglob("*")]:
            os.chown(path, self.isolation.run_as_uid, self.isolation.run_as_gid, follow_symlinks=False)

    def _execute(self, request: RunRequest, workdir: str, script: Path) -> dict:
        timeout = max(0.1, min(request.run_timeout, self.settings.dev_sandbox_max_run_timeout_seconds))
        cap_mb = self.settings.dev_sandbox_memory_limit_mb
        memory_mb = cap_mb if request.memory_limit_mb <= 0 else min(request.memory_limit_mb, cap_mb)
        limits = _Limits(
            cpu_seconds=math.ceil(timeout) + 1,
            memory_bytes=memory_mb * 1024 * 1024,
            processes=_tasks_of(self.isolation.run_as_uid if self.isolation.run_as_uid is not None else os.getuid())
            + self.settings.dev_sandbox_max_processes,
            file_bytes=self.settings.dev_sandbox_max_file_bytes,
        )
        env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": workdir, "TMPDIR": workdir, "LANG": "C.UTF-8",
               "PYTHONDONTWRITEBYTECODE": "1"}
        started = time.monotonic()
        child = subprocess.Popen(
            [self.isolation.python, "-I", str(script)], cwd=workdir, env=env,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            start_new_session=True, close_fds=True,
            preexec_fn=_child_setup(limits, self.isolation),
        )
        cap = self.settings.dev_sandbox_max_output_bytes
        stdout, stderr = _Capture(child.stdout, cap), _Capture(child.stderr, cap)
        feeder = threading.Thread(target=_feed, args=(child.stdin, request.stdin), daemon=True)
        feeder.start()
        timed_out = False
        try:
            child.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
        elapsed = time.monotonic() - started
        _kill_group(child)
        child.wait()
        stdout.join()
        stderr.join()
        return {
            "status": "TimeLimitExceeded" if timed_out else "Finished",
            "execution_time": round(elapsed, 6),
            "return_code": None if timed_out else child.returncode,
            "stdout": stdout.text(),
            "stderr": stderr.text(),
        }


@dataclass(frozen=True)
class _Limits:
    cpu_seconds: int
    memory_bytes: int
    processes: int
    file_bytes: int


def _child_setup(limits: _Limits, isolation: Isolation):
    """The preexec step (after fork, before exec): only syscalls, everything computed beforehand."""
    uid, gid = os.getuid(), os.getgid()
    maps = (b"deny", f"{uid} {uid} 1".encode(), f"{gid} {gid} 1".encode())

    # Never above the current hard limit: raising it needs CAP_SYS_RESOURCE, which even root may lack (containers).
    rlimits = [(which, _lowered(which, soft), _lowered(which, hard)) for which, soft, hard in (
        (resource.RLIMIT_CPU, limits.cpu_seconds, limits.cpu_seconds + 1),
        (resource.RLIMIT_AS, limits.memory_bytes, limits.memory_bytes),
        (resource.RLIMIT_NPROC, limits.processes, limits.processes),
        (resource.RLIMIT_FSIZE, limits.file_bytes, limits.file_bytes),
        (resource.RLIMIT_NOFILE, 64, 64),
        (resource.RLIMIT_CORE, 0, 0),
    )]

    def setup() -> None:
        if isolation.network_namespace:
            _enter_network_namespace(isolation.network_namespace, maps)
        for which, soft, hard in rlimits:
            resource.setrlimit(which, (soft, hard))
        if isolation.run_as_uid is not None:
            os.setgroups([])
            os.setgid(isolation.run_as_gid)
            os.setuid(isolation.run_as_uid)

    return setup


def _lowered(which: int, value: int) -> int:
    hard = resource.getrlimit(which)[1]
    return value if hard == resource.RLIM_INFINITY else min(value, hard)


def _enter_network_namespace(kind: str, maps: tuple[bytes, bytes, bytes]) -> None:
    flags = _CLONE_NEWNET | (_CLONE_NEWUSER if kind == "user" else 0)
    if _libc.unshare(flags) != 0:
        error = ctypes.get_errno()
        raise OSError(error, f"unshare: {os.strerror(error)}")
    if kind == "user":
        # Map our own ids into the new user namespace, so files keep their owner; setgroups must be denied first.
        for name, content in zip(("setgroups", "uid_map", "gid_map"), maps):
            fd = os.open(f"/proc/self/{name}", os.O_WRONLY)
            try:
                os.write(fd, content)
            finally:
                os.close(fd)


class SandboxUnavailable(RuntimeError):
    """This machine cannot run the dev sandbox as configured (said at start, never per run)."""


def probe_isolation(settings: DevSandboxSettings) -> Isolation:
    """Try what this OS allows: an unprivileged user (started as root), an interpreter that user can start, a network
    namespace (as root, or inside a user namespace)."""
    run_as_uid = run_as_gid = None
    if os.geteuid() == 0:
        entry = pwd.getpwnam(settings.dev_sandbox_user)
        run_as_uid, run_as_gid = entry.pw_uid, entry.pw_gid
    candidates = [settings.dev_sandbox_python] if settings.dev_sandbox_python else \
        [sys.executable, shutil.which("python3", path="/usr/local/bin:/usr/bin:/bin")]
    python = next((path for path in candidates
                   if path and _starts(Isolation(path, "", run_as_uid, run_as_gid), "pass") is not None), None)
    if python is None:
        raise SandboxUnavailable(f"none of {[c for c in candidates if c]} starts as the run user "
                                 f"(uid {run_as_uid if run_as_uid is not None else os.getuid()}); "
                                 "set DEV_SANDBOX_PYTHON to an interpreter it can execute")
    kind = "root" if os.geteuid() == 0 else "user"
    candidate = Isolation(python, kind, run_as_uid, run_as_gid)
    interfaces = _starts(candidate, "import socket; print(sorted(name for _, name in socket.if_nameindex()))")
    if interfaces == "['lo']":
        return candidate
    return Isolation(python, "", run_as_uid, run_as_gid)


def _starts(isolation: Isolation, code: str) -> str | None:
    """Start a child the way runs start; its stdout, or None (logged) when it cannot start or fails."""
    try:
        result = subprocess.run([isolation.python, "-I", "-c", code], capture_output=True, text=True, timeout=30,
                                preexec_fn=_child_setup(_Limits(30, 1 << 30, 1 << 20, 1 << 20), isolation),
                                cwd="/")
    except (OSError, subprocess.SubprocessError) as exc:
        log.warning("dev sandbox: %s (%s) cannot start: %s", isolation.python,
                    isolation.network_namespace or "no namespace", exc)
        return None
    if result.returncode != 0:
        log.warning("dev sandbox: %s (%s) failed: %s", isolation.python,
                    isolation.network_namespace or "no namespace", result.stderr.strip()[-300:])
        return None
    return result.stdout.strip()


class _Capture:
    """Reads a child's stream to the end, keeping the first `cap` bytes (the child never blocks on a full pipe)."""

    def __init__(self, stream, cap: int):
        self.cap = cap
        self.kept = bytearray()
        self.dropped = False
        self._thread = threading.Thread(target=self._pump, args=(stream,), daemon=True)
        self._thread.start()

    def _pump(self, stream) -> None:
        with stream:
            while chunk := stream.read1(65536):
                room = self.cap - len(self.kept)
                if len(chunk) > room:
                    self.dropped = True
                self.kept.extend(chunk[:max(room, 0)])

    def join(self) -> None:
        # A process that left the group may still hold the pipe: do not wait for it.
        self._thread.join(timeout=2)

    def text(self) -> str:
        text = bytes(self.kept).decode("utf-8", "replace")
        return text + TRUNCATION_NOTE.format(limit=self.cap) if self.dropped else text


def _feed(stream, text: str | None) -> None:
    try:
        with stream:
            if text:
                stream.write(text.encode())
    except (BrokenPipeError, ConnectionResetError):
        pass


def _kill_group(child: subprocess.Popen) -> None:
    try:
        os.killpg(child.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _tasks_of(uid: int) -> int:
    """Threads the user already runs: RLIMIT_NPROC counts them all, so the limit is on top of these."""
    count = 0
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            if entry.stat().st_uid == uid:
                count += len(os.listdir(f"/proc/{entry.name}/task"))
        except OSError:
            continue
    return count


def _inside(root: Path, name: str) -> Path:
    path = (root / name).resolve()
    if path != root.resolve() and root.resolve() not in path.parents:
        raise ValueError(f"file path {name!r} is outside the working directory")
    return path


def _restore_files(root: Path, files: dict) -> None:
    for name, content in files.items():
        if content is None:
            continue
        path = _inside(root, name)
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            path.write_bytes(base64.b64decode(content, validate=True))
        except ValueError:
            raise ValueError(f"file {name!r} is not valid base64") from None


def _fetch_files(root: Path, names: list, max_bytes: int) -> dict:
    found = {}
    for name in names:
        try:
            path = _inside(root, name)
        except ValueError:
            continue
        if path.is_file() and path.stat().st_size <= max_bytes:
            found[name] = base64.b64encode(path.read_bytes()).decode()
    return found


def child_env(environ: Mapping[str, str]) -> dict[str, str]:
    """The environment to start the dev sandbox with: PATH and its own settings. None of the stack's database URL or
    key paths: a run as the same user could read them from /proc/<sandbox pid>/environ."""
    return {name: value for name, value in environ.items() if name == "PATH" or name.startswith("DEV_SANDBOX_")}


def base_url(settings: DevSandboxSettings) -> str:
    """What SANDBOX_FUSION_URL is for the mcp function when the stack runs the dev sandbox."""
    return f"http://{HOST}:{settings.dev_sandbox_port}"


def make_server(settings: DevSandboxSettings, isolation: Isolation, port: int | None = None) -> ThreadingHTTPServer:
    runner = Runner(settings, isolation)

    class Handler(BaseHTTPRequestHandler):
        server_version = "jan-dev-sandbox"
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            if self.path == "/v1/ping":
                self._json(HTTPStatus.OK, "pong")
            else:
                self._json(HTTPStatus.NOT_FOUND, {"detail": "Not Found"})

        def do_POST(self) -> None:
            if self.path != "/run_code":
                self._json(HTTPStatus.NOT_FOUND, {"detail": "Not Found"})
                return
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_REQUEST_BYTES:
                self.close_connection = True
                self._json(HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                           {"detail": f"request body over {MAX_REQUEST_BYTES} bytes"})
                return
            try:
                request = parse_request(self.rfile.read(length))
            except RequestInvalid as exc:
                self._json(HTTPStatus.UNPROCESSABLE_ENTITY, {"detail": exc.detail})
                return
            try:
                self._json(HTTPStatus.OK, runner.run(request))
            except Exception as exc:  # SandboxFusion answers its own failures as SandboxError, never a 500.
                log.exception("run failed")
                self._json(HTTPStatus.OK, {"status": "SandboxError", "message": f"dev sandbox error: {exc}",
                                           "compile_result": None, "run_result": None,
                                           "executor_pod_name": None, "files": {}})

        def _json(self, status: HTTPStatus, body) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args) -> None:
            log.info("%s %s", self.address_string(), format % args)

    server = ThreadingHTTPServer((HOST, settings.dev_sandbox_port if port is None else port), Handler)
    server.daemon_threads = True
    return server


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stdout)
    settings = from_env(DevSandboxSettings)
    try:
        isolation = probe_isolation(settings)
    except SandboxUnavailable as exc:
        sys.exit(f"dev sandbox: {exc}")
    if not isolation.network_namespace:
        if settings.dev_sandbox_require_network_isolation:
            sys.exit("dev sandbox: no network namespace is possible here and "
                     "DEV_SANDBOX_REQUIRE_NETWORK_ISOLATION=true; not starting")
        log.warning("dev sandbox: WARNING no network namespace is possible here: code can reach the network "
                    "(docs/sandbox.md)")
    server = make_server(settings, isolation)
    log.info("dev sandbox on %s (%s)", base_url(settings),
             "; ".join(f"{key}: {value}" for key, value in isolation.describe().items()))
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown, daemon=True).start())
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
