"""The SSRF guard in shared/outbound.py (used by scrape): non-public addresses refused after DNS resolution and on
every redirect, the connection made to the address that was checked, size and time caps; and the same refusals
through the scrape tool of the running function."""
from __future__ import annotations

import socket
import time
from unittest import mock

import pytest

from shared import outbound
from tests.mcp.conftest import call_tool


@pytest.mark.parametrize("url", [
    "http://127.0.0.1/", "http://127.8.9.10/", "http://localhost/", "http://[::1]/", "http://[::ffff:127.0.0.1]/",
    "http://10.1.2.3/", "http://172.16.0.1/", "http://192.168.1.1/", "http://169.254.169.254/latest/meta-data/",
    "http://100.64.0.1/", "http://0.0.0.0/", "http://[fd00::1]/", "http://[fe80::1]/", "http://224.0.0.1/",
    "http://[64:ff9b::a9fe:a9fe]/", "http://2130706433/",
])
def test_non_public_destinations_are_refused(url):
    with pytest.raises(outbound.BlockedDestination):
        outbound.fetch_public_url(url, max_bytes=1000, timeout=2)


def test_a_name_resolving_to_loopback_is_refused_before_connecting():
    """DNS rebinding: the name is judged by what it resolves to, and nothing is connected on refusal."""
    answer = [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", 80))]
    with mock.patch("socket.getaddrinfo", return_value=answer), \
            mock.patch("urllib3.HTTPConnectionPool.urlopen") as urlopen:
        with pytest.raises(outbound.BlockedDestination, match="public.example resolves to a non-public address"):
            outbound.fetch_public_url("http://public.example/", max_bytes=1000, timeout=2)
    urlopen.assert_not_called()


def test_one_private_address_among_public_ones_is_refused():
    answer = [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.216.34", 80)),
              (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.0.0.5", 80))]
    with mock.patch("socket.getaddrinfo", return_value=answer):
        with pytest.raises(outbound.BlockedDestination):
            outbound.fetch_public_url("http://mixed.example/", max_bytes=1000, timeout=2)


def test_the_connection_goes_to_the_checked_address(pages):
    """A name resolved once: the fetch connects to that address (a second, different answer is never asked)."""
    real_getaddrinfo = socket.getaddrinfo
    asked = []

    def resolver(host, *args, **kwargs):
        asked.append(host)
        if host == "pages.example":
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", pages.port))]
        return real_getaddrinfo(host, *args, **kwargs)

    with mock.patch("socket.getaddrinfo", side_effect=resolver):
        page = outbound.fetch_public_url(f"http://pages.example:{pages.port}/page", max_bytes=100000, timeout=2,
                                         allowed_hosts={"pages.example"})
    assert page.status == 200 and b"Hello page" in page.body
    assert asked.count("pages.example") == 1 and set(asked) <= {"pages.example", "127.0.0.1"}


@pytest.mark.parametrize("path, target", [("/redirect-loopback", "127.0.0.1"),
                                          ("/redirect-metadata", "169.254.169.254")])
def test_redirects_are_checked_again(pages, path, target):
    with pytest.raises(outbound.BlockedDestination, match=target):
        outbound.fetch_public_url(f"http://localhost:{pages.port}{path}", max_bytes=1000, timeout=2,
                                  allowed_hosts={"localhost"})


def test_an_allowed_redirect_is_followed(pages):
    page = outbound.fetch_public_url(f"http://localhost:{pages.port}/redirect-page", max_bytes=100000, timeout=2,
                                     allowed_hosts={"localhost"})
    assert (page.status, page.url, page.truncated) == (200, f"http://localhost:{pages.port}/page", False)


def test_the_body_is_capped(pages):
    page = outbound.fetch_public_url(f"http://localhost:{pages.port}/page", max_bytes=20, timeout=2,
                                     allowed_hosts={"localhost"})
    assert len(page.body) == 20 and page.truncated is True


def test_a_page_that_never_ends_stops_at_the_deadline(pages):
    started = time.monotonic()
    with pytest.raises(outbound.FetchFailed, match="took too long"):
        outbound.fetch_public_url(f"http://localhost:{pages.port}/endless", max_bytes=10 ** 9, timeout=1,
                                  allowed_hosts={"localhost"})
    assert time.monotonic() - started < 2


@pytest.mark.parametrize("url", ["ftp://example.com/", "file:///etc/passwd", "gopher://x/", "http://"])
def test_only_http_and_https(url):
    with pytest.raises(outbound.FetchFailed, match="only http and https"):
        outbound.fetch_public_url(url, max_bytes=10, timeout=1)


class TestThroughTheScrapeTool:
    @pytest.mark.parametrize("target, message", [
        ("http://127.0.0.1:{port}/page", "scrape refused: 127.0.0.1 resolves to a non-public address"),
        ("http://169.254.169.254/latest/meta-data/", "scrape refused: 169.254.169.254 resolves to a non-public "
                                                     "address"),
        ("http://10.0.0.1/", "scrape refused: 10.0.0.1 resolves to a non-public address"),
        ("http://localhost:{port}/redirect-loopback", "scrape refused: 127.0.0.1 resolves to a non-public address"),
        ("http://localhost:{port}/redirect-metadata", "scrape refused: 169.254.169.254 resolves to a non-public "
                                                      "address"),
        ("http://localhost:{port}/binary", "scrape failed: unsupported content type image/png"),
        ("http://localhost:{port}/missing", "scrape failed: the page answered HTTP 404"),
        ("http://localhost:{port}/endless", "scrape failed: the page took too long to fetch"),
    ])
    def test_refusals_and_failures_are_tool_errors(self, live_mcp, user, pages, target, message):
        result = call_tool(f"{live_mcp}/v1/mcp", user.headers, "scrape", {"url": target.format(port=pages.port)})
        assert result.is_error is True and result.content[0].text == message


def test_a_refused_connection_is_a_clear_failure():
    from tests.conftest import free_port

    with pytest.raises(outbound.FetchFailed, match="could not reach localhost"):
        outbound.fetch_public_url(f"http://localhost:{free_port()}/", max_bytes=10, timeout=2,
                                  allowed_hosts={"localhost"})
