"""`stalled_deals` does not depend on the order events arrive in (contract §6, §7; issue 12).

The stall scenario of test_stalls.py, plus three open deals whose status hangs on one activity,
published four times to disjoint deal ids into one worker
(``--clock event``):

- (a) in time order;
- (b) shuffled;
- (c) deal events first, its visits and calls an hour of event time later: the worker sees the
  deals, the stall monitor alerts on that incomplete history, then the activities arrive together
  with an event an hour past the others (the event clock moves on meanwhile);
- (d) in time order with 10% of the events sent twice.

Each copy's `stalled_deals` rows must be identical and equal the from-scratch model
(tests/oracle/stall_model.py) at the final "now"; the alert log's latest states must agree with
them, and no transition is published twice. The test prints how many rows were right, so the
same test run on an older build gives the before/after figures.
"""

import random
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from salespulse.kafka.producer import message_key
from salespulse.runtime.waiting import wait_until
from salespulse.runtime.worker_process import WorkerProcess
from tests.integration.test_stalls import EVENTS, ORG, Script, read_topic, stamp
from tests.oracle.stall_model import stalled_deals as model_stalled_deals
from tests.support.pipeline import wait_consumed
from tests.support.processes import Publisher

COPIES = ("a", "b", "c", "d")


def late_sensitive() -> list[dict[str, Any]]:
    """Open deals whose stall status depends on an activity that may arrive late (now: day 40, 1 h)."""
    s = Script()
    # L (the example): qualified since day 11, last call on day 22: idle and stuck, both
    # warnings. Without the call, idle would be critical since day 31.
    s.deal("L", 11, "qualified")
    s.call("L", 22)
    # M: proposal since day 25, a visit on day 26: idle (7 days) since day 33, critical after
    # day 40. Without the visit, idle since day 32 and critical since day 39.
    s.deal("M", 25, "proposal")
    s.visit("M", 26)
    # O: negotiation since day 33, a call on day 37: not stalled (idle only after day 42).
    # Without the call, idle since day 38.
    s.deal("O", 33, "negotiation")
    s.call("O", 37)
    return s.ordered()


SCENARIO = sorted([*EVENTS, *late_sensitive()], key=lambda event: event["occurred_at"])
TOPICS = {"visit": "visits", "call": "calls", "deal": "deals"}
COLUMNS = "deal_id, rep_id, team_id, region_id, customer_id, stage, amount, reasons, severity, stalled_since, idle_days"


def copy_of(copy: str, event: dict[str, Any]) -> dict[str, Any]:
    """The scenario's event for copy ``copy``: its own deal, customer and event ids."""
    renamed = {
        **event,
        "event_id": f"{copy}-{event['event_id']}",
        "customer_id": f"{copy}-{event['customer_id']}",
    }
    if "deal_id" in event:
        renamed["deal_id"] = f"{copy}-{event['deal_id']}"
    return renamed


def strip(copy: str, row: tuple[Any, ...]) -> tuple[Any, ...]:
    """A row with the copy's prefix taken off its ids, to compare copies."""
    return (
        row[0].removeprefix(f"{copy}-"),
        row[1],
        row[2],
        row[3],
        row[4].removeprefix(f"{copy}-"),
        *row[5:],
    )


def model_rows(events: list[dict[str, Any]], now: datetime) -> list[tuple[Any, ...]]:
    rows = model_stalled_deals(ORG, events, now, timezone="UTC", reporting_currency="USD", currency_rates={})
    return [
        (
            r.deal_id, r.rep_id, r.team_id, r.region_id, r.customer_id, r.stage, Decimal(r.amount),
            list(r.reasons), r.severity, r.stalled_since.astimezone(UTC).replace(tzinfo=None), r.idle_days,
        )
        for r in rows
    ]  # fmt: skip


