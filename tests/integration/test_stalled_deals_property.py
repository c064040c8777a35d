"""`stalled_deals` is the truth now, whatever order the events arrive in (contract §6, §7; issue 12).

Hypothesis generates deal histories (stage changes, expected close dates, linked visits, calls
and feedback, on a 4-hour grid so that "exactly N days" boundaries come up often) and a delivery
order: a shuffle with duplicates, cut into batches. The batches are written as the sink writes
them (the real decoder and row builder, into the real tables through ClickHouse's HTTP
interface, served by chDB in its own process), and after every batch:

- `stalled_deals` equals the from-scratch model of tests/oracle/stall_model.py over the events
  written so far, at "now" = the latest occurred_at (``--clock event``);
- one round of the real stall monitor (its ClickHouse side: histories, the alert log,
  reconciliation) leaves the alert log's latest states agreeing with it: exactly one open alert
  per rule that holds, with its severity and stalled_since, and no transition id emitted twice.

Nothing here runs Kafka: the pipeline end to end is tests/integration/test_stall_orders.py.
"""

import asyncio
import itertools
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import orjson
import pytest
from clickhouse_connect.driver.client import Client
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from salespulse.config import Settings
from salespulse.runtime.ports import free_port, wait_for_port
from salespulse.schemas.decoding import Decoder
from salespulse.schemas.events import ActivityEvent
from salespulse.sinks.clickhouse.client import connect
from salespulse.sinks.clickhouse.migrations import apply_migrations
from salespulse.sinks.clickhouse.rows import EVENT_COLUMNS, BatchStamp, RowBuilder, SourcePosition
from salespulse.streams.metrics import Metrics
from salespulse.streams.stall_monitor import StallMonitor
from tests.oracle.stall_model import stalled_deals as model_stalled_deals

T0 = datetime(2026, 3, 1, 0, 0, tzinfo=UTC)
STEP = timedelta(hours=4)  # 16:00 UTC is on the grid: midnight in the reporting zone
SPAN = 360  # steps: 60 days, more than twice every default threshold
PER_DAY = 6
STAGES = ("prospecting", "qualified", "proposal", "negotiation", "won", "lost")
ZONE = "Asia/Shanghai"  # overdue starts at midnight in the reporting zone, not UTC
ORG = [{"rep_id": "r1", "team_id": "t1", "region_id": "east", "effective_from": "2026-01-01"}]


def stamp(step: int) -> str:
    return (T0 + step * STEP).isoformat().replace("+00:00", "Z")


@st.composite
def deal_history(draw: st.DrawFn, deal_id: str) -> list[dict[str, Any]]:
    """One deal's events: deal events at distinct times (no ties), and linked activities."""
    times = sorted(draw(st.sets(st.integers(0, SPAN), min_size=1, max_size=5)))
    events: list[dict[str, Any]] = []
    for index, step in enumerate(times):
        event: dict[str, Any] = {
            "event_type": "deal",
            "event_id": f"{deal_id}-d{index}",
            "occurred_at": stamp(step),
            "rep_id": "r1",
            "customer_id": f"c-{deal_id}",
            "deal_id": deal_id,
            "stage": draw(st.sampled_from(STAGES) if index else st.sampled_from(STAGES[:4])),
            "amount": str(draw(st.integers(0, 5000))),
        }
        close = draw(st.none() | st.integers(-10, 70))
        if close is not None:
            event["expected_close_date"] = (T0.date() + timedelta(days=close)).isoformat()
        events.append(event)
    for index, step in enumerate(draw(st.lists(st.integers(0, SPAN), max_size=5))):
        kind = draw(st.sampled_from(("visit", "call", "feedback")))
        activity: dict[str, Any] = {
            "event_type": kind,
            "event_id": f"{deal_id}-a{index}",
            "occurred_at": stamp(step),
            "rep_id": "r1",
            "customer_id": f"c-{deal_id}",
            "deal_id": deal_id,
        }
        if kind == "visit":
            activity.update(duration_minutes=30, outcome="completed")
        elif kind == "call":
            activity.update(direction="outbound", duration_seconds=60, outcome="connected")
        else:
            activity.update(score_type="csat", score=4)
        events.append(activity)
    return events


def _step(moment: datetime) -> int:
    return int((moment - T0) / STEP)


