"""Outbound HTTP: one pooled urllib3 client per process, explicit timeouts, retries only where safe,
and trace context propagated to whoever we call (other functions, model providers, JWKS endpoints).
Framework-free: the request being served comes from shared.context, so ASGI functions use it as it is.
"""
from __future__ import annotations

import ipaddress
import json
import socket
import threading
import time
import typing
import urllib.parse
from dataclasses import dataclass

import urllib3

from shared import context
from shared.errors import UpstreamError

_pool: urllib3.PoolManager | None = None
_pool_lock = threading.Lock()

# GETs are idempotent: retry connection failures and 502/503/504 twice with backoff. POSTs are never retried:
# a model call may already have run.
SAFE_RETRIES = urllib3.Retry(total=2, connect=2, read=0, status=2, backoff_factor=0.1,
                             status_forcelist=(502, 503, 504), allowed_methods=frozenset({"GET", "HEAD"}),
                             raise_on_status=False)


def pool() -> urllib3.PoolManager:
    global _pool
    if _pool is None:
        with _pool_lock:
            if _pool is None:
                _pool = urllib3.PoolManager(num_pools=16, maxsize=32, block=False, retries=False)
    return _pool


def propagation_headers() -> dict[str, str]:
    """W3C trace context and our request id, for every call made while serving a request."""
    current = context.current()
    if current is None:
        return {}
    return {"traceparent": current.traceparent, "X-Request-Id": current.request_id}


def send(method: str, url: str, *, body: bytes | None = None, headers: dict | None = None,
         connect_timeout: float = 5.0, read_timeout: float = 30.0, stream: bool = False):
    all_headers = propagation_headers()
    all_headers.update(headers or {})
    retries = SAFE_RETRIES if method in ("GET", "HEAD") else False
    return pool().request(
        method, url, body=body, headers=all_headers,
        timeout=urllib3.Timeout(connect=connect_timeout, read=read_timeout),
        retries=retries, preload_content=not stream, decode_content=True,
    )


def fetch_json(url: str, *, headers: dict | None = None, timeout: float = 5.0):
    """GET a JSON document; any failure is an UpstreamError (502/504) naming the host, never a 500."""
    try:
        response = send("GET", url, headers={"Accept": "application/json", **(headers or {})},
                        connect_timeout=timeout, read_timeout=timeout)
    except urllib3.exceptions.NewConnectionError:
        raise UpstreamError(f"could not reach {_host(url)}") from None
    except urllib3.exceptions.TimeoutError:
        raise UpstreamError(f"timed out calling {_host(url)}", status=504) from None
    except urllib3.exceptions.HTTPError as exc:
        raise UpstreamError(f"could not reach {_host(url)}: {type(exc).__name__}") from None
    if response.status != 200:
        raise UpstreamError(f"{_host(url)} answered {response.status}")
    try:
        return json.loads(response.data)
    except ValueError:
        raise UpstreamError(f"{_host(url)} returned invalid JSON") from None


def _host(url: str) -> str:
    return urllib3.util.parse_url(url).host or url


# --- Fetching URLs that a user names (scrape, media import, webhooks): SSRF-safe. -------------------------------

class BlockedDestination(ValueError):
    """The URL names (or redirects to) an address inside the platform: loopback, private, link-local, CGNAT,
    metadata, multicast or reserved."""


class FetchFailed(ValueError):
    """The page could not be fetched within the limits (unreachable, timed out, too many redirects, bad type)."""


@dataclass(frozen=True)
class FetchedPage:
    url: str  # after redirects
    status: int
    content_type: str
    body: bytes
    truncated: bool  # the body was longer than max_bytes and is cut there


REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})


