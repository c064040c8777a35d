"""The pipeline end to end on the real embedded broker and chDB (issue: the pipeline, end to end).

Each test starts a real `salespulse worker` process on its own topics and data directory,
publishes with kafka-python, and compares every row of the contract views with the
independent reference model (tests/oracle/reference_model.py).
"""

import asyncio
import base64
from collections import Counter
from collections.abc import Callable
from typing import Any

import orjson

from salespulse.kafka.consumers import read_topics
from salespulse.kafka.producer import message_key
from tests.oracle.scenario import Scenario, build_malformed
from tests.support.pipeline import ScenarioRun, expected_for, with_duplicates_and_shuffled


def test_scenario_views_equal_an_independent_computation(
    scenario_run: Callable[..., ScenarioRun], scenario: Scenario
) -> None:
    run = scenario_run().start()
    worker = run.worker
    total = run.publish()
    run.wait_consumed(total)

    expected = expected_for(scenario)
    assert (
        len(expected["kpi_daily"]) > 500 and len(expected["deals_current"]) > 100
    )  # the scenario is not trivial
    run.assert_exact()
    assert worker.counter("salespulse_events_duplicate_total") == 0
    assert worker.counter("salespulse_events_rejected_total") == 0
    assert worker.counter("salespulse_events_accepted_total") == total


def test_duplicates_and_shuffled_order_give_identical_views(
    scenario_run: Callable[..., ScenarioRun], scenario: Scenario
) -> None:
    events, copies = with_duplicates_and_shuffled(scenario.events, duplicate_share=0.10, seed=11)
    assert copies == len(scenario.events) // 10 and len(events) == len(scenario.events) + copies
    assert events != scenario.events
    run = scenario_run().start()
    worker = run.worker
    total = run.publish(events)
    run.wait_consumed(total)

    run.assert_exact()
    assert worker.counter("salespulse_events_duplicate_total") == copies
    assert worker.counter("salespulse_events_accepted_total") == len(scenario.events) + len(scenario.org)


def read_dlq(bootstrap: str, topic: str, expected: int) -> list[Any]:
    records: list[Any] = asyncio.run(read_topics(bootstrap, [topic]))[topic]
    assert len(records) >= expected
    return records


def test_malformed_messages_reach_the_dlq_with_reasons_and_nothing_else_is_lost(
    scenario_run: Callable[..., ScenarioRun], scenario: Scenario, broker: Any
) -> None:
    malformed = build_malformed()
    assert len(malformed) >= 100 and len({bad.kind for bad in malformed}) >= 10
    run = scenario_run().start()
    worker, publisher = run.worker, run.publisher
    run.publish_org()
    # Interleave: one bad message after every ~20 good ones, so bad input sits inside batches.
    step = max(1, len(scenario.events) // len(malformed))
    topics = {"visit": "visits", "call": "calls", "deal": "deals", "feedback": "feedback"}
    sent = 0
    for index, event in enumerate(scenario.events):
        publisher.send(topics[event["event_type"]], event, message_key(event["event_type"], event))
        sent += 1
        if index % step == 0 and index // step < len(malformed):
            bad = malformed[index // step]
            publisher.send(topics[bad.topic_type], bad.value, bad.label)
            sent += 1
    for bad in malformed[len(scenario.events) // step + 1 :]:
        publisher.send(topics[bad.topic_type], bad.value, bad.label)
        sent += 1
    publisher.flush()
    total = sent + len(scenario.org)
    assert sent == len(scenario.events) + len(malformed)
    run.wait_consumed(total)

    # Every valid event still counted, exactly.
    run.assert_exact()

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
