"""A small closed-loop HTTP client with keep-alive that times every request (perf_counter, µs resolution).

Each worker thread owns one persistent connection (TCP_NODELAY), sends one untimed warm-up request on it, waits
at a barrier, then sends its fixed share of requests back to back. For SSE requests it records the time to the
first `data:` line (and to the end of the stream). One response header can be collected per request.

Used for c=1 (where it is as precise as a C client, see docs/performance.md) and as the fallback load generator
when wrk is missing. At high concurrency its own CPU use (GIL, 2 cores shared with the servers) inflates
latencies, which is why c=16 prefers wrk.
"""
from __future__ import annotations

import http.client
import socket
import threading
import time
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Target:
    host: str
    port: int
    path: str
    body: bytes
    headers: dict

    def with_headers(self, **extra) -> "Target":
        return Target(self.host, self.port, self.path, self.body, {**self.headers, **extra})


@dataclass
class LoadResult:
    concurrency: int
    latencies_ms: list[float] = field(default_factory=list)  # full response (non-stream) or full stream
    first_chunk_ms: list[float] = field(default_factory=list)  # streams: time to the first `data:` line
    header_values: list[float] = field(default_factory=list)
    errors: int = 0
    statuses: dict = field(default_factory=dict)
    wall_seconds: float = 0.0

    @property
    def completed(self) -> int:
        return len(self.latencies_ms)

    @property
    def throughput(self) -> float:
        return self.completed / self.wall_seconds if self.wall_seconds else 0.0

    def merge(self, other: "LoadResult") -> None:
        self.latencies_ms += other.latencies_ms
        self.first_chunk_ms += other.first_chunk_ms
        self.header_values += other.header_values
        self.errors += other.errors
        for status, count in other.statuses.items():
            self.statuses[status] = self.statuses.get(status, 0) + count
        self.wall_seconds += other.wall_seconds


def _connect(target: Target) -> http.client.HTTPConnection:
    conn = http.client.HTTPConnection(target.host, target.port, timeout=30)
    conn.connect()
    conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return conn


def _read_stream(response: http.client.HTTPResponse, started: float) -> float | None:
    """Read an SSE body to its end; return the time (ms) at which the first `data:` line had arrived."""
    first = None
    seen = b""
    while True:
        data = response.read1(65536)
        if not data:
            return first
        if first is None:
            seen += data
            if b"data:" in seen:
                first = (time.perf_counter() - started) * 1000


def _exchange(conn, target: Target, stream: bool, header: str | None):
    started = time.perf_counter()
    conn.request("POST", target.path, target.body, target.headers)
    response = conn.getresponse()
    first = None
    if stream and response.status == 200:
        first = _read_stream(response, started)
    else:
        response.read()
    elapsed = (time.perf_counter() - started) * 1000
    value = response.getheader(header) if header else None
    return response.status, elapsed, first, value


def run(target: Target, *, concurrency: int, requests: int, stream: bool = False,
        header: str | None = None, warmup_per_connection: int = 1, max_seconds: float | None = None) -> LoadResult:
    """Send `requests` requests in total over `concurrency` keep-alive connections, back to back; stop early
    when `max_seconds` have passed (a bound for slow or busy machines)."""
    result = LoadResult(concurrency=concurrency)
    lock = threading.Lock()
    barrier = threading.Barrier(concurrency + 1)
    shares = [requests // concurrency + (1 if i < requests % concurrency else 0) for i in range(concurrency)]

    deadline = [float("inf")]

    def worker(share: int) -> None:
        local = LoadResult(concurrency=concurrency)
        conn = None
        try:
            conn = _connect(target)
            for _ in range(warmup_per_connection):
                _exchange(conn, target, stream, header)
        except Exception:
            local.errors += 1
        barrier.wait()
        for _ in range(share):
            if time.perf_counter() > deadline[0]:
                break
            try:
                if conn is None:
                    conn = _connect(target)
                status, elapsed, first, value = _exchange(conn, target, stream, header)
            except Exception:
                local.errors += 1
                if conn is not None:
                    conn.close()
                conn = None
                continue
            local.statuses[status] = local.statuses.get(status, 0) + 1
            if status != 200:
                local.errors += 1
                continue
            local.latencies_ms.append(elapsed)
            if first is not None:
                local.first_chunk_ms.append(first)
            if value is not None:
                try:
                    local.header_values.append(float(value))
                except ValueError:
                    pass
        if conn is not None:
            conn.close()
        with lock:
            result.merge(local)

    threads = [threading.Thread(target=worker, args=(share,), daemon=True) for share in shares]
    for thread in threads:
        thread.start()
    if max_seconds is not None:
        deadline[0] = time.perf_counter() + max_seconds + 1.0  # set before the barrier opens; +1 s: warm-up slack
    barrier.wait()
    began = time.perf_counter()
    if max_seconds is not None:
        deadline[0] = began + max_seconds
    for thread in threads:
        thread.join()
    result.wall_seconds = time.perf_counter() - began
    return result
