"""The broker cut off mid-run: the gateway answers 503 with Retry-After, the resend after it returns is exact.

A broker of its own, reached only through a proxy (it advertises the proxy's address), so
"stopping" it is refusing connections at the proxy: the broker keeps the messages it has in
memory, as a real Kafka keeps them on disk across a restart.
"""

from collections.abc import Callable, Iterator
from pathlib import Path

import orjson
import pytest

from salespulse.embedded.broker import EmbeddedBroker
from salespulse.runtime.gateway_process import GatewayProcess
from salespulse.runtime.ports import free_port
from salespulse.runtime.waiting import wait_until
from tests.oracle.scenario import Scenario
from tests.support.fault_proxy import FaultProxy
from tests.support.gateway import batches, post
from tests.support.pipeline import ScenarioRun, scenario_env
from tests.support.processes import Publisher, spawn_worker


@pytest.fixture
def proxied_broker(tmp_path: Path) -> Iterator[tuple[EmbeddedBroker, FaultProxy]]:
    proxy_port, broker_port = free_port(), free_port()
    broker = EmbeddedBroker(broker_port, log_path=tmp_path / "broker.log", advertised_port=proxy_port)
    broker.start()
    proxy = FaultProxy(proxy_port, broker_port)
    yield broker, proxy
    proxy.close()
    broker.stop()


def test_broker_outage_gives_503_and_a_resend_gives_exact_views(
    proxied_broker: tuple[EmbeddedBroker, FaultProxy],
    make_gateway: Callable[..., GatewayProcess],
    scenario: Scenario,
    tmp_path: Path,
) -> None:
    _, proxy = proxied_broker
    bootstrap = f"127.0.0.1:{proxy.listen_port}"
    prefix = "gwout."
    gateway = make_gateway(prefix, bootstrap, SALESPULSE_INGEST_TIMEOUT_SECONDS="2", **scenario_env(scenario))
    url = gateway.url + "/v1/events"
    requests = batches(scenario.events, 500)
    third = len(requests) // 3
    assert third >= 1

    assert post(gateway.url + "/v1/records/org", orjson.dumps(scenario.org)).status == 200
    for batch in requests[:third]:
        assert post(url, orjson.dumps(batch)).body["accepted"] == len(batch)

    proxy.set_mode("refuse")
    failed = []
    for batch in requests[third : 2 * third]:
        answer = post(url, orjson.dumps(batch))
        assert answer.status == 503, answer
        assert answer.body["error"] == "broker_unavailable" and "resend" in answer.body["message"]
        assert int(answer.headers["Retry-After"]) > 0
        failed.append(batch)
    assert gateway.health_status() == 503
    assert gateway.counter("salespulse_gateway_broker_errors_total") == len(failed)

    proxy.set_mode("pass")
    wait_until(lambda: gateway.health_status() == 200, 60, "the gateway to see the broker again")
    for batch in failed + requests[2 * third :]:
        answer = post(url, orjson.dumps(batch))
        assert answer.status == 200 and answer.body["accepted"] == len(batch), answer

    # A worker reads what the broker acknowledged, redeliveries included: the views are exact.
    worker = spawn_worker(bootstrap, tmp_path / "worker", prefix, "test-gwout", scenario_env(scenario))
    run = ScenarioRun(worker, Publisher(bootstrap, prefix), scenario)
    try:
        run.start()
        run.wait_consumed(len(scenario.org) + len(scenario.events))
        run.assert_exact()
        assert worker.counter("salespulse_events_rejected_total") == 0
    finally:
        run.publisher.close()
        worker.stop(30)
