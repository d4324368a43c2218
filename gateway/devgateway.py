"""The local dev gateway: serves the routes of gateway/kong.yml on one port and forwards to local processes.

    python -m gateway.devgateway --config gateway/kong.yml --port 8000 --upstream llm=http://127.0.0.1:8080

`--upstream` maps a Kong service name to a local URL (repeatable; also DEVGATEWAY_UPSTREAMS="llm=http://...,...").
"""

from gevent import monkey

# select stays unpatched: its only user here is urllib3's zero-timeout check that a pooled connection is still open,
# which gevent's cooperative poll makes some twenty times dearer (~50 us a request) than the plain syscall.
monkey.patch_all(select=False)

import argparse  # noqa: E402  (the standard library must be patched before urllib3 loads)
import logging  # noqa: E402
import os  # noqa: E402
import socket  # noqa: E402
import sys  # noqa: E402

import yaml  # noqa: E402
from gevent.pywsgi import WSGIHandler, WSGIServer  # noqa: E402

from gateway import kongconfig  # noqa: E402
from gateway.proxy import Gateway, StreamAborted  # noqa: E402
from gateway.routing import RouteTable  # noqa: E402
from gateway.upstreams import ENV_VARIABLE, UpstreamSpecError, connection_pools, parse_upstream_specs  # noqa: E402

log = logging.getLogger("devgateway")


class GatewayHandler(WSGIHandler):
    def get_environ(self):
        environ = super().get_environ()
        # The request target as sent (PATH_INFO is already percent-decoded) and the socket, to notice a disconnect.
        environ["gateway.raw_target"] = self.path
        environ["gateway.client_socket"] = self.socket
        return environ

    def run_application(self):
        try:
            super().run_application()
        finally:
            if self.wsgi_input.socket is not None:
                # The client expects 100-continue and was answered without it: it holds its body back, so waiting
                # to discard that body would hang. The connection closes instead.
                self.wsgi_input.content_length = 0
                self.wsgi_input.chunked_input = False
                self.close_connection = True

    def handle_error(self, kind, value, traceback):
        if isinstance(value, StreamAborted):
            log.info("%s %s: %s", self.command, self.path, value)
            self.close_connection = True
            return
        super().handle_error(kind, value, traceback)


class GatewayServer(WSGIServer):
    handler_class = GatewayHandler

    def handle(self, sock, address):
        # Status line, headers and body go out in separate writes; without this, Nagle holds back the second one.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        super().handle(sock, address)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m gateway.devgateway", description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default="gateway/kong.yml", help="Kong declarative config (default %(default)s)")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default %(default)s)")
    parser.add_argument("--port", type=int, default=8000, help="port to listen on (default %(default)s)")
    parser.add_argument("--upstream", action="append", default=[], metavar="SERVICE=URL",
                        help="local URL for a Kong service, e.g. llm=http://127.0.0.1:8080 (repeatable)")
    parser.add_argument("--no-access-log", action="store_true", help="do not log one line per request")
    return parser.parse_args(argv)


def build_server(args: argparse.Namespace) -> GatewayServer:
    config = kongconfig.load(args.config)
    upstream_urls = parse_upstream_specs([os.environ.get(ENV_VARIABLE, ""), *args.upstream])
    for name in sorted(set(upstream_urls) - set(config.services)):
        log.warning("upstream %r names no service in %s; ignored", name, args.config)
    for name in sorted(set(config.services) - set(upstream_urls)):
        log.warning("service %r has no --upstream; its routes answer 502", name)
    if config.not_emulated_plugins:
        log.info("not enforced locally (Kong enforces them): %s", ", ".join(sorted(config.not_emulated_plugins)))
    gateway = Gateway(RouteTable(config.routes), config.services, connection_pools(upstream_urls, config.services))
    return GatewayServer((args.host, args.port), gateway, log=None if args.no_access_log else "default")


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="devgateway: %(message)s", stream=sys.stderr)
    # A burst beyond the pool size opens extra upstream connections and closes them after use, by design.
    logging.getLogger("urllib3.connectionpool").setLevel(logging.ERROR)
    args = parse_args(argv)
    try:
        server = build_server(args)
        server.start()
    except (kongconfig.ConfigError, UpstreamSpecError, yaml.YAMLError, OSError) as error:
        log.error("%s", error)
        return 2
    log.info("listening on http://%s:%d (routes from %s)", args.host, args.port, args.config)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        server.stop(timeout=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
