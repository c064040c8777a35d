"""`publish`: JSON Lines files and simulated histories land on the right topics with the right keys."""

import asyncio
import itertools
from collections import Counter
from datetime import date
from pathlib import Path

import orjson
import pytest

from salespulse.config import Settings
from salespulse.embedded.broker import EmbeddedBroker
from salespulse.kafka.consumers import read_topics
from salespulse.kafka.producer import publish_records
from salespulse.publishing.json_lines import BadLine, publish_files
from salespulse.schemas import REFERENCE_MODELS
from salespulse.simulator import generate_history

_prefixes = itertools.count(1)
TOPIC_SUFFIXES = ("visits", "calls", "deals", "feedback", "org", "customers", "targets", "dlq", "alerts")


@pytest.fixture
def settings(broker: EmbeddedBroker) -> Settings:
    """Settings for the session's embedded broker, with topics of this test's own."""
    return Settings(broker=broker.bootstrap, topic_prefix=f"pub{next(_prefixes)}.", topic_partitions=3)


def on_topics(settings: Settings) -> dict[str, list[tuple[str | None, bytes]]]:
    """(key, value) of every message on each of the test's topics, by topic suffix, sorted."""
    names = [f"{settings.topic_prefix}{suffix}" for suffix in TOPIC_SUFFIXES]
    records = asyncio.run(read_topics(settings.broker, names))
    on: dict[str, list[tuple[str | None, bytes]]] = {}
    for name in names:
        messages = [
            (None if record.key is None else record.key.decode(), record.value) for record in records[name]
        ]
        on[name.removeprefix(settings.topic_prefix)] = sorted(messages, key=_none_first)
    return on


def _none_first(item: tuple[str | None, bytes]) -> tuple[str, bytes]:
    return (item[0] or "", item[1])


VISIT = b'{"event_type":"visit","event_id":"v-1","occurred_at":"2026-03-02T09:30:00+08:00","rep_id":"rep-01","customer_id":"cust-001","duration_minutes":45,"outcome":"completed"}'
VISIT_ON_DEAL = b'{"event_type": "visit", "event_id": "v-2", "occurred_at": "2026-03-02T11:00:00+08:00", "rep_id": "rep-01", "customer_id": "cust-001", "deal_id": "deal-7", "duration_minutes": 30, "outcome": "no_show"}'
CALL = b'{"event_type":"call","event_id":"c-1","occurred_at":"2026-03-02T10:00:00Z","rep_id":"rep-02","customer_id":"cust-002","direction":"inbound","duration_seconds":300,"outcome":"connected"}'
DEAL = b'{"event_type":"deal","event_id":"d-1","occurred_at":"2026-03-02T10:05:00Z","rep_id":"rep-02","customer_id":"cust-002","deal_id":"deal-7","stage":"proposal","amount":"1200.50"}'
FEEDBACK = '{"event_type":"feedback","event_id":"f-1","occurred_at":"2026-03-03T08:00:00+08:00","rep_id":"rep-01","customer_id":"cust-001","score_type":"csat","score":2,"category":"complaint","comment":"售后响应太慢"}'.encode()
# Invalid (no occurred_at, no customer): still published, for the pipeline to send to the DLQ.
INVALID_VISIT = b'{"event_type":"visit","event_id":"v-bad"}'

ORG = [
    b'{"rep_id":"rep-01","rep_name":"\xe7\x8e\x8b\xe4\xbc\x9f","team_id":"east-1","region_id":"east","effective_from":"2026-01-01"}',
    b'{"rep_id":"rep-01","rep_name":"\xe7\x8e\x8b\xe4\xbc\x9f","team_id":"north-1","region_id":"north","effective_from":"2026-03-01"}',
]
CUSTOMERS = [
    b'{"customer_id":"cust-001","tier":"A"}',
    b'{"customer_id":"cust-002","tier":"C","follow_up_days":90}',
]
TARGETS = [
    b'{"level":"company","entity_id":"all","metric":"won_amount","period":"quarter","period_start":"2026-01-01","target":1000000}'
]


