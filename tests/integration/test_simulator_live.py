"""The live simulator against the real broker: reference data first, paced events, a clean stop."""

import asyncio
import itertools
import os
import re
import signal
import subprocess
import sys
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from typing import Any

import orjson
import pytest

from salespulse.config import Settings
from salespulse.embedded.broker import EmbeddedBroker
from salespulse.kafka.consumers import read_topics
from salespulse.runtime.waiting import wait_until
from salespulse.schemas import ACTIVITY_MODELS, REFERENCE_MODELS
from salespulse.simulator import CHINA_STANDARD_TIME, generate_history, run_live

_prefixes = itertools.count(1)
ACTIVITY_TOPICS = {"visit": "visits", "call": "calls", "deal": "deals", "feedback": "feedback"}
REFERENCE_TOPICS = {"org": "org", "customers": "customers", "targets": "targets"}


@pytest.fixture
def settings(broker: EmbeddedBroker) -> Settings:
    return Settings(broker=broker.bootstrap, topic_prefix=f"live{next(_prefixes)}.", topic_partitions=2)


def read_all(settings: Settings) -> dict[str, list[Any]]:
    """Every message by record type (visit, call, ..., org, customers, targets)."""
    suffixes = {**ACTIVITY_TOPICS, **REFERENCE_TOPICS}
    records = asyncio.run(
        read_topics(settings.broker, [f"{settings.topic_prefix}{suffix}" for suffix in suffixes.values()])
    )
    return {name: records[f"{settings.topic_prefix}{suffix}"] for name, suffix in suffixes.items()}


def without_run_specifics(event: dict[str, Any]) -> bytes:
    """An event without what differs between runs: the ids' run tag and the times.

    The expected close date is kept as what it means: days from the event.
    """
    kept = {key: value for key, value in event.items() if key not in ("event_id", "occurred_at")}
    if "deal_id" in kept:
        kept["deal_id"] = re.sub(r"^deal-[0-9a-f]+-", "deal-", kept["deal_id"])
    if "expected_close_date" in kept:
        day = datetime.fromisoformat(event["occurred_at"]).date()
        kept["expected_close_date"] = (date.fromisoformat(kept["expected_close_date"]) - day).days
    return orjson.dumps(kept, option=orjson.OPT_SORT_KEYS)


def test_live_run_with_a_fixed_clock(settings: Settings) -> None:
    now = datetime(2026, 3, 31, 20, 0, tzinfo=UTC)  # already April 1 in China
    summary = run_live(settings, rate=200, seed=5, duration=2.0, quiet=True, clock=lambda: now)
    assert summary.stopped_by == "duration" and summary.backfilled == {}
    sent = sum(summary.events.values())
    assert sent > 50 and {"visit", "call", "deal"} <= set(summary.events) <= set(ACTIVITY_TOPICS)

    on = read_all(settings)
    # Reference data: keyed by its compaction key, acknowledged before the first event was sent.
    for record_type in REFERENCE_TOPICS:
        records = on[record_type]
        assert len(records) == summary.reference[record_type]
        for record in records:
            parsed = REFERENCE_MODELS[record_type].model_validate_json(record.value)
            assert record.key.decode() == parsed.record_key
    targets = [orjson.loads(record.value) for record in on["targets"]]
    assert {(target["period"], target["period_start"]) for target in targets} == {
        ("month", "2026-04-01"),
        ("quarter", "2026-04-01"),
    }
    org = [orjson.loads(record.value) for record in on["org"]]
    assert len(org) == 13 and max(record["effective_from"] for record in org) < "2026-04-01"
    activity = [record for event_type in ACTIVITY_TOPICS for record in on[event_type]]
    assert max(record.timestamp for event_type in REFERENCE_TOPICS for record in on[event_type]) <= min(
        record.timestamp for record in activity
    )

    # Activity: exactly what the summary says, valid, keyed by deal or customer, stamped "now".
    assert {
        event_type: len(on[event_type]) for event_type in ACTIVITY_TOPICS if on[event_type]
    } == summary.events
    events = []
    for event_type in ACTIVITY_TOPICS:
        for record in on[event_type]:
            ACTIVITY_MODELS[event_type].model_validate_json(record.value)
            event = orjson.loads(record.value)
            assert record.key.decode() == event.get("deal_id", event["customer_id"])
            assert event["occurred_at"] == "2026-04-01T04:00:00.000+08:00"
            events.append(event)
    assert len({event["event_id"] for event in events}) == sent

    # The same seed tells the same story as generate_history, whatever the run's ids and times.
    history = generate_history(date(2026, 4, 1), 60, seed=5).events[:sent]
    assert sorted(map(without_run_specifics, events)) == sorted(map(without_run_specifics, history))


