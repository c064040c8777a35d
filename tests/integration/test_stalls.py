"""Stalled opportunities end to end, in --clock event mode (issue: stalled opportunities and ops alerting).

Deals are crafted to hit each rule at known times. Every expected transition below is worked
out by hand from contract §6's defaults (idle: prospecting 14, qualified 10, proposal 7,
negotiation 5 days; stuck: 30, 21, 14, 14; overdue critical after 7 days; critical at twice a
threshold), not by the code under test.
"""

import asyncio
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest

from salespulse.kafka.consumers import read_topics
from salespulse.kafka.producer import message_key
from salespulse.runtime.waiting import wait_until
from salespulse.runtime.worker_process import WorkerProcess
from tests.support.pipeline import wait_consumed
from tests.support.processes import Publisher

T0 = datetime(2026, 4, 1, 9, 0, tzinfo=UTC)
ORG = [
    {"rep_id": "r1", "team_id": "t1", "region_id": "north", "effective_from": "2026-01-01"},
    {"rep_id": "r2", "team_id": "t2", "region_id": "south", "effective_from": "2026-01-01"},
]


def day(n: float) -> datetime:
    return T0 + timedelta(days=n)


def stamp(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


class Script:
    """Events in time order, as a CRM would send them."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    def deal(self, deal_id: str, n: float, stage: str, rep: str = "r1", close: str | None = None) -> None:
        event = {
            "event_type": "deal",
            "event_id": f"{deal_id}-{n}-{stage}",
            "occurred_at": stamp(day(n)),
            "rep_id": rep,
            "customer_id": f"c-{deal_id}",
            "deal_id": deal_id,
            "stage": stage,
            "amount": "1000",
        }
        if close:
            event["expected_close_date"] = close
        self.events.append(event)

    def visit(self, deal_id: str | None, n: float, rep: str = "r1") -> None:
        event = {
            "event_type": "visit",
            "event_id": f"v-{deal_id}-{n}",
            "occurred_at": stamp(day(n)),
            "rep_id": rep,
            "customer_id": f"c-{deal_id}",
            "duration_minutes": 30,
            "outcome": "completed",
        }
        if deal_id:
            event["deal_id"] = deal_id
        self.events.append(event)

    def call(self, deal_id: str, n: float, rep: str = "r1") -> None:
        self.events.append(
            {
                "event_type": "call",
                "event_id": f"c-{deal_id}-{n}",
                "occurred_at": stamp(day(n)),
                "rep_id": rep,
                "customer_id": f"c-{deal_id}",
                "deal_id": deal_id,
                "direction": "outbound",
                "duration_seconds": 60,
                "outcome": "connected",
            }
        )

    def ordered(self) -> list[dict[str, Any]]:
        return sorted(self.events, key=lambda event: event["occurred_at"])


def build() -> list[dict[str, Any]]:
    s = Script()
    # A: idle in prospecting, warning then critical, resolved by won.
    s.deal("A", 0, "prospecting")
    s.deal("A", 29, "won")
    # B: idle in qualified, resolved by a visit; then quiet enough until lost.
    s.deal("B", 0, "qualified")
    s.visit("B", 12)
    s.deal("B", 20, "lost")
    # C: idle in proposal, resolved by a call.
    s.deal("C", 0, "proposal")
    s.call("C", 8)
    s.deal("C", 12, "negotiation")
    s.deal("C", 15, "won")
    # D: idle in negotiation, resolved by a stage change.
    s.deal("D", 0, "negotiation")
    s.deal("D", 6, "proposal")
    s.deal("D", 10, "won")
    # E: stuck in qualified (kept active by visits), resolved by the stage change.
    s.deal("E", 0, "qualified")
    for n in (5, 10, 15, 20, 25):
        s.visit("E", n)
    s.deal("E", 30, "proposal")
    s.deal("E", 33, "lost")
    # F: overdue (expected 2026-04-05, so overdue from 04-06 00:00 UTC), critical after 7 days, won.
    s.deal("F", 0, "proposal", close="2026-04-05")
    for n in (3, 6, 9, 12):
        s.visit("F", n)
    s.deal("F", 13, "won", close="2026-04-05")
    # G and H never alert: steady progress; a future close date and an early win.
    for n, stage in (
        (0, "prospecting"),
        (5, "qualified"),
        (10, "proposal"),
        (14, "negotiation"),
        (17, "won"),
    ):
        s.deal("G", n, stage, rep="r2")
    s.deal("H", 0, "prospecting", close="2026-06-30")
    s.deal("H", 2, "won", close="2026-06-30")
    # I: idle in negotiation and still open at "now" (day 40), exactly at twice the threshold: warning.
    s.deal("I", 30, "negotiation", rep="r2")
    # J: idle (critical) and stuck in prospecting, still open.
    s.deal("J", 5, "prospecting", rep="r2")
    # K: idle in proposal, resolved by lost.
    s.deal("K", 0, "proposal")
    s.deal("K", 9, "lost")
    # "Now" in --clock event mode: the latest occurred_at, day 40.
    s.visit(None, 40)
    return s.ordered()


EVENTS = build()
overdue_since = datetime(2026, 4, 6, tzinfo=UTC)
# (deal, reason, state, at, severity, resolved_by), in the order they must appear on the topic.
EXPECTED = sorted(
    [
        ("A", "idle", "opened", day(14), "warning", None),
        ("A", "idle", "escalated", day(28), "critical", None),
        ("A", "idle", "resolved", day(29), "critical", "won"),
        ("B", "idle", "opened", day(10), "warning", None),
        ("B", "idle", "resolved", day(12), "warning", "activity"),
        ("C", "idle", "opened", day(7), "warning", None),
        ("C", "idle", "resolved", day(8), "warning", "activity"),
        ("D", "idle", "opened", day(5), "warning", None),
        ("D", "idle", "resolved", day(6), "warning", "stage_change"),
        ("E", "stuck", "opened", day(21), "warning", None),
        ("E", "stuck", "resolved", day(30), "warning", "stage_change"),
        ("F", "overdue", "opened", overdue_since, "warning", None),
        ("F", "overdue", "escalated", overdue_since + timedelta(days=7), "critical", None),
        ("F", "overdue", "resolved", day(13), "critical", "won"),
        ("I", "idle", "opened", day(35), "warning", None),
        ("J", "idle", "opened", day(19), "warning", None),
        ("J", "idle", "escalated", day(33), "critical", None),
        ("J", "stuck", "opened", day(35), "warning", None),
        ("K", "idle", "opened", day(7), "warning", None),
        ("K", "idle", "resolved", day(9), "warning", "lost"),
    ],
    key=lambda t: (t[3], t[0], t[1], ["opened", "escalated", "resolved"].index(t[2])),
)


def read_topic(bootstrap: str, topic: str) -> list[dict[str, Any]]:
    return [orjson.loads(m.value) for m in asyncio.run(read_topics(bootstrap, [topic]))[topic]]


def as_tuple(alert: dict[str, Any]) -> tuple[Any, ...]:
    at = datetime.fromisoformat(alert["at"]).astimezone(UTC)
    return (alert["deal_id"], alert["reason"], alert["state"], at, alert["severity"], alert["resolved_by"])


def in_topic_order(alerts: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    # One partition per deal keeps each deal's transitions in order; across deals, order by time.
    tuples = [as_tuple(alert) for alert in alerts]
    return sorted(tuples, key=lambda t: (t[3], t[0], t[1], ["opened", "escalated", "resolved"].index(t[2])))


def run(
    make_worker: Callable[..., WorkerProcess],
    make_publisher: Callable[[str], Publisher],
    crash_after: int | None = None,
    **extra_env: str,
) -> WorkerProcess:
    """Publish the scenario to a fresh worker; with ``crash_after``, SIGKILL and restart it mid-way."""
    worker = make_worker(SALESPULSE_CLOCK="event", SALESPULSE_STALL_CHECK_INTERVAL_SECONDS="0.5", **extra_env)
    worker.start()
    worker.wait_ready()
    publisher = make_publisher(worker.topic_prefix)
    publisher.send_all(("org", record, message_key("org", record)) for record in ORG)
    topics = {"visit": "visits", "call": "calls", "deal": "deals"}

    def publish(events: list[dict[str, Any]]) -> None:
        publisher.send_all((topics[e["event_type"]], e, message_key(e["event_type"], e)) for e in events)

    if crash_after is None:
        publish(EVENTS)
        wait_consumed(worker, len(ORG) + len(EVENTS))
        return worker
    publish(EVENTS[:crash_after])
    wait_consumed(worker, len(ORG) + crash_after)
    # Let the monitor act on the first half, then crash the worker and start it again.
    wait_until(lambda: worker.counter("salespulse_alert_transitions_total") > 0, 60, "the first alerts")
    worker.kill()
    worker.start()
    worker.wait_ready()
    publish(EVENTS[crash_after:])
    wait_consumed(worker, len(EVENTS) - crash_after)  # the restarted worker counts from zero
    return worker


def wait_for_alerts(worker: WorkerProcess, broker: Any) -> list[dict[str, Any]]:
    """The alerts topic once every expected transition is there and a few more rounds passed."""
    topic = f"{worker.topic_prefix}alerts"
    wait_until(lambda: len(read_topic(broker.bootstrap, topic)) >= len(EXPECTED), 120, "every expected alert")
    time.sleep(3)  # six more monitor rounds: nothing else may appear
    return read_topic(broker.bootstrap, topic)


@pytest.fixture
def first_run(
    make_worker: Callable[..., WorkerProcess], make_publisher: Callable[[str], Publisher], broker: Any
) -> Iterator[tuple[WorkerProcess, list[dict[str, Any]]]]:
    worker = run(make_worker, make_publisher)
    yield worker, wait_for_alerts(worker, broker)


def test_alerts_topic_and_views_hold_exactly_the_expected_transitions(
    first_run: tuple[WorkerProcess, list[dict[str, Any]]],
    make_worker: Callable[..., WorkerProcess],
    make_publisher: Callable[[str], Publisher],
    broker: Any,
) -> None:
    worker, alerts = first_run
    assert in_topic_order(alerts) == EXPECTED
    assert len({alert["transition_id"] for alert in alerts}) == len(alerts)  # no duplicates
    # Per deal, the topic holds the transitions in order (one partition per deal).
    for deal in {t[0] for t in EXPECTED}:
        on_topic = [as_tuple(alert) for alert in alerts if alert["deal_id"] == deal]
        assert on_topic == [t for t in EXPECTED if t[0] == deal]
    teams = {alert["deal_id"]: (alert["team_id"], alert["region_id"]) for alert in alerts}
    assert teams["A"] == ("t1", "north") and teams["J"] == ("t2", "south")

    # stall_alerts: one row per alert, in its latest state.
    rows = worker.query("SELECT deal_id, reason, state, severity, at, resolved_by FROM stall_alerts")
    latest: dict[tuple[str, str], tuple[Any, ...]] = {}
    for deal, reason, state, at, severity, resolved_by in EXPECTED:
        latest[(deal, reason)] = (deal, reason, state, severity, at.replace(tzinfo=None), resolved_by)
    assert sorted(rows) == sorted(latest.values())

    # stalled_deals: the open deals stalled now (day 40).
    stalled = worker.query(
        "SELECT deal_id, reasons, severity, stalled_since, idle_days, team_id FROM stalled_deals ORDER BY deal_id"
    )
    assert stalled == [
        ("I", ["idle"], "warning", day(35).replace(tzinfo=None), 10, "t2"),
        ("J", ["idle", "stuck"], "critical", day(19).replace(tzinfo=None), 35, "t2"),
    ]
    samples = worker.metric_samples()
    gauge = {
        dict(labels)["reason"] + "/" + dict(labels)["severity"]: value
        for (name, labels), value in samples.items()
        if name == "salespulse_stalled_deals"
    }
    assert gauge == {"idle/warning": 1, "idle/critical": 1, "stuck/warning": 1}

    # `salespulse stalled`, as an operator runs it.
    def cli(*flags: str) -> list[dict[str, Any]]:
        url = f"http://127.0.0.1:{worker.sql_port}"
        command = [sys.executable, "-m", "salespulse", "stalled", "--url", url, "--format", "json", *flags]
        return list(orjson.loads(subprocess.run(command, capture_output=True, check=True, timeout=60).stdout))

    listed = cli()
    assert [(row["deal_id"], row["reasons"], row["severity"]) for row in listed] == [
        ("J", "idle,stuck", "critical"),
        ("I", "idle", "warning"),
    ]
    assert [row["deal_id"] for row in cli("--severity", "warning", "--team", "t2")] == ["I"]
    assert cli("--region", "north") == []

    # The same input from scratch gives identical alerts.
    again = run(make_worker, make_publisher)
    replayed = wait_for_alerts(again, broker)
    strip = [{k: v for k, v in alert.items() if k != "detected_at"} for alert in alerts]
    strip_again = [{k: v for k, v in alert.items() if k != "detected_at"} for alert in replayed]
    key = lambda alert: alert["transition_id"]  # noqa: E731
    assert sorted(strip, key=key) == sorted(strip_again, key=key)


def test_a_worker_crash_mid_scenario_creates_no_duplicate_and_misses_none(
    make_worker: Callable[..., WorkerProcess], make_publisher: Callable[[str], Publisher], broker: Any
) -> None:
    worker = run(make_worker, make_publisher, crash_after=len(EVENTS) // 2)
    alerts = wait_for_alerts(worker, broker)
    assert in_topic_order(alerts) == EXPECTED
    assert len({alert["transition_id"] for alert in alerts}) == len(alerts)


def test_live_mode_uses_the_wall_clock(
    make_worker: Callable[..., WorkerProcess], make_publisher: Callable[[str], Publisher], broker: Any
) -> None:
    """Without --clock event, "now" is the wall clock: rules fire for deals that went quiet."""
    base = datetime.now(UTC).replace(microsecond=0)
    worker = make_worker(SALESPULSE_STALL_CHECK_INTERVAL_SECONDS="0.5")
    worker.start()
    worker.wait_ready()
    publisher = make_publisher(worker.topic_prefix)
    quiet = {
        "event_type": "deal",
        "event_id": "n1",
        "occurred_at": stamp(base - timedelta(days=6)),
        "rep_id": "r1",
        "customer_id": "c1",
        "deal_id": "N1",
        "stage": "negotiation",
        "amount": "10",
    }
    late_date = (base - timedelta(days=10)).date()
    overdue = {
        "event_type": "deal",
        "event_id": "n2",
        "occurred_at": stamp(base - timedelta(hours=2)),
        "rep_id": "r1",
        "customer_id": "c2",
        "deal_id": "N2",
        "stage": "proposal",
        "amount": "10",
        "expected_close_date": late_date.isoformat(),
    }
    publisher.send_all(("deals", event, event["deal_id"]) for event in (quiet, overdue))
    topic = f"{worker.topic_prefix}alerts"
    wait_until(lambda: len(read_topic(broker.bootstrap, topic)) >= 3, 60, "live alerts")
    alerts = in_topic_order(read_topic(broker.bootstrap, topic))
    # N1: negotiation idles after 5 days, so it opened a day ago; it turns critical only after 10.
    # N2: overdue by 9 days when it arrived (more than 7): opened and escalated at its own time.
    assert alerts == sorted(
        [
            ("N1", "idle", "opened", base - timedelta(days=1), "warning", None),
            ("N2", "overdue", "opened", base - timedelta(hours=2), "warning", None),
            ("N2", "overdue", "escalated", base - timedelta(hours=2), "critical", None),
        ],
        key=lambda t: (t[3], t[0], t[1], ["opened", "escalated", "resolved"].index(t[2])),
    )
