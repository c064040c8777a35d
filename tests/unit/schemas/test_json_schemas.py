"""The exported JSON Schemas (what CRM integrators validate against) agree with the pipeline.

Every event of the pipeline scenario passes its type's schema; every malformed message of the
scenario's set fails it — or cannot be read as JSON at all — except those whose fault no
schema can see: a currency with no configured rate (a setting of the pipeline, not of the
contract) and a message over the size limit (the limit is on bytes, not on JSON).
"""

from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import pytest
from jsonschema import Draft202012Validator

from salespulse.config import Settings
from salespulse.schemas.decoding import Decoder, Rejection
from salespulse.schemas.export import export_json_schemas
from tests.oracle.scenario import build_malformed, build_scenario

OUTSIDE_ANY_SCHEMA = {"unknown_currency", "payload_too_large"}


@pytest.fixture(scope="module")
def validators(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Draft202012Validator]:
    directory = tmp_path_factory.mktemp("schemas")
    export_json_schemas(directory)
    result = {}
    for path in Path(directory).glob("*.schema.json"):
        schema = orjson.loads(path.read_bytes())
        Draft202012Validator.check_schema(schema)
        result[path.name.removesuffix(".schema.json")] = Draft202012Validator(
            schema, format_checker=Draft202012Validator.FORMAT_CHECKER
        )
    return result


def schema_errors(validator: Draft202012Validator, raw: bytes | None) -> list[str]:
    """Why a message fails the schema; 'not JSON' when strict JSON cannot even read it."""
    try:
        document: Any = orjson.loads(raw or b"")
    except orjson.JSONDecodeError:
        return ["not JSON"]
    return [error.message for error in validator.iter_errors(document)]


def test_every_scenario_event_passes_its_schema(validators: dict[str, Draft202012Validator]) -> None:
    events = build_scenario().events
    failures = [
        (event["event_id"], errors)
        for event in events
        if (errors := schema_errors(validators[event["event_type"]], orjson.dumps(event)))
    ]
    assert not failures, failures[:5]
    assert Counter(event["event_type"] for event in events).keys() == {"visit", "call", "deal", "feedback"}


def test_every_malformed_message_fails_its_schema(validators: dict[str, Draft202012Validator]) -> None:
    passed = []
    for message in build_malformed():
        if message.expected_reason in OUTSIDE_ANY_SCHEMA:
            continue
        if not schema_errors(validators[message.topic_type], message.value):
            passed.append((message.kind, message.label))
    assert not passed, passed


# Issue 17, point 3: inputs the decoder accepted although the exported schema rejects them.
ISSUE_17_TABLE = [  # field, value, what the rejection must say
    ("amount", "1_000", 'without digit separators (write "1000"'),
    ("amount", "1e3", 'without an exponent (write "1000"'),
    ("amount", "+1000", 'without a sign (write "1000"'),
    ("amount", " 1000 ", "without white space around it"),
    ("amount", "1000.", "needs a digit after the point"),
    ("amount", ".5", "needs a digit before the point"),
    ("amount", "١٢٣", "with the digits 0-9"),
    ("occurred_at", "2026-03-02_09:30:00Z", "must separate the date and the time with 'T' (got '_')"),
    ("occurred_at", "2026-03-02 09:30:00+08:00", "must separate the date and the time with 'T' (got ' ')"),
    ("occurred_at", "2026-03-02T09:30+08:00", "must include the seconds"),
]
VALID_DEAL = {
    "event_id": "d-17",
    "occurred_at": "2026-03-02T09:30:00Z",
    "rep_id": "rep-1",
    "customer_id": "cust-1",
    "deal_id": "deal-1",
    "stage": "won",
    "amount": "1000",
}


@pytest.mark.parametrize(
    ("field", "value", "says"), ISSUE_17_TABLE, ids=[repr(v) for _, v, _ in ISSUE_17_TABLE]
)
def test_the_decoder_rejects_what_the_schema_rejects(
    validators: dict[str, Draft202012Validator], field: str, value: str, says: str
) -> None:
    raw = orjson.dumps({**VALID_DEAL, field: value})
    assert not schema_errors(validators["deal"], orjson.dumps(VALID_DEAL))
    assert schema_errors(validators["deal"], raw), "the exported schema accepts it"
    result = Decoder(Settings()).decode_event("deal", raw)
    assert isinstance(result, Rejection), f"the decoder accepts {value!r} as {getattr(result, field)!r}"
    assert result.reason == "invalid_value"
    assert result.message.startswith(f"field '{field}': ")
    assert says in result.message, result.message