def test_backfill_then_live(settings: Settings) -> None:
    now = datetime(2026, 6, 10, 2, 0, tzinfo=UTC)
    summary = run_live(
        settings, rate=100, seed=9, duration=1.0, quiet=True, clock=lambda: now, backfill_days=10
    )
    expected = Counter(
        event["event_type"] for event in generate_history(date(2026, 5, 31), 10, seed=9).events
    )
    assert summary.backfilled == dict(expected)
    on = read_all(settings)
    for event_type in ACTIVITY_TOPICS:
        times = Counter(
            "live"
            if orjson.loads(record.value)["occurred_at"] == "2026-06-10T10:00:00.000+08:00"
            else "backfill"
            for record in on[event_type]
        )
        assert times["backfill"] == expected[event_type]
        assert times["live"] == summary.events.get(event_type, 0)
    # Targets cover the backfilled month too.
    periods = {orjson.loads(record.value)["period_start"] for record in on["targets"]}
    assert periods == {"2026-05-01", "2026-06-01", "2026-04-01"}


def test_sigterm_flushes_and_exits_cleanly(settings: Settings) -> None:
    env = {key: value for key, value in os.environ.items() if not key.startswith("SALESPULSE_")}
    env.update(SALESPULSE_BROKER=settings.broker, SALESPULSE_TOPIC_PREFIX=settings.topic_prefix)
    script = (
        "import orjson, dataclasses\n"
        "from salespulse.config import Settings\n"
        "from salespulse.simulator import run_live\n"
        "summary = run_live(Settings(), rate=150, seed=3)\n"
        "print('SUMMARY ' + orjson.dumps(dataclasses.asdict(summary)).decode())\n"
    )
    began = datetime.now(UTC)
    process = subprocess.Popen(
        [sys.executable, "-c", script], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    try:
        calls = f"{settings.topic_prefix}calls"
        # The simulator keeps writing: a bounded read, or it never sees the topic quiet.
        wait_until(
            lambda: len(asyncio.run(read_topics(settings.broker, [calls], max_seconds=5))[calls]) >= 100,
            60,
            "calls",
        )
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    ended = datetime.now(UTC)
    assert process.returncode == 0, output.decode()
    lines = output.decode().splitlines()
    assert (
        lines[0].startswith("published 13 org, 120 customer and ") and "stopped (signal): sent " in lines[-2]
    )
    summary = orjson.loads(lines[-1].removeprefix("SUMMARY "))
    assert summary["stopped_by"] == "signal"

    # Everything the simulator counted as sent was acknowledged and is on the topics.
    on = read_all(settings)
    assert {event_type: len(on[event_type]) for event_type in ACTIVITY_TOPICS if on[event_type]} == summary[
        "events"
    ]
    for event_type in ACTIVITY_TOPICS:
        for record in on[event_type]:
            occurred = datetime.fromisoformat(orjson.loads(record.value)["occurred_at"])
            assert occurred.utcoffset() == CHINA_STANDARD_TIME.utcoffset(None)
            assert began - timedelta(seconds=1) <= occurred <= ended
