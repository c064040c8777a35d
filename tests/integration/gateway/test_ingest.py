"""The gateway end to end: HTTP in, the real embedded broker, a real worker, exact views (issue 13).

Events go through `salespulse gateway` with a real HTTP client; the views are compared with
the independent reference model (tests/oracle), and what reached Kafka is read back from the
topics themselves.
"""

import asyncio
from collections.abc import Callable
from typing import Any

import orjson

from salespulse.embedded.broker import EmbeddedBroker
from salespulse.kafka.consumers import read_topics
from salespulse.runtime.gateway_process import GatewayProcess
from tests.oracle.scenario import Scenario, build_malformed
from tests.support.gateway import TOKEN_NAME, batches, ndjson, post
from tests.support.pipeline import ScenarioRun, scenario_env, with_duplicates_and_shuffled

ALL_SUFFIXES = ("visits", "calls", "deals", "feedback", "org", "customers", "targets", "dlq")


def post_in_batches(gateway: GatewayProcess, path: str, items: list[dict[str, Any]], size: int) -> int:
    """Post ``items`` in batches, JSON arrays and NDJSON in turn; returns the events accepted."""
    accepted = 0
    for number, batch in enumerate(batches(items, size)):
        if number % 2:
            answer = post(gateway.url + path, ndjson(batch), content_type="application/x-ndjson")
        else:
            answer = post(gateway.url + path, orjson.dumps(batch))
        assert answer.status == 200, answer
        assert answer.body["rejected"] == [], answer.body["rejected"][:3]
        accepted += answer.body["accepted"]
    return accepted


def topic_contents(bootstrap: str, prefix: str) -> dict[str, list[Any]]:
    records = asyncio.run(read_topics(bootstrap, [prefix + suffix for suffix in ALL_SUFFIXES]))
    return {topic.removeprefix(prefix): found for topic, found in records.items()}


def test_scenario_posted_in_batches_gives_the_reference_views(
    scenario_run: Callable[..., ScenarioRun],
    scenario: Scenario,
    make_gateway: Callable[..., GatewayProcess],
) -> None:
    events, copies = with_duplicates_and_shuffled(scenario.events, duplicate_share=0.10, seed=13)
    run = scenario_run().start()
    gateway = make_gateway(run.worker.topic_prefix, **scenario_env(scenario))

    org = post_in_batches(gateway, "/v1/records/org", scenario.org, 500)
    accepted = post_in_batches(gateway, "/v1/events", events, 500)
    assert org == len(scenario.org) and accepted == len(events)
    run.wait_consumed(org + accepted)

    run.assert_exact()
    assert run.worker.counter("salespulse_events_duplicate_total") == copies
    assert run.worker.counter("salespulse_events_rejected_total") == 0
    assert gateway.counter("salespulse_gateway_events_accepted_total") == org + accepted
    assert gateway.counter("salespulse_gateway_events_accepted_total", type="org", source=TOKEN_NAME) == org


# In the gateway, event_type chooses the model (there is no topic to disagree with): a body of
# one type that says it is another lacks the other type's required fields.
GATEWAY_REASON = {"wrong_event_type": "missing_field"}


