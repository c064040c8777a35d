"""Issue 17, point 4: an alert flood does not stall ingest.

A thousand alert transitions land on the alerts topic at once (a backfill crossing the notify
age, a misconfigured rule) and the worker notifies four webhook targets of each: 4,000
deliveries, each checked against the delivery log. While they are delivered, call events
published every half second must reach the views within the freshness bound, and every
transition reaches every target exactly once.
"""

import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import orjson
import pytest

from salespulse.runtime.ports import free_port
from salespulse.runtime.waiting import wait_until
from salespulse.runtime.worker_process import WorkerProcess
from tests.support.freshness import FRESHNESS_BOUND_SECONDS, FreshnessProbe, percentile
from tests.support.processes import Publisher

TRANSITIONS = 1000
KINDS = ("generic", "slack", "dingtalk", "wecom")


class Receiver:
    """Accepts every message at once (as DingTalk and WeCom answer); counts them per path and body."""

    def __init__(self) -> None:
        self.accepted: Counter[tuple[str, bytes]] = Counter()
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as the real services
            disable_nagle_algorithm = True  # headers and body leave at once, no delayed-ACK wait

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                with receiver.lock:
                    receiver.accepted[(self.path.split("?")[0].strip("/"), body)] += 1
                answer = b'{"errcode": 0, "errmsg": "ok"}'
                self.send_response(200)
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def total(self) -> int:
        with self.lock:
            return sum(self.accepted.values())


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    running = Receiver()
    yield running
    running.server.shutdown()


def alert(number: int, at: datetime) -> dict[str, Any]:
    """One 'opened' transition, written as the stall monitor writes it (contract §6)."""
    alert_id = f"storm-deal-{number:05d}:idle:1"
    return {
        "alert_id": alert_id,
        "transition_id": f"{alert_id}:opened",
        "deal_id": f"storm-deal-{number:05d}",
        "reason": "idle",
        "state": "opened",
        "severity": "warning",
        "at": at.isoformat(),
        "stalled_since": (at - timedelta(days=1)).isoformat(),
        "threshold_days": 7,
        "resolved_by": None,
        "rep_id": "probe-rep",
        "team_id": "probe-team",
        "region_id": "probe-region",
        "customer_id": f"storm-cust-{number % 40}",
        "stage": "proposal",
        "amount": "1000.00",
        "currency": "USD",
        "detected_at": at.isoformat(),
    }


def test_a_thousand_transitions_are_delivered_while_ingest_stays_fresh(
    receiver: Receiver,
    make_worker: Callable[..., WorkerProcess],
    make_publisher: Callable[[str], Publisher],
    capsys: pytest.CaptureFixture[str],
) -> None:
    targets = [{"name": kind, "kind": kind, "url": f"{receiver.url}/{kind}"} for kind in KINDS]
    worker = make_worker(SALESPULSE_WEBHOOKS=orjson.dumps(targets).decode())
    worker.start()
    worker.wait_ready()
    publisher = make_publisher(worker.topic_prefix)
    probe = FreshnessProbe(worker, publisher)
    probe.publish_org()
    probe.probe()  # warm

    now = datetime.now(UTC).replace(microsecond=0)
    storm = [alert(number, now - timedelta(minutes=number % 60)) for number in range(TRANSITIONS)]
    started = time.monotonic()
    publisher.send_all(("alerts", item, item["deal_id"]) for item in storm)
    expected = TRANSITIONS * len(KINDS)
    during: list[float] = []
    while receiver.total() < expected and time.monotonic() - started < 240:
        during.append(probe.probe())
        time.sleep(0.5)
    delivered_in = time.monotonic() - started
    wait_until(lambda: receiver.total() >= expected, 60, f"{expected} deliveries (now {receiver.total()})")

    # Each transition reached each target exactly once.
    per_target = Counter(path for path, _ in receiver.accepted)
    assert per_target == dict.fromkeys(KINDS, TRANSITIONS)
    assert set(receiver.accepted.values()) == {1}
    logged = worker.query(
        "SELECT target, countIf(outcome = 'delivered'), count() FROM webhook_deliveries FINAL "
        "GROUP BY target ORDER BY target"
    )
    assert logged == [(kind, TRANSITIONS, TRANSITIONS) for kind in sorted(KINDS)]
    # Ingest stayed fresh throughout.
    assert len(during) >= 1
    with capsys.disabled():
        print(
            f"\n  webhook storm: {expected} deliveries in {delivered_in:.1f}s; {len(during)} probes during it, "
            f"freshness p50 {percentile(during, 50):.2f}s p95 {percentile(during, 95):.2f}s max {max(during):.2f}s"
        )
    assert max(during) <= FRESHNESS_BOUND_SECONDS, sorted(during)
