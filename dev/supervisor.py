"""Run named child processes in the foreground, prefix their logs, and stop all of them together.

Each child gets its own session (process group), so a Ctrl-C in the terminal reaches only the supervisor, which then
stops the children in order: the whole group of each (gunicorn workers, uvicorn reloaders, ...), SIGTERM first and
SIGKILL for whatever is still alive after the grace period. Cleanup callbacks (the embedded database) run after that.
"""
from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Callable, TextIO

_PR_SET_PDEATHSIG = 1


def describe_exit(returncode: int) -> str:
    """`killed by signal SIGSEGV (exit code -11)` for a signal (a shell's 128+N too), else `exit code N`."""
    signum = -returncode if returncode < 0 else returncode - 128 if 128 < returncode < 128 + 65 else None
    if signum is not None:
        try:
            return f"killed by signal {signal.Signals(signum).name} (exit code {returncode})"
        except ValueError:
            pass
    return f"exit code {returncode}"


class Shutdown(BaseException):
    """Raised in the main thread on SIGINT or SIGTERM; a BaseException so `except Exception` does not swallow it."""


class ChildExited(RuntimeError):
    def __init__(self, name: str, returncode: int):
        super().__init__(f"{name} exited unexpectedly: {describe_exit(returncode)}")
        self.name = name
        self.returncode = returncode


@dataclass
class Child:
    name: str
    process: subprocess.Popen
    log_pump: threading.Thread = field(repr=False)


class Supervisor:
    """Use as a context manager: inside it SIGINT/SIGTERM raise Shutdown; leaving it stops every child, then runs
    the cleanup callbacks in reverse order of registration."""

    def __init__(self, log: TextIO | None = None, grace_seconds: float = 10.0):
        self.log = log or sys.stdout
        self.grace_seconds = grace_seconds
        self.children: list[Child] = []
        self._cleanups: list[Callable[[], None]] = []
        self._log_lock = threading.Lock()
        self._previous_handlers: dict[int, object] = {}

    def __enter__(self) -> Supervisor:
        for signum in (signal.SIGINT, signal.SIGTERM):
            self._previous_handlers[signum] = signal.signal(signum, _raise_shutdown)
        return self

    def __exit__(self, *exc_info) -> None:
        # A second Ctrl-C must not interrupt the stop half-way and orphan processes: SIGKILL follows the grace period.
        for signum in self._previous_handlers:
            signal.signal(signum, signal.SIG_IGN)
        try:
            self.stop_all()
            while self._cleanups:
                self._cleanups.pop()()
        finally:
            for signum, handler in self._previous_handlers.items():
                signal.signal(signum, handler)

    def on_stop(self, callback: Callable[[], None]) -> None:
        """Run `callback` after every child has stopped."""
        self._cleanups.append(callback)

    def start(self, name: str, argv: list[str], env: dict[str, str] | None = None, cwd: str | None = None) -> Child:
        process = subprocess.Popen(
            argv,
            env=env,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_die_with_parent_hook(),
        )
        log_pump = threading.Thread(target=self._pump_log, args=(name, process), daemon=True)
        log_pump.start()
        child = Child(name, process, log_pump)
        self.children.append(child)
        return child

    def say(self, line: str) -> None:
        with self._log_lock:
            self.log.write(line + "\n")
            self.log.flush()

    def raise_if_any_exited(self) -> None:
        for child in self.children:
            if child.process.poll() is not None:
                # Let the child's last lines (usually the reason it died) reach the log before our verdict.
                child.log_pump.join(timeout=2)
                raise ChildExited(child.name, child.process.returncode)

    def wait(self, poll_seconds: float = 0.2) -> None:
        """Block until a child exits (raises ChildExited) or a signal arrives (raises Shutdown)."""
        while True:
            self.raise_if_any_exited()
            time.sleep(poll_seconds)

    def stop_all(self) -> None:
        for child in reversed(self.children):
            _signal_group(child.process, signal.SIGTERM)
        deadline = time.monotonic() + self.grace_seconds
        for child in reversed(self.children):
            try:
                child.process.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                self.say(f"{child.name} did not stop within {self.grace_seconds:.0f} s; killing it")
            # Also sweeps grandchildren that outlived their parent.
            _signal_group(child.process, signal.SIGKILL)
            child.process.wait()
            child.log_pump.join(timeout=2)
        self.children.clear()

    def _pump_log(self, name: str, process: subprocess.Popen) -> None:
        prefix = f"{name:>10} | "
        for raw in process.stdout:
            self.say(prefix + raw.decode("utf-8", "replace").rstrip("\n"))
        process.stdout.close()


def _raise_shutdown(signum: int, frame) -> None:
    raise Shutdown(signal.Signals(signum).name)


def _signal_group(process: subprocess.Popen, signum: int) -> None:
    try:
        os.killpg(process.pid, signum)
    except (ProcessLookupError, PermissionError):
        pass


def _die_with_parent_hook() -> Callable[[], None] | None:
    """A pre-exec hook giving the child SIGTERM if the supervisor itself is killed (kill -9), so no child outlives
    it. prctl is looked up here, in the parent: the child between fork and exec must not load libraries."""
    if not sys.platform.startswith("linux"):
        return None
    prctl = ctypes.CDLL(None, use_errno=True).prctl
    return lambda: prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