def test_malformed_events_are_rejected_with_the_dlq_reasons_and_never_reach_kafka(
    make_gateway: Callable[..., GatewayProcess], broker: EmbeddedBroker
) -> None:
    prefix = "gwbad."
    gateway = make_gateway(prefix)
    malformed = build_malformed()
    valid = [
        {
            "event_id": f"good-{n}",
            "event_type": "visit",
            "occurred_at": "2026-03-02T09:30:00+08:00",
            "rep_id": "rep-01",
            "customer_id": "cust-good",
            "duration_minutes": 30,
            "outcome": "completed",
            **({"source": "hubspot"} if n % 2 else {}),
            **({"source": None} if n == 4 else {}),
        }
        for n in range(6)
    ]
    # A valid event before, between and after the bad ones; a null message is an empty line.
    lines: list[bytes] = [orjson.dumps(valid[0])]
    for index, bad in enumerate(malformed):
        lines.append(bad.value or b"")
        if index % 40 == 0:
            lines.append(orjson.dumps(valid[len(lines) % 4 + 1]))
    lines.append(orjson.dumps(valid[5]))
    sent_valid = [orjson.loads(line) for line in lines if line.startswith(b'{"event_id":"good-')]
    answer = post(gateway.url + "/v1/events", ndjson(lines), content_type="application/x-ndjson")

    assert answer.status == 200, answer
    assert answer.body["accepted"] == len(sent_valid)
    rejected = answer.body["rejected"]
    assert len(rejected) == len(malformed)
    bad_indexes = [index for index, line in enumerate(lines) if not line.startswith(b'{"event_id":"good-')]
    assert [item["index"] for item in rejected] == bad_indexes
    for item, bad in zip(rejected, malformed, strict=True):
        assert item["reason"] == GATEWAY_REASON.get(bad.kind, bad.expected_reason), (bad.kind, item)
        assert item["message"] and len(item["message"]) < 600
        if (
            bad.value is not None
            and bad.value.startswith(b'{"event_id":"bad-')
            and bad.kind != "long_event_id"
        ):
            assert item["event_id"] == bad.label
    assert gateway.counter("salespulse_gateway_events_rejected_total") == len(malformed)
    assert gateway.counter("salespulse_gateway_events_rejected_total", reason="invalid_json") == sum(
        1 for bad in malformed if bad.expected_reason == "invalid_json"
    )

    # Only the valid events are on Kafka, each once, with the token's name as source when they had none.
    topics = topic_contents(broker.bootstrap, prefix)
    published = [orjson.loads(record.value) for record in topics["visits"]]
    assert sorted(event["event_id"] for event in published) == sorted(e["event_id"] for e in sent_valid)
    for event in published:
        sent = next(e for e in sent_valid if e["event_id"] == event["event_id"])
        assert event["source"] == (sent.get("source") or TOKEN_NAME)
    assert all(not found for suffix, found in topics.items() if suffix != "visits"), topics
    assert {record.key for record in topics["visits"]} == {b"cust-good"}


def test_unauthorized_and_oversized_requests_publish_nothing(
    make_gateway: Callable[..., GatewayProcess], broker: EmbeddedBroker
) -> None:
    prefix = "gwrefused."
    gateway = make_gateway(
        prefix, SALESPULSE_INGEST_MAX_EVENTS="100", SALESPULSE_INGEST_MAX_BODY_BYTES="65536"
    )
    event = {
        "event_type": "call",
        "occurred_at": "2026-03-02T09:30:00Z",
        "rep_id": "rep-01",
        "customer_id": "cust-1",
        "direction": "outbound",
        "duration_seconds": 60,
        "outcome": "connected",
    }
    some = [{**event, "event_id": f"e-{n}"} for n in range(100)]
    url = gateway.url + "/v1/events"

    for token in (None, "not-a-known-token-000000", "test-crm-token-012345678"):  # the last: one char short
        answer = post(url, orjson.dumps(some), token=token)
        assert answer.status == 401, answer
        assert answer.body["error"] == "unauthorized" and "nothing was published" in answer.body["message"]
        assert answer.headers["WWW-Authenticate"].startswith("Bearer")
    too_many = post(url, orjson.dumps([*some, {**event, "event_id": "e-100"}]))
    assert too_many.status == 413 and too_many.body["error"] == "too_many_events", too_many
    assert "101" in too_many.body["message"] and "100" in too_many.body["message"]
    padded = [{**e, "comment": "x" * 600} for e in some]
    too_big = post(url, orjson.dumps(padded))
    assert too_big.status == 413 and too_big.body["error"] == "body_too_large", too_big
    too_big_lines = post(url, ndjson(padded), content_type="application/x-ndjson")
    assert too_big_lines.status == 413
    not_an_array = post(url, orjson.dumps(event))
    assert not_an_array.status == 400 and not_an_array.body["error"] == "not_an_array"
    broken = post(url, orjson.dumps(some)[:-1])
    assert broken.status == 400 and broken.body["error"] == "invalid_json"

    assert all(not found for found in topic_contents(broker.bootstrap, prefix).values())
    assert gateway.counter("salespulse_gateway_requests_refused_total", reason="unauthorized") == 3
    assert gateway.counter("salespulse_gateway_requests_refused_total", reason="too_large") == 3
    # The exact limit is allowed.
    assert post(url, orjson.dumps(some)).body == {"accepted": 100, "rejected": []}
