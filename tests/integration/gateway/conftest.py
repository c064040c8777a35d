"""Gateways for the tests: a real `salespulse gateway` process on the test's own topics."""

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from salespulse.embedded.broker import EmbeddedBroker
from salespulse.runtime.gateway_process import GatewayProcess
from tests.support.gateway import TOKEN, TOKEN_NAME


@pytest.fixture
def make_gateway(broker: EmbeddedBroker, tmp_path: Path) -> Iterator[Callable[..., GatewayProcess]]:
    """Factory: a started, healthy gateway on ``topic_prefix`` (and ``bootstrap``, default the session broker)."""
    started: list[GatewayProcess] = []

    def make(topic_prefix: str, bootstrap: str | None = None, **extra_env: str) -> GatewayProcess:
        gateway = GatewayProcess(
            bootstrap or broker.bootstrap,
            topic_prefix,
            {TOKEN_NAME: TOKEN, "other-crm": "other-crm-token-abcdefghij"},
            tmp_path / f"gateway-{len(started)}.log",
            extra_env,
        )
        started.append(gateway)
        gateway.start()
        gateway.wait_ready()
        return gateway

    yield make
    for gateway in started:
        gateway.stop(10)
