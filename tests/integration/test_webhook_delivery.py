"""Webhooks end to end (issue: stalled opportunities): the stall scenario notified in four formats.

A local HTTP receiver fails the first two attempts of every message (HTTP 500, then 503) and
accepts the third. Each transition of the stall scenario (tests/integration/test_stalls.py)
must reach each format exactly once, in the format's documented shape; a restarted worker
sends nothing again.
"""

import base64
import hashlib
import hmac
import threading
import time
import urllib.parse
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import orjson
import pytest

from salespulse.runtime.ports import free_port
from salespulse.runtime.waiting import wait_until
from salespulse.runtime.worker_process import WorkerProcess
from tests.integration.test_stalls import EXPECTED, run, wait_for_alerts
from tests.support.processes import Publisher

SECRET = "SEC-test-secret"
KINDS = ("generic", "slack", "dingtalk", "wecom")


class Receiver:
    """Fails the first two attempts of each distinct body per path; records what it accepted."""

    def __init__(self) -> None:
        self.attempts: Counter[tuple[str, bytes]] = Counter()
        self.accepted: dict[str, list[tuple[dict[str, Any], dict[str, str]]]] = defaultdict(list)
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                url = urllib.parse.urlsplit(self.path)
                body = self.rfile.read(int(self.headers["Content-Length"]))
                with receiver.lock:
                    receiver.attempts[(url.path, body)] += 1
                    attempt = receiver.attempts[(url.path, body)]
                    if attempt > 2:
                        query = dict(urllib.parse.parse_qsl(url.query))
                        receiver.accepted[url.path.strip("/")].append((orjson.loads(body), query))
                status = {1: 500, 2: 503}.get(attempt, 200)
                answer = b'{"errcode": 0, "errmsg": "ok"}' if status == 200 else b"try again"
                self.send_response(status)
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def counts(self) -> dict[str, int]:
        with self.lock:
            return {kind: len(self.accepted[kind]) for kind in KINDS}


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    running = Receiver()
    yield running
    running.server.shutdown()


def webhooks(url: str) -> str:
    targets = [
        {"name": kind, "kind": kind, "url": f"{url}/{kind}", "backoff_seconds": 0.05, "max_attempts": 5}
        for kind in KINDS
    ]
    targets[2]["secret"] = SECRET
    return orjson.dumps(targets).decode()


def test_each_transition_reaches_each_format_exactly_once_despite_failures(
    receiver: Receiver,
    make_worker: Callable[..., WorkerProcess],
    make_publisher: Callable[[str], Publisher],
    broker: Any,
) -> None:
    worker = run(
        make_worker,
        make_publisher,
        SALESPULSE_WEBHOOKS=webhooks(receiver.url),
        SALESPULSE_NOTIFY_MAX_AGE_HOURS="1000000",  # the scenario is in April 2026
    )
    alerts = wait_for_alerts(worker, broker)
    assert len(alerts) == len(EXPECTED)
    every = {kind: len(EXPECTED) for kind in KINDS}
    wait_until(lambda: receiver.counts() == every, 60, f"{every} notifications (now {receiver.counts()})")

    # A restart sends nothing again.
    assert worker.stop() == 0
    worker.start()
    worker.wait_ready()
    time.sleep(4)
    assert receiver.counts() == every
    assert set(receiver.attempts.values()) == {3}  # each message: two failures, then accepted

    by_transition = {alert["transition_id"]: alert for alert in alerts}
    generic = [body for body, _ in receiver.accepted["generic"]]
    assert sorted(body["transition_id"] for body in generic) == sorted(by_transition)
    for body in generic:
        alert = by_transition[body["transition_id"]]
        assert {key: body[key] for key in alert} == alert and body["text"]

    for body, _ in receiver.accepted["slack"]:  # incoming webhook: text, plus blocks of mrkdwn sections
        assert set(body) == {"text", "blocks"} and body["text"]
        assert [block["type"] for block in body["blocks"]] == ["section"]
        assert body["blocks"][0]["text"]["type"] == "mrkdwn"
    for body, query in receiver.accepted["dingtalk"]:  # custom robot, markdown, signed (加签)
        assert body["msgtype"] == "markdown" and set(body["markdown"]) == {"title", "text"}
        digest = hmac.new(
            SECRET.encode(), f"{query['timestamp']}\n{SECRET}".encode(), hashlib.sha256
        ).digest()
        assert query["sign"] == base64.b64encode(digest).decode()
    for body, _ in receiver.accepted["wecom"]:  # group robot, markdown
        assert body["msgtype"] == "markdown" and set(body["markdown"]) == {"content"}
    for kind in ("slack", "dingtalk", "wecom"):  # one distinct message per transition
        assert len({orjson.dumps(body) for body, _ in receiver.accepted[kind]}) == len(EXPECTED)

    delivered = worker.query(
        "SELECT target, count() FROM webhook_deliveries FINAL WHERE outcome = 'delivered' "
        "GROUP BY target ORDER BY target"
    )
    assert delivered == sorted((kind, len(EXPECTED)) for kind in KINDS)
