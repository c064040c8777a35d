"""The DLQ workflow (issue: reliability): list what was rejected, fix the cause, replay.

Deals in CNY arrive before the CNY rate is configured and go to the DLQ (unknown_currency),
beside a message that is not JSON. `salespulse dlq list` counts them by reason with a sample;
the worker restarts with the rate; `salespulse dlq replay` sends them back: the deals are
accepted exactly once, the broken message returns to the DLQ and is all that is left waiting.
"""

import subprocess
import sys
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import orjson

from salespulse.runtime.waiting import wait_until
from salespulse.runtime.worker_process import WorkerProcess
from tests.support.processes import Publisher


def deal(number: int, currency: str) -> dict[str, Any]:
    return {
        "event_id": f"dlq-deal-{number}",
        "occurred_at": f"2026-03-0{number}T10:00:00+08:00",
        "rep_id": "rep-01",
        "customer_id": f"cust-{number}",
        "deal_id": f"D-{number}",
        "stage": "proposal",
        "amount": f"{number}000",
        "currency": currency,
    }


def salespulse(worker: WorkerProcess, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "salespulse", *args],
        env=worker.environment(),
        capture_output=True,
        text=True,
        timeout=120,
    )


def waiting(worker: WorkerProcess) -> dict[str, int]:
    listed = salespulse(worker, "dlq", "list", "--format", "json")
    assert listed.returncode == 0, listed.stdout + listed.stderr
    return {entry["reason"]: entry["count"] for entry in orjson.loads(listed.stdout)}


def test_rejected_deals_are_replayed_once_the_rate_exists_and_still_bad_ones_stay(
    make_worker: Callable[..., WorkerProcess], make_publisher: Callable[[str], Publisher]
) -> None:
    worker = make_worker(SALESPULSE_CURRENCY_RATES="EUR=1.08").start()
    worker.wait_ready()
    publisher = make_publisher(worker.topic_prefix)
    for number in (1, 2, 3):
        publisher.send("deals", deal(number, "CNY"), f"D-{number}")
    publisher.send("deals", deal(4, "USD"), "D-4")
    publisher.send("visits", b'{"event_id": "broken", "occurred_at": ', b"broken")
    publisher.flush()
    wait_until(lambda: worker.counter("salespulse_events_consumed_total") >= 5, 60, "5 messages consumed")
    assert worker.counter("salespulse_events_rejected_total", reason="unknown_currency") == 3

    # Consumed is counted when a batch is read; its rejects reach the DLQ just after.
    wait_until(
        lambda: waiting(worker) == {"unknown_currency": 3, "invalid_json": 1}, 60, "4 records in the DLQ"
    )
    listed = salespulse(worker, "dlq", "list", "--format", "json")
    assert listed.returncode == 0, listed.stderr
    groups = {entry["reason"]: entry for entry in orjson.loads(listed.stdout)}
    assert groups["unknown_currency"]["source_topic"] == f"{worker.topic_prefix}deals"
    assert "CNY" in groups["unknown_currency"]["sample_message"]
    sample = orjson.loads(
        groups["unknown_currency"]["sample_payload"]
    )  # the first read: partitions interleave
    assert sample["event_id"] in {"dlq-deal-1", "dlq-deal-2", "dlq-deal-3"} and sample["currency"] == "CNY"

    # The fix: the CNY rate. The same worker (group, data) restarts with it.
    assert worker.stop() == 0
    worker.extra_env["SALESPULSE_CURRENCY_RATES"] = "EUR=1.08,CNY=0.14"
    fixed = worker.start()
    fixed.wait_ready()

    replayed = salespulse(fixed, "dlq", "replay")
    assert replayed.returncode == 0, replayed.stderr
    assert "replayed 4 message(s)" in replayed.stdout and "unknown_currency 3" in replayed.stdout
    wait_until(lambda: fixed.counter("salespulse_events_consumed_total") >= 4, 60, "the replayed messages")
    wait_until(lambda: waiting(fixed) == {"invalid_json": 1}, 60, "the broken message back in the DLQ, alone")

    amounts = fixed.query("SELECT deal_id, amount FROM deals_current ORDER BY deal_id")
    assert amounts == [
        ("D-1", Decimal("140")),
        ("D-2", Decimal("280")),
        ("D-3", Decimal("420")),
        ("D-4", Decimal("4000")),
    ]
    assert fixed.counter("salespulse_events_accepted_total", type="deal") == 3

    # Replaying again sends only what is waiting (the broken message); the deals count once.
    again = salespulse(fixed, "dlq", "replay")
    assert "replayed 1 message(s)" in again.stdout and "invalid_json 1" in again.stdout, again.stdout
    wait_until(lambda: fixed.counter("salespulse_events_consumed_total") >= 5, 60, "the second replay")
    wait_until(lambda: waiting(fixed) == {"invalid_json": 1}, 60, "one broken message waiting")
    assert fixed.query("SELECT count() FROM events WHERE event_type = 'deal'") == [(4,)]
    assert fixed.counter("salespulse_events_rejected_total", reason="invalid_json") == 2
    fixed.stop()
