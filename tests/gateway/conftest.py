"""Fixtures: one scripted upstream and one dev gateway (serving gateway/kong.yml) shared by the session, the
upstream's record reset for each test; tests that need another config start their own gateway."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from gateway_harness import RunningGateway, Upstream, launch_gateway, serve_upstream, stop_gateway


@pytest.fixture(scope="session")
def shared_upstream() -> Iterator[Upstream]:
    state, server = serve_upstream()
    yield state
    server.shutdown()
    server.server_close()


@pytest.fixture
def upstream_server(shared_upstream: Upstream) -> Upstream:
    shared_upstream.reset()
    return shared_upstream


@pytest.fixture(scope="session")
def shared_gateway(shared_upstream: Upstream) -> Iterator[RunningGateway]:
    gateway = launch_gateway({"llm": shared_upstream.url})
    yield gateway
    stop_gateway(gateway)


@pytest.fixture
def gateway(shared_gateway: RunningGateway, upstream_server: Upstream) -> RunningGateway:
    """The dev gateway serving the project's own gateway/kong.yml, with the llm service on the scripted upstream."""
    return shared_gateway


@pytest.fixture
def start_gateway() -> Iterator[Callable[..., RunningGateway]]:
    started: list[RunningGateway] = []

    def start(*args, **kwargs) -> RunningGateway:
        started.append(launch_gateway(*args, **kwargs))
        return started[-1]

    yield start
    for gateway in started:
        stop_gateway(gateway)
