"""Live CRM traffic (`salespulse simulate`): the simulated stream replayed at a rate, stamped with the wall clock."""

import random
import secrets
import signal
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo
from time import monotonic, sleep
from types import FrameType
from typing import Any

from rich.console import Console

from salespulse.config import Settings
from salespulse.kafka.producer import TopicPublisher
from salespulse.simulator.company import Company, SimulationOptions
from salespulse.simulator.history import local_midnight
from salespulse.simulator.simulation import Simulation

STATUS_EVERY_SECONDS = 5.0


@dataclass
class LiveSummary:
    """What :func:`run_live` published."""

    reference: dict[str, int]
    """Reference records by type (org, customers, targets)."""
    backfilled: dict[str, int]
    """Events with historical occurred_at (``backfill_days``), by type."""
    events: dict[str, int]
    """Live events (occurred_at ≈ now), by type."""
    seconds: float
    stopped_by: str
    """``duration`` or ``signal``."""

    def line(self) -> str:
        total = sum(self.events.values())
        by_type = ", ".join(f"{event_type} {self.events.get(event_type, 0)}" for event_type in _EVENT_TYPES)
        return f"sent {total} events ({by_type}) in {self.seconds:.0f}s"


_EVENT_TYPES = ("visit", "call", "deal", "feedback")


def _wall_clock() -> datetime:
    return datetime.now(UTC)


def _relive(event: dict[str, Any], simulated: datetime, now: datetime, tz: tzinfo) -> dict[str, Any]:
    """The event as if it happened ``now``: same content, occurred_at now, close date as far off."""
    local = now.astimezone(tz)
    event = {**event, "occurred_at": local.isoformat(timespec="milliseconds")}
    if "expected_close_date" in event:
        ahead = date.fromisoformat(event["expected_close_date"]) - simulated.date()
        event["expected_close_date"] = (local.date() + ahead).isoformat()
    return event


class _StopRequested:
    """SIGINT/SIGTERM set a flag the send loop checks, so it can flush before leaving.

    A second signal raises KeyboardInterrupt, for a user who does not want to wait.
    """

    def __init__(self) -> None:
        self.requested = False
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> "_StopRequested":
        if threading.current_thread() is threading.main_thread():
            for number in (signal.SIGINT, signal.SIGTERM):
                self._previous[number] = signal.signal(number, self._handle)
        return self

    def _handle(self, number: int, frame: FrameType | None) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def __exit__(self, *exc: object) -> None:
        for number, handler in self._previous.items():
            signal.signal(number, handler)


