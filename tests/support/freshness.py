"""Freshness under load: publish a few call events, time how long until the views count them.

The load tests of issue 17 (a memory-hungry query, a webhook storm) check that ingest keeps its
freshness while something else happens in the worker. A probe is a handful of new call events
published at once; it is fresh when ``kpi_daily`` (company level) counts all of them.
"""

import math
import time
from dataclasses import dataclass, field
from typing import Any

from salespulse.kafka.producer import message_key
from salespulse.runtime.waiting import wait_until
from salespulse.runtime.worker_process import WorkerProcess
from tests.support.processes import Publisher

ORG = [
    {
        "rep_id": "probe-rep",
        "rep_name": "Probe Rep",
        "team_id": "probe-team",
        "team_name": "Probe team",
        "manager_id": "probe-mgr",
        "region_id": "probe-region",
        "effective_from": "2024-01-01",
    }
]


def call_event(number: int, occurred_at: str = "2026-03-02T09:30:00Z") -> dict[str, Any]:
    return {
        "event_id": f"probe-call-{number:07d}",
        "event_type": "call",
        "occurred_at": occurred_at,
        "rep_id": "probe-rep",
        "customer_id": f"probe-cust-{number % 50}",
        "direction": "outbound",
        "duration_seconds": 60,
        "outcome": "connected",
        "source": "probe",
    }


def calls_counted(worker: WorkerProcess) -> int:
    rows = worker.query("SELECT sum(calls) FROM kpi_daily WHERE level = 'company'")
    return int(rows[0][0] or 0) if rows else 0


@dataclass
class FreshnessProbe:
    """Publishes probes on a worker's topics; ``latencies`` holds each probe's time to the views."""

    worker: WorkerProcess
    publisher: Publisher
    per_probe: int = 5
    published: int = 0
    latencies: list[float] = field(default_factory=list)

    def publish_org(self) -> None:
        self.publisher.send_all(("org", record, message_key("org", record)) for record in ORG)

    def probe(self, timeout: float = 120.0) -> float:
        """Publish ``per_probe`` new calls and wait until the views count them; returns the seconds."""
        events = [call_event(self.published + i) for i in range(self.per_probe)]
        started = time.monotonic()
        self.publisher.send_all(("calls", event, message_key("call", event)) for event in events)
        self.published += len(events)
        wait_until(
            lambda: calls_counted(self.worker) >= self.published,
            timeout,
            f"{self.published} probe calls in kpi_daily",
            interval=0.05,
        )
        latency = time.monotonic() - started
        self.latencies.append(latency)
        return latency


# Contract §8: in live mode an accepted event shows in the views within 2 s (p95). The load tests
# hold every probe to it: on an idle pipeline a probe takes about half a second.
FRESHNESS_BOUND_SECONDS = 2.0


def percentile(values: list[float], rank: float) -> float:
    """The nearest-rank percentile (p95 of 20 probes is the 19th smallest)."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(rank / 100 * len(ordered)) - 1)]
