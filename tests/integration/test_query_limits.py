"""Issue 17, point 2: a careless query on the worker's query endpoint cannot take ingest down.

The worker runs with a small memory limit for its endpoint. While a client keeps sending a
query that would need about a gigabyte (``groupArray`` over 100 million numbers), every such
query fails cleanly with MEMORY_LIMIT_EXCEEDED, and call events published meanwhile reach the
views within the freshness bound.
"""

import threading
import time
from collections.abc import Callable

import pytest
from clickhouse_connect.driver.exceptions import DatabaseError

from salespulse.runtime.worker_process import WorkerProcess
from tests.support.freshness import FRESHNESS_BOUND_SECONDS, FreshnessProbe, percentile
from tests.support.processes import Publisher

HUNGRY = "SELECT length(groupArray(number)) FROM numbers(100000000)"  # ~1 GiB of arrays


def test_a_memory_hungry_query_fails_cleanly_while_ingest_stays_fresh(
    make_worker: Callable[..., WorkerProcess],
    make_publisher: Callable[[str], Publisher],
    capsys: pytest.CaptureFixture[str],
) -> None:
    worker = make_worker(
        SALESPULSE_SQL_MAX_MEMORY_BYTES=str(100 << 20), SALESPULSE_SQL_MAX_CONCURRENT_QUERIES="2"
    )
    worker.start()
    worker.wait_ready()
    probe = FreshnessProbe(worker, make_publisher(worker.topic_prefix))
    probe.publish_org()
    probe.probe()  # warm: the first flush also creates the day's rows

    outcomes: list[str] = []
    stop = threading.Event()

    def hog() -> None:
        client = worker.client()
        try:
            while not stop.is_set():
                try:
                    client.query(HUNGRY)
                    outcomes.append("answered")
                except DatabaseError as error:
                    outcomes.append("241" if "MEMORY_LIMIT_EXCEEDED" in str(error) else str(error)[:300])
        finally:
            client.close()

    hogging = threading.Thread(target=hog)
    hogging.start()
    try:
        deadline = time.monotonic() + 8
        while time.monotonic() < deadline:
            probe.probe()
            time.sleep(0.3)
    finally:
        stop.set()
        hogging.join(120)

    assert outcomes and set(outcomes) == {"241"}, outcomes[:5]
    assert worker.running()
    assert max(probe.latencies) <= FRESHNESS_BOUND_SECONDS, sorted(probe.latencies)
    with capsys.disabled():
        print(
            f"\n  memory-hungry queries: {len(outcomes)} refused (241); "
            f"{len(probe.latencies)} probes, freshness p95 {percentile(probe.latencies, 95):.2f}s "
            f"max {max(probe.latencies):.2f}s"
        )
