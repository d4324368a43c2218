"""The dev gateway serving gateway/kong.yml over real sockets: routing, plugins, streaming and failures."""

from __future__ import annotations

import json
import socket
import threading
import time

import httpx
import pytest

from gateway_harness import FIXTURES, free_port

NO_ROUTE = {"message": "no Route matched with those values"}


def upstream_view(response: httpx.Response) -> dict:
    assert response.status_code == 200, response.text
    return response.json()


def raw_exchange(port: int, request: bytes, until_closed: bool = False, timeout: float = 5.0) -> bytes:
    """Sends bytes as they are (paths no client library would send) and returns what came back: the first
    response (head and Content-Length body), or everything until the gateway closed the connection."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as connection:
        connection.sendall(request)
        received = b""
        while block := connection.recv(65536):
            received += block
            if not until_closed and _complete(received):
                break
        return received


def _complete(response: bytes) -> bool:
    head, separator, body = response.partition(b"\r\n\r\n")
    if not separator:
        return False
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return len(body) >= int(value)
    return True


class TestRouting:
    def test_prefixed_route_strips_its_prefix(self, gateway):
        assert upstream_view(httpx.get(gateway.url + "/llm/v1/models?limit=2"))["path"] == "/v1/models?limit=2"

    def test_bare_prefix_becomes_root(self, gateway):
        assert upstream_view(httpx.get(gateway.url + "/llm"))["path"] == "/"

    @pytest.mark.parametrize("path", ["/v1/models", "/v1/chat/completions", "/auth/guest-login", "/healthz", "/readyz",
                                      "/v1/public/shares/abc"])
    def test_unstripped_routes_keep_the_path(self, gateway, path):
        method = "POST" if path in ("/v1/chat/completions", "/auth/guest-login") else "GET"
        assert upstream_view(httpx.request(method, gateway.url + path))["path"] == path

    def test_unrouted_path_is_kongs_404(self, gateway, upstream_server):
        response = httpx.get(gateway.url + "/nothing/here")
        assert response.status_code == 404
        assert response.json() == NO_ROUTE
        assert upstream_server.seen == []

    def test_method_filter_excludes_other_methods(self, gateway, upstream_server):
        assert httpx.post(gateway.url + "/healthz").json() == NO_ROUTE
        assert httpx.patch(gateway.url + "/auth/me").status_code == 404
        assert upstream_server.seen == []

    def test_method_mismatch_falls_through_to_a_shorter_route(self, gateway):
        # POST is not among the public-shares methods: the request falls through to the /v1 route.
        assert upstream_view(httpx.post(gateway.url + "/v1/public/shares/abc"))["path"] == "/v1/public/shares/abc"

    @pytest.mark.parametrize("path", ["/metrics", "/llm/metrics", "/llm//metrics", "/llm/%2E%2E/metrics",
                                      "/v1/../metrics", "/%6Detrics", "/llm/version", "/llm/openapi.json",
                                      "/version"])
    def test_metrics_is_not_reachable(self, gateway, upstream_server, path):
        reply = raw_exchange(gateway.port, f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        assert reply.startswith(b"HTTP/1.1 404"), reply
        assert upstream_server.seen == []

    def test_service_path_and_strip_path_combine(self, start_gateway, upstream_server):
        gateway = start_gateway({"svc": upstream_server.url}, config=FIXTURES / "service_path.yml")
        assert upstream_view(httpx.get(gateway.url + "/short/x/y"))["path"] == "/base/x/y"
        assert upstream_view(httpx.get(gateway.url + "/short"))["path"] == "/base"
        assert upstream_view(httpx.get(gateway.url + "/kept/z"))["path"] == "/base/kept/z"


class TestHeaders:
    def test_credentials_pass_untouched_and_forwarded_headers_are_set(self, gateway):
        sent = {"Authorization": "Bearer sk_live_abc", "X-API-Key": "sk_live_def", "X-Forwarded-For": "10.0.0.1",
                "X-Forwarded-Proto": "https", "X-Custom": "kept"}
        headers = upstream_view(httpx.get(gateway.url + "/llm/v1/models", headers=sent))["headers"]
        lowered = {name.lower(): value for name, value in headers.items()}
        assert lowered["authorization"] == "Bearer sk_live_abc"
        assert lowered["x-api-key"] == "sk_live_def"
        assert lowered["x-custom"] == "kept"
        assert lowered["x-forwarded-for"] == "10.0.0.1, 127.0.0.1"
        assert lowered["x-forwarded-proto"] == "http"
        assert lowered["x-forwarded-prefix"] == "/llm"
        assert lowered["x-forwarded-path"] == "/llm/v1/models"
        assert not {"x-user-id", "x-auth-method", "x-principal-id"} & set(lowered)

    def test_host_is_the_upstreams(self, gateway, upstream_server):
        headers = upstream_view(httpx.get(gateway.url + "/v1/models", headers={"Host": "public.example"}))["headers"]
        assert headers["Host"] == f"127.0.0.1:{upstream_server.port}"
        assert headers["X-Forwarded-Host"] == "public.example"

    def test_hop_by_hop_headers_stay_on_their_hop(self, gateway):
        response = httpx.get(gateway.url + "/v1/models", headers={"Connection": "keep-alive, X-Client-Private",
                                                                  "X-Client-Private": "secret", "TE": "trailers"})
        received = {name.lower() for name in upstream_view(response)["headers"]}
        assert not {"x-client-private", "te"} & received
        assert "x-upstream-private" not in response.headers
        assert response.headers.get_list("set-cookie") == ["a=1", "b=2"]

    def test_upstream_connections_are_kept_alive(self, gateway, upstream_server):
        for _ in range(5):
            upstream_view(httpx.get(gateway.url + "/v1/models"))
        assert len(upstream_server.connections) == 1


class TestBodies:
    def test_content_length_body_is_forwarded(self, gateway, upstream_server):
        body = json.dumps({"model": "m", "messages": [{"role": "user", "content": "x" * 100_000}]}).encode()
        view = upstream_view(httpx.post(gateway.url + "/v1/chat/completions", content=body))
        assert view["body_length"] == len(body)
        assert upstream_server.seen[-1].body == body

    def test_chunked_body_under_a_size_limit_is_measured_then_forwarded(self, gateway, upstream_server):
        blocks = [b"a" * 70_000, b"b" * 10, b"c" * 5000]
        view = upstream_view(httpx.post(gateway.url + "/v1/files", content=iter(blocks)))
        assert view["body_length"] == sum(map(len, blocks))
        assert upstream_server.seen[-1].body == b"".join(blocks)

    def test_chunked_body_without_a_size_limit_streams_chunked(self, start_gateway, upstream_server):
        gateway = start_gateway({"svc": upstream_server.url}, config=FIXTURES / "service_path.yml")
        blocks = [b"a" * 70_000, b"b" * 10, b"c" * 5000]
        upstream_view(httpx.post(gateway.url + "/kept", content=iter(blocks)))
        assert upstream_server.seen[-1].headers["Transfer-Encoding"] == "chunked"
        assert upstream_server.seen[-1].body == b"".join(blocks)

    def test_declared_oversize_body_is_refused_before_upstream(self, gateway, upstream_server):
        reply = raw_exchange(gateway.port, b"POST /v1/files HTTP/1.1\r\nHost: x\r\nContent-Length: 10485761\r\n\r\n")
        head, _, body = reply.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 413")
        assert json.loads(body) == {"message": "Request size limit exceeded"}
        assert upstream_server.seen == []

    def test_limit_is_inclusive(self, gateway):
        assert httpx.post(gateway.url + "/v1/files", content=b"x" * 10 * 2**20).status_code == 200

    def test_oversize_chunked_body_is_refused(self, start_gateway, upstream_server):
        gateway = start_gateway({"svc": upstream_server.url}, config=FIXTURES / "service_path.yml")
        response = httpx.post(gateway.url + "/short", content=iter([b"x" * 600, b"y" * 600]))
        assert response.status_code == 413
        assert response.json() == {"message": "Request size limit exceeded"}
        assert httpx.post(gateway.url + "/short", content=iter([b"x" * 600, b"y" * 400])).status_code == 200
        assert len(upstream_server.seen) == 1

    def test_expect_continue_oversize_gets_417_without_hanging(self, gateway):
        reply = raw_exchange(gateway.port, b"POST /v1/files HTTP/1.1\r\nHost: x\r\nContent-Length: 20000000\r\n"
                                           b"Expect: 100-continue\r\n\r\n")
        assert reply.startswith(b"HTTP/1.1 417")

    def test_head_response_has_no_body(self, gateway):
        reply = raw_exchange(gateway.port, b"HEAD /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
                                           b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
                             until_closed=True)
        head_reply, _, get_reply = reply.partition(b"\r\n\r\n")
        assert head_reply.startswith(b"HTTP/1.1 200")
        assert get_reply.startswith(b"HTTP/1.1 200")
        assert get_reply.endswith(b"}")


class TestCors:
    ORIGIN = "http://localhost:3000"

    def test_preflight_is_answered_by_the_gateway(self, gateway, upstream_server):
        response = httpx.options(gateway.url + "/v1/chat/completions", headers={
            "Origin": self.ORIGIN, "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization,content-type,x-stainless-os"})
        assert response.status_code == 200
        assert response.headers["access-control-allow-origin"] == self.ORIGIN
        assert response.headers["access-control-allow-credentials"] == "true"
        assert "POST" in response.headers["access-control-allow-methods"].split(",")
        assert response.headers["access-control-allow-headers"] == "authorization,content-type,x-stainless-os"
        assert upstream_server.seen == []

    @pytest.mark.parametrize("origin", ["tauri://localhost", "http://localhost:1420", "http://127.0.0.1:3000"])
    def test_app_origins_are_allowed(self, gateway, origin):
        response = httpx.get(gateway.url + "/v1/models", headers={"Origin": origin})
        assert response.headers["access-control-allow-origin"] == origin
        exposed = response.headers["access-control-expose-headers"]
        assert exposed == "X-Request-Id,X-Auth-Method,X-Principal-Id,X-User-ID"
        assert "Origin" in response.headers["vary"]

    def test_other_origins_get_no_grant(self, gateway):
        response = httpx.get(gateway.url + "/v1/models", headers={"Origin": "https://evil.example"})
        assert response.status_code == 200
        assert "access-control-allow-origin" not in response.headers

    def test_public_shares_are_readable_from_anywhere(self, gateway):
        response = httpx.get(gateway.url + "/v1/public/shares/abc", headers={"Origin": "https://blog.example"})
        assert response.headers["access-control-allow-origin"] == "*"

    def test_gateway_errors_carry_cors_headers(self, gateway):
        reply = raw_exchange(gateway.port, b"POST /v1/files HTTP/1.1\r\nHost: x\r\nOrigin: http://localhost:3000\r\n"
                                           b"Content-Length: 99999999\r\n\r\n")
        assert b"Access-Control-Allow-Origin: http://localhost:3000" in reply


class TestStreaming:
    def test_chunks_are_relayed_as_they_arrive(self, gateway, upstream_server):
        arrivals = []
        with httpx.stream("GET", gateway.url + "/v1/sse", timeout=10) as response:
            assert response.headers["content-type"] == "text/event-stream"
            for chunk in response.iter_raw():
                arrivals.append((time.monotonic(), chunk))
        assert b"".join(chunk for _, chunk in arrivals) == b"data: first\n\ndata: second\n\n"
        first_at, first_chunk = arrivals[0]
        assert first_chunk == b"data: first\n\n"
        # Unbuffered: the first event reached the client before the upstream had even sent the second one.
        assert first_at < upstream_server.second_event_at, arrivals

    def test_concurrent_streams_do_not_wait_for_each_other(self, gateway):
        streams = 40
        bodies: list[bytes] = []
        with httpx.Client(limits=httpx.Limits(max_connections=streams), timeout=20) as client:
            def read_stream() -> None:
                with client.stream("GET", gateway.url + "/v1/sse") as response:
                    bodies.append(b"".join(response.iter_raw()))

            started = time.monotonic()
            threads = [threading.Thread(target=read_stream) for _ in range(streams)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            elapsed = time.monotonic() - started
        assert bodies == [b"data: first\n\ndata: second\n\n"] * streams
        # Each stream lasts one second; one after the other they would take forty.
        assert elapsed < 8, elapsed

    def test_client_disconnect_closes_the_upstream_stream(self, gateway, upstream_server):
        with socket.create_connection(("127.0.0.1", gateway.port), timeout=5) as client:
            client.sendall(b"GET /v1/hold-stream HTTP/1.1\r\nHost: x\r\n\r\n")
            received = b""
            while b"data: first" not in received:
                received += client.recv(4096)
        # The upstream sends nothing more: only the gateway closing its connection can wake it.
        assert upstream_server.closed_by_peer.wait(3)

    def test_client_disconnect_before_any_response_closes_the_upstream(self, gateway, upstream_server):
        with socket.create_connection(("127.0.0.1", gateway.port), timeout=5) as client:
            client.sendall(b"POST /v1/chat/completions/hold HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}")
            deadline = time.monotonic() + 3
            while not upstream_server.seen and time.monotonic() < deadline:
                time.sleep(0.02)
        assert upstream_server.closed_by_peer.wait(3)


class TestUpstreamFailures:
    def test_unreachable_upstream_is_502(self, start_gateway):
        gateway = start_gateway({"llm": f"http://127.0.0.1:{free_port()}"})
        response = httpx.get(gateway.url + "/v1/models")
        assert response.status_code == 502
        assert response.json() == {"message": "An invalid response was received from the upstream server"}

    def test_unmapped_service_is_502_that_says_how_to_map_it(self, start_gateway):
        gateway = start_gateway({})
        response = httpx.get(gateway.url + "/v1/models")
        assert response.status_code == 502
        assert "--upstream llm=" in response.json()["message"]

    def test_read_timeout_is_504(self, start_gateway, upstream_server):
        gateway = start_gateway({"svc": upstream_server.url}, config=FIXTURES / "service_path.yml")
        response = httpx.get(gateway.url + "/short/slow", timeout=10)
        assert response.status_code == 504
        assert response.json() == {"message": "The upstream server is timing out"}

    def test_upstreams_can_come_from_the_environment(self, start_gateway, upstream_server):
        gateway = start_gateway({}, env={"DEVGATEWAY_UPSTREAMS": f"llm={upstream_server.url}"})
        assert upstream_view(httpx.get(gateway.url + "/v1/models"))["path"] == "/v1/models"
