"""The real dev sandbox (`python -m dev.sandbox`) as a child process on a free loopback port, with small limits so
the limit tests are quick, and the python_exec settings pointing at it."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import urllib3

from dev.sandbox import child_env
from shared.sandbox import SandboxToolSettings

ROOT = Path(__file__).resolve().parents[2]
# A variable of the sandbox's own environment that no run may see.
SECRET_VARIABLE = "JAN_TEST_SANDBOX_SECRET"
LIMITS = {
    "DEV_SANDBOX_MAX_RUN_TIMEOUT_SECONDS": "2",
    "DEV_SANDBOX_MEMORY_LIMIT_MB": "256",
    "DEV_SANDBOX_MAX_PROCESSES": "8",
    "DEV_SANDBOX_MAX_FILE_BYTES": str(1024 * 1024),
    "DEV_SANDBOX_MAX_OUTPUT_BYTES": str(64 * 1024),
}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class SandboxProcess:
    process: subprocess.Popen
    base_url: str
    log: list[str] = field(default_factory=list)

    @property
    def startup_line(self) -> str:
        return next(line for line in self.log if line.startswith("dev sandbox on "))


def start_sandbox(argv: list[str], env: dict[str, str], port: int) -> SandboxProcess:
    process = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    sandbox = SandboxProcess(process, f"http://127.0.0.1:{port}")
    threading.Thread(target=lambda: sandbox.log.extend(line.rstrip("\n") for line in process.stdout),
                     daemon=True).start()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            time.sleep(0.2)
            raise RuntimeError("dev sandbox exited at start:\n" + "\n".join(sandbox.log))
        try:
            if urllib3.request("GET", f"{sandbox.base_url}/v1/ping", timeout=1).data == b'"pong"':
                return sandbox
        except urllib3.exceptions.HTTPError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError("dev sandbox did not answer /v1/ping within 30 s:\n" + "\n".join(sandbox.log))


def stop_sandbox(sandbox: SandboxProcess) -> None:
    sandbox.process.terminate()
    try:
        sandbox.process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        sandbox.process.kill()
        sandbox.process.wait()


@pytest.fixture(scope="session")
def dev_sandbox():
    port = free_port()
    # As the dev stack starts it (dev.sandbox.child_env), plus a secret the runs must still not see.
    env = {**child_env(os.environ), **LIMITS, "DEV_SANDBOX_PORT": str(port), SECRET_VARIABLE: "do-not-leak"}
    sandbox = start_sandbox([sys.executable, "-m", "dev.sandbox"], env, port)
    yield sandbox
    stop_sandbox(sandbox)


@pytest.fixture(scope="session")
def sandbox_settings(dev_sandbox) -> SandboxToolSettings:
    return SandboxToolSettings(sandbox_fusion_url=dev_sandbox.base_url, sandbox_fusion_require_approval=False)