def _is_public(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(address, ipaddress.IPv6Address):
        # ::ffff:127.0.0.1 and 64:ff9b::/96 (NAT64) reach IPv4 hosts: judge the IPv4 address they carry.
        if address.ipv4_mapped is not None:
            return _is_public(address.ipv4_mapped)
        if address in _NAT64:
            return _is_public(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
    # is_global is false for loopback, RFC 1918, link-local (169.254/16: cloud metadata), CGNAT (100.64/10),
    # unique-local, documentation and reserved ranges; multicast is global but never a web page.
    return address.is_global and not address.is_multicast


_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


def public_addresses(host: str, port: int, allowed_hosts: typing.Collection[str] = ()) -> list[str]:
    """Every address `host` resolves to, if all are public (or the host is on the operator's allow-list);
    BlockedDestination otherwise. Connecting to one of these addresses (not re-resolving) defeats DNS rebinding."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise FetchFailed(f"could not resolve {host}") from exc
    addresses = list(dict.fromkeys(info[4][0] for info in infos))
    if host.lower() in allowed_hosts:
        return addresses
    for address in addresses:
        if not _is_public(ipaddress.ip_address(address.split("%", 1)[0])):
            raise BlockedDestination(f"{host} resolves to a non-public address")
    return addresses


def fetch_public_url(url: str, *, max_bytes: int, timeout: float, max_redirects: int = 5,
                     allowed_hosts: typing.Collection[str] = (), accept: str = "*/*",
                     user_agent: str = "jan-serverless") -> FetchedPage:
    """GET a URL a user gave us: http(s) only; every hop's host resolved once and checked before connecting to
    that very address; redirects followed by hand and each re-checked; at most `max_bytes` read; the whole
    fetch (all hops, all reads) ends within `timeout` seconds."""
    deadline = time.monotonic() + timeout
    allowed = {host.lower() for host in allowed_hosts}
    for _hop in range(max_redirects + 1):
        try:
            parsed = urllib3.util.parse_url(url)
        except urllib3.exceptions.LocationParseError:
            raise FetchFailed("only http and https URLs can be fetched") from None
        if parsed.scheme not in ("http", "https") or not parsed.host:
            raise FetchFailed("only http and https URLs can be fetched")
        host = parsed.host.strip("[]")
        port = parsed.port or (443 if parsed.scheme == "https" else 80)
        address = public_addresses(host, port, allowed)[0]
        connection, response = _get_from(parsed, host, address, port, deadline, accept, user_agent)
        try:
            if response.status in REDIRECT_STATUSES and response.headers.get("Location"):
                url = urllib.parse.urljoin(url, response.headers["Location"])
                continue
            body, truncated = _read_capped(response, max_bytes, deadline)
        finally:
            # One connection per hop, never reused: a page cut off mid-body leaves nothing behind.
            response.release_conn()
            connection.close()
        return FetchedPage(url=url, status=response.status, content_type=response.headers.get("Content-Type", ""),
                           body=body, truncated=truncated)
    raise FetchFailed(f"more than {max_redirects} redirects")


def _remaining(deadline: float) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise FetchFailed("the page took too long to fetch")
    return left


def _get_from(parsed, host: str, address: str, port: int, deadline: float, accept: str, user_agent: str):
    timeout = urllib3.Timeout(connect=min(5.0, _remaining(deadline)), read=_remaining(deadline))
    if parsed.scheme == "https":
        # Connect to the checked address; TLS still verifies the certificate for the host name.
        connection = urllib3.HTTPSConnectionPool(address, port, server_hostname=host, assert_hostname=host,
                                                 timeout=timeout, retries=False, maxsize=1)
    else:
        connection = urllib3.HTTPConnectionPool(address, port, timeout=timeout, retries=False, maxsize=1)
    host_header = host if parsed.port is None else f"{host}:{parsed.port}"
    if ":" in host and not host.startswith("["):
        host_header = f"[{host}]" if parsed.port is None else f"[{host}]:{parsed.port}"
    try:
        return connection, connection.urlopen(
            "GET", parsed.request_uri or "/", redirect=False, preload_content=False, decode_content=True,
            assert_same_host=False, headers={"Host": host_header, "Accept": accept, "User-Agent": user_agent})
    except urllib3.exceptions.NewConnectionError:  # before TimeoutError: urllib3 derives it from that
        connection.close()
        raise FetchFailed(f"could not reach {host}") from None
    except urllib3.exceptions.TimeoutError:
        connection.close()
        raise FetchFailed("the page took too long to fetch") from None
    except urllib3.exceptions.HTTPError as exc:
        connection.close()
        raise FetchFailed(f"could not reach {host}: {type(exc).__name__}") from None


def _read_capped(response, max_bytes: int, deadline: float) -> tuple[bytes, bool]:
    chunks, size = [], 0
    try:
        while size <= max_bytes:
            # A page that trickles forever: each wait is cut to what is left of the deadline.
            left = _remaining(deadline)
            sock = getattr(response.connection, "sock", None)
            if sock is not None:
                sock.settimeout(left)
            chunk = response.read1(min(65536, max_bytes + 1 - size))
            if not chunk:
                return b"".join(chunks), False
            chunks.append(chunk)
            size += len(chunk)
    except urllib3.exceptions.TimeoutError:
        raise FetchFailed("the page took too long to fetch") from None
    except (urllib3.exceptions.HTTPError, OSError) as exc:
        raise FetchFailed(f"the page could not be read: {type(exc).__name__}") from None
    return b"".join(chunks)[:max_bytes], True
