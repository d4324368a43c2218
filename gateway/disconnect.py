"""Notices a client closing its connection while the gateway waits on the upstream, so the upstream request is
cancelled at once (as nginx does with `proxy_ignore_client_abort off`), not at the next chunk or never."""

from __future__ import annotations

import socket
from collections.abc import Callable
from typing import TypeVar

from gevent import get_hub, getcurrent

T = TypeVar("T")


class ClientDisconnected(Exception):
    pass


class DisconnectWatch:
    """Watches the client socket for end-of-file once the request body has been read. While armed (the greenlet
    is blocked on the upstream), a disconnect is thrown into the greenlet the way gevent delivers its timeouts."""

    def __init__(self, client_socket: socket.socket):
        self._socket = getattr(client_socket, "_sock", client_socket)
        self._greenlet = getcurrent()
        self._watcher = get_hub().loop.io(self._socket.fileno(), 1)
        self._armed = False
        self.disconnected = False

    def start(self) -> None:
        if not self._watcher.active:
            self._watcher.start(self._on_readable)

    def stop(self) -> None:
        self._watcher.stop()
        self._watcher.close()

    def wait(self, blocking_call: Callable[..., T], *args) -> T:
        if self.disconnected:
            raise ClientDisconnected()
        self._armed = True
        try:
            return blocking_call(*args)
        finally:
            self._armed = False

    def _on_readable(self) -> None:
        try:
            peeked = self._socket.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT)
        except BlockingIOError:
            return
        except OSError:
            peeked = b""
        self._watcher.stop()
        if peeked:
            # The client pipelined its next request: its connection is alive, and no longer watchable.
            return
        self.disconnected = True
        if self._armed:
            self._greenlet.throw(ClientDisconnected())