def boundaries(events: list[dict[str, Any]]) -> list[int]:
    """Moments where a rule of the full history starts to hold or turns critical, and their neighbours.

    Worked out from contract §6's defaults for the generator only: the assertions compare with
    the model, never with these.
    """
    idle = {"prospecting": 14, "qualified": 10, "proposal": 7, "negotiation": 5}
    stuck = {"prospecting": 30, "qualified": 21, "proposal": 14, "negotiation": 14}
    found: set[int] = set()
    for deal_id in {e["deal_id"] for e in events if e.get("deal_id")}:
        mine = [e for e in events if e.get("deal_id") == deal_id]
        states = sorted((e for e in mine if e["event_type"] == "deal"), key=lambda e: e["occurred_at"])
        stage = states[-1]["stage"]
        if stage not in idle:
            continue
        last = _step(max(datetime.fromisoformat(e["occurred_at"]) for e in mine))
        run = len(states) - 1
        while run > 0 and states[run - 1]["stage"] == stage:
            run -= 1
        entered = _step(datetime.fromisoformat(states[run]["occurred_at"]))
        marks = [last + k * idle[stage] * PER_DAY for k in (1, 2)]
        marks += [entered + k * stuck[stage] * PER_DAY for k in (1, 2)]
        if "expected_close_date" in states[-1]:
            midnight = datetime.combine(
                date.fromisoformat(states[-1]["expected_close_date"]) + timedelta(days=1),
                datetime.min.time(),
                ZoneInfo(ZONE),
            )
            marks += [_step(midnight), _step(midnight) + 7 * PER_DAY]
        found |= {mark + nudge for mark in marks for nudge in (-1, 0, 1)}
    return sorted(found) or [SPAN]


@dataclass
class Delivery:
    events: list[dict[str, Any]]  # the history, each event once
    batches: list[list[dict[str, Any]]]  # the delivery: shuffled, with duplicates