def run_live(
    settings: Settings,
    rate: float = 20.0,
    seed: int = 42,
    duration: float | None = None,
    *,
    quiet: bool = False,
    clock: Callable[[], datetime] = _wall_clock,
    options: SimulationOptions | None = None,
    backfill_days: int = 0,
    console: Console | None = None,
) -> LiveSummary:
    """Publish live CRM traffic until ``duration`` seconds pass or SIGINT/SIGTERM arrives.

    First the reference data (org, customers, targets of the current month and quarter and of
    the backfilled period), keyed as contract §3 says, acknowledged before anything else; then,
    with ``backfill_days``, that many days of history at full speed; then activity events at
    ``rate`` per second with occurred_at from ``clock`` (the wall clock). The same seed gives
    the same org, customers and sequence of events; event and deal ids get a fresh tag per run,
    so a restarted simulator adds new deals instead of colliding with the previous run's.
    Prints a status line every few seconds unless ``quiet``. On a signal it stops sending,
    waits for the broker to acknowledge what was sent, and returns.
    """
    if rate <= 0:
        raise ValueError(f"rate must be above 0 events per second, got {rate}")
    if backfill_days < 0:
        raise ValueError(f"backfill_days must be 0 or more, got {backfill_days}")
    options = options or SimulationOptions()
    console = console or Console(highlight=False, soft_wrap=True)
    started = monotonic()
    today = clock().astimezone(options.tz).date()
    first_day = today - timedelta(days=backfill_days)
    company = Company.create(seed, options)
    # The org exists well before the first event; the mover changed team half-way through.
    since = min(first_day, today - timedelta(days=60))
    reference = {
        "org": company.org_records(since, since + timedelta(days=(today - since).days // 2)),
        "customers": company.customer_records(),
        "targets": company.target_records(first_day, today),
    }
    simulation = Simulation(
        company,
        random.Random(f"{seed}:activity"),
        local_midnight(first_day, options.tz),
        secrets.token_hex(3),
    )
    stream = simulation.events()
    backfilled: Counter[str] = Counter()
    sent: Counter[str] = Counter()
    with TopicPublisher(settings) as publisher, _StopRequested() as stop:
        for record_type, records in reference.items():
            for record in records:
                publisher.send_record(record_type, record)
        publisher.flush()
        if not quiet:
            console.print(
                f"published {len(reference['org'])} org, {len(reference['customers'])} customer and "
                f"{len(reference['targets'])} target records to {settings.broker}"
            )
        live_from = local_midnight(today, options.tz)
        pending = None
        for when, event in stream:
            if when >= live_from or stop.requested:
                pending = (when, event)
                break
            publisher.send_record(event["event_type"], event)
            backfilled[event["event_type"]] += 1
        if backfilled:
            publisher.flush()
            if not quiet:
                console.print(f"backfilled {backfill_days} days: {sum(backfilled.values())} events")
        stopped_by = _send_live(
            publisher, stream, pending, rate, duration, started, stop, clock, options.tz, sent, console, quiet
        )
        publisher.flush()
    summary = LiveSummary(
        reference={name: len(records) for name, records in reference.items()},
        backfilled=dict(backfilled),
        events=dict(sent),
        seconds=monotonic() - started,
        stopped_by=stopped_by,
    )
    if not quiet:
        console.print(f"stopped ({stopped_by}): {summary.line()}")
    return summary


def _send_live(
    publisher: TopicPublisher,
    stream: Iterator[tuple[datetime, dict[str, Any]]],
    pending: tuple[datetime, dict[str, Any]] | None,
    rate: float,
    duration: float | None,
    started: float,
    stop: _StopRequested,
    clock: Callable[[], datetime],
    tz: tzinfo,
    sent: Counter[str],
    console: Console,
    quiet: bool,
) -> str:
    """The paced send loop of :func:`run_live`; returns why it stopped."""
    deadline = None if duration is None else started + duration
    interval = 1.0 / rate
    due = monotonic()
    next_status = due + STATUS_EVERY_SECONDS
    status_sent = 0
    status_at = due
    while True:
        # Sleep in short steps so that a signal or the deadline is noticed promptly.
        while (now := monotonic()) < due:
            if stop.requested or (deadline is not None and now >= deadline):
                break
            sleep(min(0.1, due - now))
        now = monotonic()
        if stop.requested:
            return "signal"
        if deadline is not None and now >= deadline:
            return "duration"
        when, event = pending if pending is not None else next(stream)
        pending = None
        publisher.send_record(event["event_type"], _relive(event, when, clock(), tz))
        sent[event["event_type"]] += 1
        # Keep the average rate, but after a stall (a slow broker) do not burst to catch up.
        due = max(due + interval, now - 1.0)
        if now >= next_status:
            publisher.raise_failures()  # a broker that went away stops the simulator with a clear error
            if not quiet:
                total = sum(sent.values())
                pace = (total - status_sent) / max(now - status_at, 1e-9)
                by_type = ", ".join(f"{name} {sent.get(name, 0)}" for name in _EVENT_TYPES)
                console.print(
                    f"{clock().astimezone(tz):%H:%M:%S} sent {total} events ({by_type}), {pace:.1f}/s"
                )
                status_sent, status_at = total, now
            next_status = now + STATUS_EVERY_SECONDS
