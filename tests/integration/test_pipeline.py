"""The pipeline end to end on the real embedded broker and chDB (issue: the pipeline, end to end).

Each test starts a real `salespulse worker` process on its own topics and data directory,
publishes with kafka-python, and compares every row of the contract views with the
independent reference model (tests/reference_model.py).
"""

import asyncio
import base64
from collections import Counter
from collections.abc import Callable
from typing import Any

import orjson
import pytest

from salespulse.kafka.consumers import read_topics
from salespulse.kafka.producer import message_key
from salespulse.runtime.worker_process import WorkerProcess
from tests.scenario import build_malformed, build_scenario
from tests.support.pipeline import (
    actual_views,
    assert_views_equal,
    expected_for,
    publish_events,
    publish_org,
    scenario_env,
    wait_consumed,
    with_duplicates_and_shuffled,
)
from tests.support.processes import Publisher

pytestmark = pytest.mark.integration

SCENARIO = build_scenario()


def start_worker(make_worker: Callable[..., WorkerProcess]) -> WorkerProcess:
    worker = make_worker(**scenario_env(SCENARIO))
    worker.start()
    worker.wait_ready()
    return worker


def test_scenario_views_equal_an_independent_computation(
    make_worker: Callable[..., WorkerProcess], make_publisher: Callable[[str], Publisher]
) -> None:
    worker = start_worker(make_worker)
    publisher = make_publisher(worker.topic_prefix)
    total = publish_org(publisher, SCENARIO.org) + publish_events(publisher, SCENARIO.events)
    wait_consumed(worker, total)

    expected = expected_for(SCENARIO)
    assert (
        len(expected["kpi_daily"]) > 500 and len(expected["deals_current"]) > 100
    )  # the scenario is not trivial
    assert_views_equal(actual_views(worker), expected)
    assert worker.counter("salespulse_events_duplicate_total") == 0
    assert worker.counter("salespulse_events_rejected_total") == 0
    assert worker.counter("salespulse_events_accepted_total") == total


def test_duplicates_and_shuffled_order_give_identical_views(
    make_worker: Callable[..., WorkerProcess], make_publisher: Callable[[str], Publisher]
) -> None:
    events, copies = with_duplicates_and_shuffled(SCENARIO.events, duplicate_share=0.10, seed=11)
    assert copies == len(SCENARIO.events) // 10 and len(events) == len(SCENARIO.events) + copies
    assert events != SCENARIO.events
    worker = start_worker(make_worker)
    publisher = make_publisher(worker.topic_prefix)
    total = publish_org(publisher, SCENARIO.org) + publish_events(publisher, events)
    wait_consumed(worker, total)

    assert_views_equal(actual_views(worker), expected_for(SCENARIO))
    assert worker.counter("salespulse_events_duplicate_total") == copies
    assert worker.counter("salespulse_events_accepted_total") == len(SCENARIO.events) + len(SCENARIO.org)


def read_dlq(bootstrap: str, topic: str, expected: int) -> list[Any]:
    records: list[Any] = asyncio.run(read_topics(bootstrap, [topic]))[topic]
    assert len(records) >= expected
    return records


def test_malformed_messages_reach_the_dlq_with_reasons_and_nothing_else_is_lost(
    make_worker: Callable[..., WorkerProcess], make_publisher: Callable[[str], Publisher], broker: Any
) -> None:
    malformed = build_malformed()
    assert len(malformed) >= 100 and len({bad.kind for bad in malformed}) >= 10
    worker = start_worker(make_worker)
    publisher = make_publisher(worker.topic_prefix)
    publish_org(publisher, SCENARIO.org)
    # Interleave: one bad message after every ~20 good ones, so bad input sits inside batches.
    step = max(1, len(SCENARIO.events) // len(malformed))
    topics = {"visit": "visits", "call": "calls", "deal": "deals", "feedback": "feedback"}
    sent = 0
    for index, event in enumerate(SCENARIO.events):
        publisher.send(topics[event["event_type"]], event, message_key(event["event_type"], event))
        sent += 1
        if index % step == 0 and index // step < len(malformed):
            bad = malformed[index // step]
            publisher.send(topics[bad.topic_type], bad.value, bad.label)
            sent += 1
    for bad in malformed[len(SCENARIO.events) // step + 1 :]:
        publisher.send(topics[bad.topic_type], bad.value, bad.label)
        sent += 1
    publisher.flush()
    total = sent + len(SCENARIO.org)
    assert sent == len(SCENARIO.events) + len(malformed)
    wait_consumed(worker, total)

    # Every valid event still counted, exactly.
    assert_views_equal(actual_views(worker), expected_for(SCENARIO))

    # Every bad message is in the DLQ once, with its reason, position and original bytes.
    records = read_dlq(broker.bootstrap, f"{worker.topic_prefix}dlq", len(malformed))
    bodies = [orjson.loads(record.value) for record in records]
    by_label = {body["source_key"]: body for body in bodies}
    assert len(bodies) == len(malformed) == len(by_label)
    for bad in malformed:
        body = by_label[bad.label]
        assert body["reason"] == bad.expected_reason, (bad.kind, body["message"])
        assert body["message"] and len(body["message"]) < 600
        assert body["source_topic"] == f"{worker.topic_prefix}{topics[bad.topic_type]}"
        assert isinstance(body["source_partition"], int) and isinstance(body["source_offset"], int)
        if bad.value is not None and len(bad.value) <= 256 * 1024:
            assert base64.b64decode(body["payload_base64"]) == bad.value

    # The metrics reconcile, per type: consumed = accepted + duplicates + rejected.
    for type_ in ("visit", "call", "deal", "feedback", "org"):
        consumed = worker.counter("salespulse_events_consumed_total", type=type_)
        accepted = worker.counter("salespulse_events_accepted_total", type=type_)
        duplicates = worker.counter("salespulse_events_duplicate_total", type=type_)
        rejected = worker.counter("salespulse_events_rejected_total", type=type_)
        assert consumed == accepted + duplicates + rejected, type_
    reasons = Counter(bad.expected_reason for bad in malformed)
    for reason, count in reasons.items():
        assert worker.counter("salespulse_events_rejected_total", reason=reason) == count, reason
    assert worker.process is not None and worker.process.poll() is None  # it never stopped