@st.composite
def deliveries(draw: st.DrawFn) -> Delivery:
    count = draw(st.integers(1, 4))
    events = [event for n in range(count) for event in draw(deal_history(f"D{n}"))]
    # "Now" on the event clock: an activity linked to no deal, at some moment after the start,
    # often exactly at a rule's boundary for some deal (or one step either side).
    clock = draw(st.integers(SPAN // 2, SPAN + 60) | st.sampled_from(boundaries(events)))
    events.append(
        {
            "event_type": "visit",
            "event_id": "clock",
            "occurred_at": stamp(clock),
            "rep_id": "r1",
            "customer_id": "c-clock",
            "duration_minutes": 5,
            "outcome": "completed",
        }
    )
    order = draw(st.permutations(events))
    duplicates = draw(st.lists(st.sampled_from(events), max_size=4))
    delivered = list(order)
    for duplicate in duplicates:
        delivered.insert(draw(st.integers(0, len(delivered))), duplicate)
    cuts = sorted(draw(st.sets(st.integers(1, len(delivered) - 1), max_size=3))) if len(delivered) > 1 else []
    bounds = [0, *cuts, len(delivered)]
    return Delivery(events, [delivered[a:b] for a, b in itertools.pairwise(bounds)])


@dataclass
class Store:
    settings: Settings
    client: Client

    def reset(self) -> None:
        for table in ("events", "stall_alert_log", "stall_monitor_state"):
            self.client.command(f"TRUNCATE TABLE {self.settings.clickhouse_database}.{table}")

    def rows(self, sql: str) -> list[tuple[Any, ...]]:
        return [tuple(row) for row in self.client.query(sql).result_rows]


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    """chDB behind ClickHouse's HTTP interface (its own process), migrated, with one org record."""
    path: Path = tmp_path_factory.mktemp("stall-store")
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.support.store_server", str(path / "chdb"), str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_for_port("127.0.0.1", port, 60)
        config = Settings(clickhouse_url=f"http://127.0.0.1:{port}", clock="event", reporting_timezone=ZONE)
        client = connect(config)
        apply_migrations(client, config)
        client.insert(
            "org_records",
            [["r1|2026-01-01", "r1", "", "t1", "", "", "east", date(2026, 1, 1), 0, "org", 0, 0, T0, 1]],
            column_names=[
                "record_key",
                "rep_id",
                "rep_name",
                "team_id",
                "team_name",
                "manager_id",
                "region_id",
                "effective_from",
                "is_deleted",
                "src_topic",
                "src_partition",
                "src_offset",
                "ingested_at",
                "version",
            ],
            database=config.clickhouse_database,
        )
        yield Store(config, client)
        client.close()
    finally:
        process.terminate()
        process.wait(30)


def write(store: Store, batch: list[dict[str, Any]], offset: int) -> None:
    """Write one batch as the sink does: decoded by the real decoder, rows from the real builder."""
    decoder, builder = Decoder(store.settings), RowBuilder(store.settings)
    stamp_ = BatchStamp.at(datetime.now(UTC))
    rows = []
    for position, body in enumerate(batch, start=offset):
        event = decoder.decode_event(body["event_type"], orjson.dumps(body))
        assert isinstance(event, ActivityEvent), event
        rows.append(
            builder.event_row(event, SourcePosition(f"crm.{body['event_type']}", 0, position), stamp_)
        )
    store.client.insert(
        "events", list(zip(*rows, strict=True)), column_names=EVENT_COLUMNS,
        database=store.settings.clickhouse_database, column_oriented=True,
    )  # fmt: skip


def expected(store: Store, delivered: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    now = max(datetime.fromisoformat(event["occurred_at"]) for event in delivered)
    model = model_stalled_deals(
        ORG, delivered, now, timezone=ZONE, reporting_currency="USD", currency_rates={}
    )
    return [
        (
            row.deal_id, row.rep_id, row.team_id, row.region_id, row.customer_id, row.stage,
            Decimal(row.amount), row.reasons, row.severity, row.stalled_since.astimezone(UTC).replace(tzinfo=None),
            row.idle_days,
        )
        for row in model
    ]  # fmt: skip


def view(store: Store) -> list[tuple[Any, ...]]:
    rows = store.rows(
        "SELECT deal_id, rep_id, team_id, region_id, customer_id, stage, amount, reasons, severity, "
        "stalled_since, idle_days FROM salespulse.stalled_deals ORDER BY deal_id"
    )
    return [(*row[:7], tuple(row[7]), *row[8:]) for row in rows]


def monitor_round(monitor: StallMonitor, emitted: list[str]) -> None:
    """One round of the monitor as the worker runs it, the topic aside: record, publish (here: note), apply."""
    result = monitor._compute_round()
    monitor._record(result.transitions, published=True)
    for alert in result.transitions:
        monitor._apply(alert)
        emitted.append(alert.transition_id)
        event(f"transition {alert.state}" + (f" by {alert.resolved_by}" if alert.resolved_by else ""))
    monitor._watermark = result.watermark


def check_alerts_agree(store: Store, stalled: list[tuple[Any, ...]]) -> None:
    """The latest state of every alert agrees with stall_reasons, and so with stalled_deals."""
    open_alerts = store.rows(
        "SELECT deal_id, reason, severity, stalled_since FROM salespulse.stall_alerts WHERE state != 'resolved' "
        "ORDER BY deal_id, reason"
    )
    truth = store.rows(
        "SELECT deal_id, reason, severity, stalled_since FROM salespulse.stall_reasons ORDER BY deal_id, reason"
    )
    assert open_alerts == truth
    per_deal = {
        deal: (
            tuple(reason for d, reason, _, _ in truth if d == deal),
            "critical" if any(s == "critical" for d, _, s, _ in truth if d == deal) else "warning",
        )
        for deal, *_ in truth
    }
    assert per_deal == {row[0]: (row[7], row[8]) for row in stalled}


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(delivery=deliveries())
def test_stalled_deals_is_the_model_after_every_batch_in_any_order(store: Store, delivery: Delivery) -> None:
    store.reset()
    monitor = StallMonitor(store.settings, Metrics(), asyncio.Event())
    monitor._client = store.client
    emitted: list[str] = []
    delivered: list[dict[str, Any]] = []
    for batch in delivery.batches:
        write(store, batch, len(delivered))
        delivered += batch
        want = expected(store, delivered)
        got = view(store)
        assert got == want
        monitor_round(monitor, emitted)
        check_alerts_agree(store, got)
    assert len(emitted) == len(set(emitted)), "a transition was emitted twice"
    # Whatever the order and the duplicates, the end state is the history's truth.
    in_order = sorted(delivery.events, key=lambda event: event["occurred_at"])
    assert view(store) == expected(store, in_order)