def test_stalled_deals_are_the_same_in_every_delivery_order(
    make_worker: Callable[..., WorkerProcess], make_publisher: Callable[[str], Publisher], broker: Any
) -> None:
    worker = make_worker(SALESPULSE_CLOCK="event", SALESPULSE_STALL_CHECK_INTERVAL_SECONDS="0.5")
    worker.start()
    worker.wait_ready()
    publisher = make_publisher(worker.topic_prefix)
    publisher.send_all(("org", record, message_key("org", record)) for record in ORG)

    def publish(events: list[dict[str, Any]]) -> int:
        return publisher.send_all(
            (TOPICS[e["event_type"]], e, message_key(e["event_type"], e)) for e in events
        )

    shuffler = random.Random(12)
    ordered = {copy: [copy_of(copy, event) for event in SCENARIO] for copy in COPIES}
    shuffled = list(ordered["b"])
    shuffler.shuffle(shuffled)
    doubled = list(ordered["d"])
    for event in shuffler.sample(ordered["d"], len(ordered["d"]) // 10):
        doubled.insert(shuffler.randint(doubled.index(event) + 1, len(doubled)), event)
    deals_first = [e for e in ordered["c"] if e["event_type"] == "deal"]
    activities_later = [e for e in ordered["c"] if e["event_type"] != "deal"]
    latest = max(datetime.fromisoformat(e["occurred_at"]) for e in SCENARIO)
    clock = {
        "event_type": "visit",
        "event_id": "clock-later",
        "occurred_at": stamp(latest + timedelta(hours=1)),
        "rep_id": "r1",
        "customer_id": "c-clock",
        "duration_minutes": 5,
        "outcome": "completed",
    }

    sent = len(ORG) + publish(ordered["a"]) + publish(shuffled) + publish(doubled) + publish(deals_first)
    wait_consumed(worker, sent)
    # The monitor alerts on (c)'s deals without their activities before these arrive.
    wait_until(
        lambda: worker.query("SELECT count() FROM stall_alerts WHERE startsWith(deal_id, 'c-') AND state != 'resolved'")
        [0][0] > 0,
        120,
        "alerts on the deals of copy (c) before their activities",
    )  # fmt: skip
    sent += publish([*activities_later, clock])
    wait_consumed(worker, sent)

    now = latest + timedelta(hours=1)
    everything = [event for copy in COPIES for event in ordered[copy]] + [clock]
    want = model_rows(everything, now)
    got = worker.query(f"SELECT {COLUMNS} FROM stalled_deals ORDER BY deal_id")
    per_copy: dict[str, list[tuple[Any, ...]]] = {}
    for copy in COPIES:
        mine = [row for row in got if row[0].startswith(f"{copy}-")]
        expected = [row for row in want if row[0].startswith(f"{copy}-")]
        right = len(set(map(repr, mine)) & set(map(repr, expected)))
        print(
            f"copy ({copy}): {len(expected)} stalled deals expected; {right} rows right, "
            f"{len(mine) - right} wrong or extra, {len(expected) - right} missing"
        )
        per_copy[copy] = [strip(copy, row) for row in mine]
    assert got == want  # every copy: exactly the model's rows, nothing extra
    assert per_copy["a"] == per_copy["b"] == per_copy["c"] == per_copy["d"] != []

    # The alert lifecycle agrees, once the monitor has had a round after the last events.
    truth_sql = "SELECT deal_id, reason, severity, stalled_since FROM stall_reasons ORDER BY deal_id, reason"
    alerts_sql = (
        "SELECT deal_id, reason, severity, stalled_since FROM stall_alerts WHERE state != 'resolved' "
        "ORDER BY deal_id, reason"
    )
    wait_until(lambda: worker.query(alerts_sql) == worker.query(truth_sql), 120, "the alert log to agree")
    truth = worker.query(truth_sql)
    # Per deal, the rules and the worst severity the alerts show are the model's.
    per_deal: dict[str, tuple[list[str], str]] = {}
    for deal, reason, severity, _ in truth:
        reasons, worst = per_deal.get(deal, ([], "warning"))
        per_deal[deal] = ([*reasons, reason], "critical" if "critical" in (worst, severity) else "warning")
    assert per_deal == {row[0]: (row[7], row[8]) for row in want}

    alerts = read_topic(broker.bootstrap, f"{worker.topic_prefix}alerts")
    ids = [alert["transition_id"] for alert in alerts]
    assert len(ids) == len(set(ids)), "a transition was published twice"
    # Copy (c) needed late-data corrections; the in-order copy none.
    corrections = {
        (alert["deal_id"][0], alert["state"], alert["resolved_by"])
        for alert in alerts
        if alert["state"] == "deescalated" or alert["resolved_by"] == "late_data"
    }
    print("late-data corrections:", sorted(corrections))
    assert not any(copy == "a" for copy, _, _ in corrections)
    assert ("c", "resolved", "late_data") in corrections  # O and M: the alerts that never held

    # The gauge counts the rules that hold now, by reason and severity.
    gauge: dict[str, float] = {}
    for (name, labels), value in worker.metric_samples().items():
        if name == "salespulse_stalled_deals":
            key = dict(labels)["reason"] + "/" + dict(labels)["severity"]
            gauge[key] = gauge.get(key, 0) + value
    wanted_gauge: dict[str, float] = {}
    for _, reason, severity, _ in truth:
        wanted_gauge[f"{reason}/{severity}"] = wanted_gauge.get(f"{reason}/{severity}", 0) + 1
    assert gauge == wanted_gauge
