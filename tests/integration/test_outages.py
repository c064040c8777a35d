"""ClickHouse outages: the worker backs off, keeps its place, shows the outage, catches up exactly.

Two code paths: a ClickHouse server over HTTP (the writable query endpoint as a stand-in server,
behind a proxy that refuses connections, hangs or answers with errors), and the embedded
engine (writes made to fail at the sink boundary).
"""

import asyncio
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from salespulse.runtime.ports import free_port, wait_for_port
from salespulse.runtime.waiting import wait_until
from salespulse.runtime.worker_process import WorkerProcess
from tests.support.fault_proxy import FaultProxy
from tests.support.pipeline import ScenarioRun

OUTAGE_SECONDS = 4.0


def committed_offsets(bootstrap: str, worker: WorkerProcess) -> int:
    """Sum of the offsets the ingest consumer group has committed on the activity topics."""

    async def fetch() -> int:
        consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=f"{worker.app_id}-ingest")
        await consumer.start()
        try:
            total = 0
            for suffix in ("visits", "calls", "deals", "feedback"):
                topic = f"{worker.topic_prefix}{suffix}"
                for partition in consumer.partitions_for_topic(topic) or ():
                    total += await consumer.committed(TopicPartition(topic, partition)) or 0
            return total
        finally:
            await consumer.stop()

    return asyncio.run(fetch())


def go_through_outage(run: ScenarioRun, start: Callable[[], None], end: Callable[[], None]) -> None:
    """Publish during an outage and check the worker holds its place and says so."""
    worker, broker = run.worker, run.worker.broker
    third = len(run.scenario.events) // 3
    before_errors = worker.counter("salespulse_sink_errors_total")
    committed_before = committed_offsets(broker, worker)
    consumed_before = worker.counter("salespulse_events_consumed_total")
    start()
    run.publish_events(run.scenario.events[third : 2 * third])
    wait_until(lambda: worker.counter("salespulse_sink_errors_total") > before_errors, 60, "sink errors")
    time.sleep(OUTAGE_SECONDS)
    status, body = worker.health()
    assert status == 503 and body["clickhouse"] == "unavailable" and body["clickhouse_error"], body
    assert worker.counter("salespulse_clickhouse_up") == 0
    # Nothing written, nothing committed: the worker keeps its place.
    assert worker.counter("salespulse_events_consumed_total") == consumed_before
    assert committed_offsets(broker, worker) == committed_before
    end()
    wait_until(lambda: worker.health()[0] == 200, 90, "the worker to recover")


def check_exact(run: ScenarioRun) -> None:
    worker, scenario = run.worker, run.scenario
    third = len(scenario.events) // 3
    run.publish_events(scenario.events[2 * third :])
    run.wait_consumed(len(scenario.org) + len(scenario.events))
    run.assert_exact()
    assert worker.counter("salespulse_events_duplicate_total") == 0  # retries wrote nothing twice
    assert worker.counter("salespulse_clickhouse_up") == 1


@pytest.fixture
def store_server(tmp_path: Path) -> Iterator[int]:
    """A ClickHouse stand-in over HTTP: the query endpoint in writable mode, its own process."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.support.store_server", str(tmp_path / "store"), str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )
    wait_for_port("127.0.0.1", port, 60)
    yield port
    process.terminate()
    process.wait(30)


def test_clickhouse_server_refusing_hanging_and_failing(
    scenario_run: Callable[..., ScenarioRun], store_server: int, capsys: pytest.CaptureFixture[str]
) -> None:
    proxy = FaultProxy(free_port(), store_server)
    try:
        run = scenario_run(
            SALESPULSE_CLICKHOUSE_URL=f"http://127.0.0.1:{proxy.listen_port}",
            SALESPULSE_CLICKHOUSE_TIMEOUT_SECONDS="2",
            SALESPULSE_SQL_PORT="0",
        )
        worker, publisher, scenario = run.worker, run.publisher, run.scenario
        worker.query_port = store_server
        run.start()
        run.publish(scenario.events[: len(scenario.events) // 3])
        run.wait_consumed(len(scenario.org) + len(scenario.events) // 3)

        go_through_outage(run, lambda: proxy.set_mode("refuse"), lambda: proxy.set_mode("pass"))
        for mode in ("hang", "error"):
            # The remaining outages: nothing new is published, the worker must stay put and recover.
            proxy.set_mode(mode)  # type: ignore[arg-type]
            visit = next(event for event in scenario.events if event["event_type"] == "visit")
            publisher.send(
                "visits", visit, visit["customer_id"]
            )  # a duplicate: the write must reach ClickHouse
            publisher.flush()
            errors = worker.counter("salespulse_sink_errors_total")
            wait_until(
                lambda e=errors: worker.counter("salespulse_sink_errors_total") > e, 60, f"{mode} errors"
            )
            assert worker.health()[0] == 503
            proxy.set_mode("pass")
            wait_until(lambda: worker.health()[0] == 200, 90, "recovery")
        check_exact_after_duplicates(run)
        with capsys.disabled():
            print(
                f"\n  ClickHouse server outages survived: {len(proxy.outages)} ({', '.join(proxy.outages)})"
            )
    finally:
        proxy.close()


def check_exact_after_duplicates(run: ScenarioRun) -> None:
    worker, scenario = run.worker, run.scenario
    third = len(scenario.events) // 3
    run.publish_events(scenario.events[2 * third :])
    total = len(scenario.org) + len(scenario.events) + 2  # two duplicates sent during outages
    run.wait_consumed(total)
    run.assert_exact()
    assert worker.counter("salespulse_events_duplicate_total") == 2
    assert worker.counter("salespulse_clickhouse_up") == 1


def test_embedded_engine_write_failures(
    scenario_run: Callable[..., ScenarioRun], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    switch = tmp_path / "clickhouse-down"
    run = scenario_run(SALESPULSE_FAULTS=f"fail_writes_while={switch}").start()
    scenario = run.scenario
    run.publish(scenario.events[: len(scenario.events) // 3])
    run.wait_consumed(len(scenario.org) + len(scenario.events) // 3)
    go_through_outage(run, switch.touch, switch.unlink)
    check_exact(run)
    with capsys.disabled():
        print("\n  embedded ClickHouse outages survived: 1 (injected write failures)")
