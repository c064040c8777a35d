"""Drive a scenario through a real worker and compare the views with the reference model (tests/oracle)."""

import random
from dataclasses import dataclass
from datetime import UTC
from decimal import Decimal
from typing import Any

import orjson

from salespulse.kafka.producer import message_key
from salespulse.runtime.waiting import wait_until
from salespulse.runtime.worker_process import WorkerProcess
from tests.oracle.reference_model import (
    DEALS_CURRENT_COLUMNS,
    KPI_DAILY_COLUMNS,
    PIPELINE_CURRENT_COLUMNS,
    STAGE_CONVERSION_COLUMNS,
    expected_views,
    parse_timestamp,
)
from tests.oracle.scenario import Scenario
from tests.support.processes import Publisher

ACTIVITY_TOPICS = {"visit": "visits", "call": "calls", "deal": "deals", "feedback": "feedback"}
VIEW_COLUMNS = {
    "kpi_daily": KPI_DAILY_COLUMNS,
    "deals_current": DEALS_CURRENT_COLUMNS,
    "stage_conversion": STAGE_CONVERSION_COLUMNS,
    "pipeline_current": PIPELINE_CURRENT_COLUMNS,
}


def scenario_env(scenario: Scenario) -> dict[str, str]:
    """Worker settings the scenario is computed for."""
    rates = ",".join(f"{code}={rate}" for code, rate in scenario.currency_rates.items())
    return {
        "SALESPULSE_REPORTING_TIMEZONE": scenario.timezone,
        "SALESPULSE_REPORTING_CURRENCY": scenario.reporting_currency,
        "SALESPULSE_CURRENCY_RATES": rates,
    }


def publish_org(publisher: Publisher, org: list[dict[str, Any]]) -> int:
    return publisher.send_all(("org", record, message_key("org", record)) for record in org)


def publish_events(publisher: Publisher, events: list[dict[str, Any]]) -> int:
    """Publish in list order, keyed as the CLI keys them (deal_id, else customer_id)."""
    return publisher.send_all(
        (ACTIVITY_TOPICS[event["event_type"]], event, message_key(event["event_type"], event))
        for event in events
    )


def wait_consumed(worker: WorkerProcess, total: int, timeout: float = 180.0) -> None:
    """Wait until the worker has written (or rejected) ``total`` messages."""
    wait_until(
        lambda: worker.counter("salespulse_events_consumed_total") >= total,
        timeout,
        f"{total} messages consumed (log tail:\n{worker.log_tail(15)})",
    )


def actual_views(worker: WorkerProcess) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of the four views, columns in contract order, sorted."""
    views = {}
    for view, columns in VIEW_COLUMNS.items():
        rows = worker.query(f"SELECT {', '.join(columns)} FROM {view}")
        views[view] = sorted(rows, key=_sort_key)
    return views


def expected_for(
    scenario: Scenario, events: list[dict[str, Any]] | None = None
) -> dict[str, list[tuple[Any, ...]]]:
    expected = expected_views(
        scenario.org,
        scenario.events if events is None else events,
        timezone=scenario.timezone,
        reporting_currency=scenario.reporting_currency,
        currency_rates=scenario.currency_rates,
    )
    return sorted_views(expected)


def sorted_views(views: dict[str, list[tuple[Any, ...]]]) -> dict[str, list[tuple[Any, ...]]]:
    """Rows in the order actual_views returns them, so two sets of views compare as lists."""
    return {view: sorted(rows, key=_sort_key) for view, rows in views.items()}


def assert_views_equal(
    actual: dict[str, list[tuple[Any, ...]]], expected: dict[str, list[tuple[Any, ...]]]
) -> None:
    """Exact equality, view by view, with a readable first difference."""
    for view in VIEW_COLUMNS:
        got, want = actual[view], expected[view]
        missing = [row for row in want if row not in got]
        extra = [row for row in got if row not in want]
        assert not missing and not extra, (
            f"{view}: {len(got)} rows, expected {len(want)}; "
            f"first missing: {missing[:3]}; first unexpected: {extra[:3]}"
        )
        assert got == want, f"{view}: same rows, different multiplicity"


def _sort_key(row: tuple[Any, ...]) -> tuple[str, ...]:
    return tuple("" if value is None else str(value) for value in row)


def with_duplicates_and_shuffled(
    events: list[dict[str, Any]], duplicate_share: float, seed: int
) -> tuple[list[dict[str, Any]], int]:
    """The events in a random order, plus copies of ``duplicate_share`` of them; returns (events, copies).

    Order only matters where contract §4 makes it matter: deal events of one deal with the same
    occurred_at (the later-delivered wins) keep their relative order, and every copy comes
    after its original, so each tie is resolved as in the original delivery.
    """
    rng = random.Random(seed)
    shuffled = events[:]
    rng.shuffle(shuffled)
    ties: dict[tuple[str, str], list[int]] = {}
    for index, event in enumerate(events):
        if event["event_type"] == "deal":
            ties.setdefault((event["deal_id"], _instant(event["occurred_at"])), []).append(index)
    original_position = {id(event): index for index, event in enumerate(events)}
    for members in ties.values():
        if len(members) < 2:
            continue
        slots = sorted(i for i, event in enumerate(shuffled) if original_position[id(event)] in members)
        for slot, member in zip(slots, members, strict=True):
            shuffled[slot] = events[member]
    copies = rng.sample(range(len(shuffled)), int(len(shuffled) * duplicate_share))
    result = shuffled[:]
    for index in sorted(copies, reverse=True):
        copy = orjson.loads(orjson.dumps(shuffled[index]))
        result.insert(rng.randint(index + 1, len(shuffled)), copy)
    return result, len(copies)


def _instant(text: str) -> str:
    """The UTC instant: the same moment written with two offsets is a tie."""
    return parse_timestamp(text).astimezone(UTC).isoformat()


@dataclass
class ScenarioRun:
    """A worker fed a scenario: publish it, wait until it is consumed, compare the views with the model."""

    worker: WorkerProcess
    publisher: Publisher
    scenario: Scenario

    def start(self) -> "ScenarioRun":
        self.worker.start()
        self.worker.wait_ready()
        return self

    def publish_org(self) -> int:
        return publish_org(self.publisher, self.scenario.org)

    def publish_events(self, events: list[dict[str, Any]] | None = None) -> int:
        return publish_events(self.publisher, self.scenario.events if events is None else events)

    def publish(self, events: list[dict[str, Any]] | None = None) -> int:
        """The org, then ``events`` (every event of the scenario by default); returns messages sent."""
        return self.publish_org() + self.publish_events(events)

    def wait_consumed(self, total: int, timeout: float = 180.0) -> None:
        wait_consumed(self.worker, total, timeout)

    def assert_exact(self, events: list[dict[str, Any]] | None = None) -> None:
        """The four views equal the model's for the scenario's ``events`` (all of them by default)."""
        assert_views_equal(actual_views(self.worker), expected_for(self.scenario, events))


def decimal_total(rows: list[tuple[Any, ...]], column: int) -> Decimal:
    return sum((Decimal(row[column]) for row in rows), Decimal(0))