def test_a_jsonl_file_with_good_and_bad_lines(settings: Settings, tmp_path: Path) -> None:
    events = tmp_path / "events.jsonl"
    events.write_bytes(
        b"\n".join(
            [
                VISIT,  # 1
                CALL + b"\r",  # 2: CRLF line end
                b"",  # 3: blank, skipped
                DEAL,  # 4
                b"not json at all",  # 5
                FEEDBACK,  # 6
                b"[1, 2, 3]",  # 7
                b'{"event_id": "x-1", "customer_id": "cust-001"}',  # 8: no event_type
                b"   " + VISIT_ON_DEAL + b"  ",  # 9: surrounding blanks
                INVALID_VISIT,  # 10
                b'{"event_type": "org", "rep_id": "rep-01"}',  # 11: reference records need --type
                b"",  # 12: blank
            ]
        )
    )
    report = publish_files([events], settings, progress=False)

    prefix = settings.topic_prefix
    assert report.by_topic == {
        f"{prefix}visits": 3,
        f"{prefix}calls": 1,
        f"{prefix}deals": 1,
        f"{prefix}feedback": 1,
    }
    assert report.lines == 10 and report.published == 6
    assert [(bad.path, bad.line) for bad in report.bad_lines] == [
        (events, 5),
        (events, 7),
        (events, 8),
        (events, 11),
    ]
    reasons = [bad.reason for bad in report.bad_lines]
    assert reasons[0].startswith("not valid JSON")
    assert reasons[1] == "a JSON array, not an object; each line must be one JSON object"
    assert reasons[2].startswith("no event_type field")
    assert "publish org records with --type org" in reasons[3]
    assert str(report.bad_lines[0]) == f"{events}:5: {reasons[0]}"
    summary = str(report)
    assert summary.startswith(f"published 6 of 10 lines: {prefix}calls 1, {prefix}deals 1")
    assert f"{events}:7: a JSON array" in summary

    # Each line as written, keyed by deal_id, else customer_id, else not at all.
    assert on_topics(settings) == {
        "visits": sorted(
            [(None, INVALID_VISIT), ("cust-001", VISIT), ("deal-7", VISIT_ON_DEAL)], key=_none_first
        ),
        "calls": [("cust-002", CALL)],
        "deals": [("deal-7", DEAL)],
        "feedback": [("cust-001", FEEDBACK)],
        "org": [],
        "customers": [],
        "targets": [],
        "dlq": [],
        "alerts": [],
    }


def test_reference_files_with_type_override(settings: Settings, tmp_path: Path) -> None:
    org, customers, targets = tmp_path / "org.jsonl", tmp_path / "customers.jsonl", tmp_path / "targets.jsonl"
    org.write_bytes(b"\n".join(ORG) + b"\n")
    customers.write_bytes(b"\n".join([CUSTOMERS[0], b"{broken", CUSTOMERS[1]]) + b"\n")
    targets.write_bytes(b"\n".join(TARGETS) + b"\n")

    org_report = publish_files([org], settings, type_override="org", progress=False)
    customer_report = publish_files([customers], settings, type_override="customers", progress=False)
    target_report = publish_files([targets], settings, type_override="targets", progress=False)

    prefix = settings.topic_prefix
    assert (org_report.by_topic, org_report.bad_lines) == ({f"{prefix}org": 2}, [])
    assert customer_report.by_topic == {f"{prefix}customers": 2}
    assert [(bad.path, bad.line) for bad in customer_report.bad_lines] == [(customers, 2)]
    assert isinstance(customer_report.bad_lines[0], BadLine)
    assert target_report.by_topic == {f"{prefix}targets": 1}

    on = on_topics(settings)
    assert on["org"] == [("rep-01|2026-01-01", ORG[0]), ("rep-01|2026-03-01", ORG[1])]
    assert on["customers"] == [("cust-001", CUSTOMERS[0]), ("cust-002", CUSTOMERS[1])]
    assert on["targets"] == [("company|all|won_amount|quarter|2026-01-01", TARGETS[0])]
    assert on["visits"] == on["dlq"] == []


def test_several_files_in_one_call_report_their_own_line_numbers(settings: Settings, tmp_path: Path) -> None:
    first, second = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    first.write_bytes(VISIT + b"\n[]\n")
    second.write_bytes(b"{}\n" + CALL + b"\n")
    report = publish_files([first, second], settings, progress=False)
    assert [(bad.path.name, bad.line) for bad in report.bad_lines] == [("a.jsonl", 2), ("b.jsonl", 1)]
    assert report.published == 2


def test_publish_records_keys_a_simulated_history(settings: Settings) -> None:
    history = generate_history(date(2026, 1, 5), 14, seed=3)
    counts = publish_records(history.records(), settings)

    prefix = settings.topic_prefix
    expected = Counter(f"{prefix}{_suffix(record_type)}" for record_type, _ in history.records())
    assert counts == dict(expected)
    on = on_topics(settings)
    for record_type, records in (
        ("org", history.org),
        ("customers", history.customers),
        ("targets", history.targets),
    ):
        model = REFERENCE_MODELS[record_type]
        assert on[record_type] == sorted(
            (model.model_validate_json(orjson.dumps(record)).record_key, orjson.dumps(record))
            for record in records
        )
    for event_type in ("visit", "call", "deal", "feedback"):
        sent = [event for event in history.events if event["event_type"] == event_type]
        assert on[_suffix(event_type)] == sorted(
            (event.get("deal_id", event["customer_id"]), orjson.dumps(event)) for event in sent
        )


def _suffix(record_type: str) -> str:
    return {"visit": "visits", "call": "calls", "deal": "deals"}.get(record_type, record_type)
