"""`salespulse up` as a user runs it: start, query, stop with SIGTERM, start again, lose nothing."""

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import clickhouse_connect
import orjson
import pytest

from salespulse.runtime.ports import free_port
from salespulse.runtime.waiting import wait_until
from tests.oracle.scenario import build_scenario
from tests.support.freshness import ORG, call_event
from tests.support.pipeline import (
    actual_views,
    assert_views_equal,
    expected_for,
    publish_events,
    publish_org,
    scenario_env,
    wait_consumed,
)
from tests.support.processes import Publisher, spawn_worker

SCENARIO = build_scenario()


class Up:
    """A running `salespulse up`, seen through the same ports a user would use."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.broker_port, self.web_port, self.sql_port = free_port(), free_port(), free_port()
        self.ui_port = free_port()
        self.ingest_port = free_port()
        self.log_path = data_dir.parent / f"up-{data_dir.name}.log"
        self.process: subprocess.Popen[bytes] | None = None
        # The view helpers only need the ports and topic prefix of the worker `up` runs.
        self.worker = spawn_worker(
            broker=f"127.0.0.1:{self.broker_port}",
            data_dir=data_dir,
            topic_prefix="crm.",
            app_id="salespulse",
            web_port=self.web_port,
            sql_port=self.sql_port,
        )

    def start(self) -> None:
        env = self.worker.environment()
        env.update(scenario_env(SCENARIO))
        for name in (
            "SALESPULSE_BROKER",
            "SALESPULSE_WEB_PORT",
            "SALESPULSE_SQL_PORT",
            "SALESPULSE_DATA_DIR",
        ):
            env.pop(name)  # `up` takes these from its flags
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "salespulse",
                "up",
                "--data-dir",
                str(self.data_dir),
                "--broker-port",
                str(self.broker_port),
                "--web-port",
                str(self.web_port),
                "--sql-port",
                str(self.sql_port),
                "--ui-port",
                str(self.ui_port),
                "--ingest-port",
                str(self.ingest_port),
                "--no-dashboard",
            ],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        self.worker.wait_ready()

    def sigterm(self, timeout: float = 90) -> int:
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout)


@pytest.fixture
def up(tmp_path: Path) -> Iterator[Up]:
    running = Up(tmp_path / "data")
    yield running
    if running.process is not None and running.process.poll() is None:
        running.process.kill()


def test_sigterm_then_restart_on_the_same_data_dir_loses_nothing(up: Up) -> None:
    half = len(SCENARIO.events) // 2
    first, second = SCENARIO.events[:half], SCENARIO.events[half:]

    up.start()
    publisher = Publisher(up.worker.broker, "crm.")
    sent = publish_org(publisher, SCENARIO.org) + publish_events(publisher, first)
    publisher.close()
    wait_consumed(up.worker, sent)
    assert up.sigterm() == 0

    # The broker kept messages in memory and is gone; ClickHouse kept everything accepted.
    up.start()
    publisher = Publisher(up.worker.broker, "crm.")
    sent = publish_events(publisher, second)
    publisher.close()
    wait_consumed(up.worker, sent)

    assert_views_equal(actual_views(up.worker), expected_for(SCENARIO))
    assert up.sigterm() == 0


def test_the_query_endpoint_serves_clickhouse_clients_and_refuses_writes(up: Up) -> None:
    up.start()
    publisher = Publisher(up.worker.broker, "crm.")
    sent = publish_org(publisher, SCENARIO.org) + publish_events(publisher, SCENARIO.events[:300])
    publisher.close()
    wait_consumed(up.worker, sent)
    expected = expected_for(SCENARIO, SCENARIO.events[:300])

    client = clickhouse_connect.get_client(host="127.0.0.1", port=up.sql_port, database="salespulse")
    deals = client.query("SELECT count() FROM deals_current").result_rows[0][0]
    assert deals == len(expected["deals_current"])
    visits = client.query(
        "SELECT sum(visits) FROM kpi_daily WHERE level = {level:String}", parameters={"level": "company"}
    ).result_rows[0][0]
    assert visits == sum(row[3] for row in expected["kpi_daily"] if row[1] == "company")

    curl = ["curl", "-s", "-S", f"http://127.0.0.1:{up.sql_port}/"]
    count = subprocess.run(
        [*curl[:-1], f"{curl[-1]}?database=salespulse&query=SELECT+count()+FROM+deals_current"],
        capture_output=True,
        check=True,
        text=True,
    ).stdout
    assert count == f"{deals}\n"
    events_before = client.query("SELECT count() FROM events").result_rows[0][0]
    for statement in (
        "INSERT INTO salespulse.events (event_id) VALUES ('forged')",
        "DROP TABLE salespulse.events",
        "CREATE TABLE salespulse.extra (a UInt8) ENGINE = Memory",
    ):
        reply = subprocess.run(
            [*curl, "-w", "\n%{http_code}", "--data-binary", statement],
            capture_output=True,
            check=True,
            text=True,
        ).stdout
        body, status = reply.rsplit("\n", 1)
        assert status == "500" and "Code: 164" in body and "(READONLY)" in body, reply
        with pytest.raises(Exception, match="READONLY"):
            client.command(statement)
    assert client.query("SELECT count() FROM events").result_rows[0][0] == events_before
    assert client.query("EXISTS TABLE salespulse.extra").result_rows[0][0] == 0

    # The manager page: its URL printed with the others, its API reading the same views.
    page = f"http://127.0.0.1:{up.ui_port}/"
    wait_until(
        lambda: "manager page" in up.log_path.read_text() and page in up.log_path.read_text(),
        30,
        "the page's URL in the output of `up`",
    )
    kpis = wait_until(
        lambda: _get_json(f"{page}api/v1/kpis?from=2026-01-01&to=2026-04-30"), 30, "the page's API"
    )
    assert kpis["current"]["sums"]["visits"] == visits
    assert "static/js/app.js" in urllib.request.urlopen(page, timeout=10).read().decode()

    # The ingestion gateway: its URL printed, a token made for the data directory, events accepted.
    gateway = f"http://127.0.0.1:{up.ingest_port}"
    wait_until(lambda: f"{gateway}/v1/events" in up.log_path.read_text(), 30, "the gateway's URL")
    token_file = up.data_dir.resolve() / "ingest-tokens"
    assert str(token_file) in up.log_path.read_text() and token_file.stat().st_mode & 0o077 == 0
    token = next(line for line in token_file.read_text().splitlines() if line.startswith("local="))
    event = {**next(e for e in SCENARIO.events if e["event_type"] == "visit"), "event_id": "via-gateway-1"}
    request = urllib.request.Request(
        f"{gateway}/v1/events",
        data=orjson.dumps([event]),
        headers={
            "Authorization": f"Bearer {token.removeprefix('local=')}",
            "Content-Type": "application/json",
        },
    )
    answer = wait_until(lambda: _post_json(request), 30, "the gateway to accept an event")
    assert answer == {"accepted": 1, "rejected": []}
    assert up.sigterm() == 0
    # The page stopped with everything else.
    with pytest.raises(OSError):
        urllib.request.urlopen(page, timeout=5)


def _post_json(request: urllib.request.Request) -> Any:
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return orjson.loads(response.read())
    except OSError:
        return None


def _get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as response:
        return orjson.loads(response.read())


@pytest.mark.parametrize("flag", ["--broker-port", "--ingest-port"])
def test_a_taken_port_is_refused_with_a_clear_message(tmp_path: Path, flag: str) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        others = {
            name: free_port()
            for name in ("--broker-port", "--web-port", "--sql-port", "--ui-port", "--ingest-port")
        }
        others[flag] = port
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "salespulse",
                "up",
                "--data-dir",
                str(tmp_path),
                *(str(part) for pair in others.items() for part in pair),
                "--no-dashboard",
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert result.returncode == 2
    assert f"port {port} on 127.0.0.1 is already in use" in result.stdout
    assert flag in result.stdout


# --- issue 17, point 1: the embedded broker's messages survive a clean stop, and its crash ------

BURST = 150_000


def _publish_calls(bootstrap: str, first: int, count: int) -> int:
    """``count`` call events with librdkafka (acks=all); returns how many the broker acknowledged."""
    from confluent_kafka import Producer

    acknowledged = 0

    def on_delivery(error: object, _message: object) -> None:
        nonlocal acknowledged
        if error is None:
            acknowledged += 1

    producer = Producer(
        {"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 20, "batch.num.messages": 10_000}
    )
    for record in ORG:
        producer.produce("crm.org", orjson.dumps(record), key=record["rep_id"].encode())
    for number in range(first, first + count):
        event = call_event(number)
        while True:
            try:
                producer.produce(
                    "crm.calls",
                    orjson.dumps(event),
                    key=event["customer_id"].encode(),
                    on_delivery=on_delivery,
                )
                break
            except BufferError:
                producer.poll(0.1)
        producer.poll(0)
    assert producer.flush(120) == 0
    return acknowledged


def _calls_in_views(up: Up) -> int:
    rows = up.worker.query("SELECT sum(calls) FROM kpi_daily WHERE level = 'company'")
    return int(rows[0][0] or 0)


def test_a_clean_stop_right_after_a_burst_loses_no_acknowledged_event(
    up: Up, capsys: pytest.CaptureFixture[str]
) -> None:
    up.start()
    acknowledged = _publish_calls(up.worker.broker, 0, BURST)
    assert acknowledged == BURST
    written_at_stop = _calls_in_views(up)
    stopped = time.monotonic()
    assert up.sigterm(timeout=300) == 0  # at once: the worker is still behind
    stop_seconds = time.monotonic() - stopped
    output = up.log_path.read_text()

    up.start()  # the broker is new and empty: what counts is what ClickHouse kept
    assert _calls_in_views(up) == acknowledged
    assert "the worker wrote everything the broker held" in output, output[-2000:]
    with capsys.disabled():
        print(
            f"\n  clean stop after a burst of {BURST:,} acknowledged calls: {written_at_stop:,} written when "
            f"SIGTERM came, stop took {stop_seconds:.1f}s, {_calls_in_views(up):,} in the views after restart"
        )
    assert up.sigterm() == 0


def _broker_pid(up: Up) -> int:
    """The embedded broker's process: the child of `up` that runs Tansu."""
    assert up.process is not None
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            fields = dict(line.split(":\t", 1) for line in status.read_text().splitlines() if ":\t" in line)
            command = (status.parent / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if int(fields.get("PPid", "0")) == up.process.pid and b"--listener-url" in command:
            return int(status.parent.name)
    raise AssertionError("no broker process under `up`")


def test_a_killed_broker_is_restarted_and_new_events_reach_the_views(up: Up) -> None:
    up.start()
    assert _publish_calls(up.worker.broker, 0, 1_000) == 1_000
    wait_until(lambda: _calls_in_views(up) == 1_000, 120, "the first 1,000 calls in the views")

    killed = _broker_pid(up)
    os.kill(killed, signal.SIGKILL)
    wait_until(
        lambda: "the embedded broker is back" in up.log_path.read_text() and _broker_pid(up) != killed,
        60,
        "`up` to restart the broker",
    )
    assert up.process is not None and up.process.poll() is None
    assert _publish_calls(up.worker.broker, 1_000, 1_000) == 1_000
    wait_until(
        lambda: _calls_in_views(up) == 2_000,
        180,
        f"the new calls in the views after the broker's restart (log:\n{up.worker.log_tail(20)})",
    )
    assert up.sigterm() == 0
