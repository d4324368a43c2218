"""Waiting for local HTTP services to come up, and checking their ports are free before starting them."""
from __future__ import annotations

import errno
import socket
import time
import urllib.error
import urllib.request
from typing import Callable


class NotReady(RuntimeError):
    pass


class PortInUse(RuntimeError):
    pass


def http_status(url: str, timeout: float = 2.0) -> int | None:
    """The status of `GET url`, or None when nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code
    except (urllib.error.URLError, OSError):
        return None


def wait_http(
    url: str,
    timeout: float,
    accept: Callable[[int], bool] = lambda status: status == 200,
    check_alive: Callable[[], None] | None = None,
    poll_seconds: float = 0.25,
) -> float:
    """Poll `GET url` until its status is accepted; returns the seconds waited.

    `check_alive` is called between polls and should raise when the process behind `url` has died, so a crash
    fails fast instead of running out the timeout.
    """
    began = time.monotonic()
    while True:
        status = http_status(url)
        if status is not None and accept(status):
            return time.monotonic() - began
        if check_alive is not None:
            check_alive()
        if time.monotonic() - began > timeout:
            answer = "no answer" if status is None else f"last status {status}"
            raise NotReady(f"{url} was not ready within {timeout:.0f} s ({answer})")
        time.sleep(poll_seconds)


def ensure_ports_free(ports: dict[str, int], host: str = "127.0.0.1") -> None:
    """Raise PortInUse naming every port (and what we wanted it for) that something already listens on."""
    taken = [f"{port} ({name})" for name, port in ports.items() if not _can_bind(host, port)]
    if taken:
        raise PortInUse(
            f"already in use on {host}: port {', '.join(taken)}."
            " Stop what listens there (another `make run`?); `ss -ltnp` shows which process it is."
        )


def _can_bind(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        # Same option the servers use: a port in TIME_WAIT is free for them, only a listener blocks them.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as error:
            if error.errno == errno.EADDRINUSE:
                return False
            raise
    return True
