"""The decoder: every kind of bad message gets the right reason and a readable message."""

from decimal import Decimal

import orjson
import pytest

from salespulse.config import Settings
from salespulse.schemas import Deal, Visit
from salespulse.schemas.decoding import Decoder, Rejection, Tombstone

VISIT = {
    "event_id": "v-1",
    "occurred_at": "2026-03-02T09:30:00+08:00",
    "rep_id": "rep-1",
    "customer_id": "cust-1",
    "duration_minutes": 45,
    "outcome": "completed",
}
DEAL = {
    "event_id": "d-1",
    "occurred_at": "2026-03-02T09:30:00Z",
    "rep_id": "rep-1",
    "customer_id": "cust-1",
    "deal_id": "deal-1",
    "stage": "proposal",
    "amount": "1200.50",
}


@pytest.fixture
def decoder() -> Decoder:
    return Decoder(Settings(currency_rates="EUR=1.08"))


def encode(base: dict[str, object], **changes: object) -> bytes:
    return orjson.dumps({**base, **changes})


def test_valid_events_decode_with_unknown_fields_ignored(decoder: Decoder) -> None:
    visit = decoder.decode_event("visit", encode(VISIT, crm_internal_flag=True, event_type="visit"))
    assert isinstance(visit, Visit)
    assert visit.duration_minutes == 45
    assert visit.occurred_at.utcoffset().total_seconds() == 8 * 3600  # type: ignore[union-attr]
    deal = decoder.decode_event("deal", encode(DEAL, currency="EUR"))
    assert isinstance(deal, Deal)
    assert deal.amount == Decimal("1200.50")


@pytest.mark.parametrize(
    ("event_type", "raw", "reason", "fragment"),
    [
        ("visit", b"{not json", "invalid_json", "not valid JSON"),
        ("visit", b"\xff\xfe\x00", "not_utf8", "not UTF-8"),
        ("visit", b"[1, 2]", "not_an_object", "got an array"),
        ("visit", b'"visit"', "not_an_object", "got a string"),
        ("visit", b"", "empty_message", "no value"),
        ("visit", None, "empty_message", "no value"),
        ("visit", encode(VISIT, duration_minutes="45"), "invalid_value", "duration_minutes"),
        ("visit", encode(VISIT, duration_minutes=True), "invalid_value", "duration_minutes"),
        ("visit", encode(VISIT, rep_id=17), "invalid_value", "rep_id"),
        ("visit", encode(VISIT, outcome="rescheduled"), "invalid_value", "outcome"),
        ("visit", encode(VISIT, occurred_at="2026-03-02T09:30:00"), "invalid_value", "no UTC offset"),
        ("visit", encode(VISIT, occurred_at="yesterday"), "invalid_value", "occurred_at"),
        (
            "visit",
            encode(VISIT, occurred_at="1900-01-01T00:00:00Z"),
            "invalid_value",
            "the years 1971–2099 are accepted",
        ),
        ("visit", encode(VISIT, event_type="call"), "wrong_event_type", "does not match"),
        ("visit", encode(VISIT, event_id=""), "invalid_value", "event_id"),
        ("visit", encode(VISIT, event_id="x" * 129), "invalid_value", "event_id"),
        ("visit", encode(VISIT, rep_id=" rep-1"), "invalid_value", "rep_id"),
        ("deal", encode(DEAL, stage="closed"), "invalid_value", "stage"),
        ("deal", encode(DEAL, amount=-5), "invalid_value", "must not be negative"),
        ("deal", encode(DEAL, amount="NaN"), "invalid_value", "finite"),
        ("deal", encode(DEAL, currency="XYZ"), "unknown_currency", "XYZ"),
        ("deal", encode(DEAL, currency="eur"), "invalid_value", "currency"),
        ("feedback", encode(VISIT, score_type="csat", score=7), "invalid_value", "csat scale 1–5"),
        ("feedback", encode(VISIT, score_type="nps", score=11), "invalid_value", "score"),
    ],
)
def test_rejections_name_the_problem(
    decoder: Decoder, event_type: str, raw: bytes | None, reason: str, fragment: str
) -> None:
    result = decoder.decode_event(event_type, raw)
    assert isinstance(result, Rejection)
    assert result.reason == reason
    assert fragment in result.message


def test_deal_without_deal_id_is_a_missing_field(decoder: Decoder) -> None:
    body = dict(DEAL)
    del body["deal_id"]
    result = decoder.decode_event("deal", orjson.dumps(body))
    assert result == Rejection("missing_field", "missing required field 'deal_id'")


def test_oversized_payload_is_rejected_unread(decoder: Decoder) -> None:
    huge = encode(VISIT, comment="x" * 70_000)
    result = decoder.decode_event("visit", huge)
    assert isinstance(result, Rejection)
    assert result.reason == "payload_too_large"
    assert str(len(huge)) in result.message and "SALESPULSE_MAX_EVENT_BYTES" in result.message


def test_tombstones_need_a_well_formed_key(decoder: Decoder) -> None:
    assert decoder.decode_reference("org", b"rep-1|2026-01-01", None) == Tombstone("org", "rep-1|2026-01-01")
    assert decoder.decode_reference("customers", b"cust-9", None) == Tombstone("customers", "cust-9")
    bad = decoder.decode_reference("org", b"rep-1", None)
    assert isinstance(bad, Rejection) and bad.reason == "invalid_tombstone"


def test_reference_records_validate_their_period(decoder: Decoder) -> None:
    target = {"level": "team", "entity_id": "t1", "metric": "visits", "period": "quarter", "target": 40}
    ok = decoder.decode_reference("targets", None, orjson.dumps({**target, "period_start": "2026-04-01"}))
    assert not isinstance(ok, Rejection)
    assert ok.record_key == "team|t1|visits|quarter|2026-04-01"  # type: ignore[union-attr]
    bad = decoder.decode_reference("targets", None, orjson.dumps({**target, "period_start": "2026-05-01"}))
    assert isinstance(bad, Rejection) and "Jan 1, Apr 1, Jul 1 or Oct 1" in bad.message


def test_a_typed_event_is_judged_as_on_its_topic_and_must_say_its_type() -> None:
    from salespulse.config import Settings
    from salespulse.schemas.decoding import Decoder, Rejection

    decoder = Decoder(Settings())
    visit = b'{"event_type":"visit","event_id":"v1","occurred_at":"2026-03-02T09:30:00Z","rep_id":"r","customer_id":"c","duration_minutes":5,"outcome":"completed"}'
    assert not isinstance(decoder.decode_typed_event(visit), Rejection)
    assert decoder.decode_typed_event(visit.replace(b'"event_type":"visit",', b"")) == Rejection(
        "missing_field",
        "missing required field 'event_type' (one of visit, call, deal, feedback): it names the event's type and so its topic",
    )
    odd = decoder.decode_typed_event(visit.replace(b'"visit"', b'"meeting"'))
    assert isinstance(odd, Rejection) and odd.reason == "invalid_value" and "'meeting'" in odd.message
    for raw in (b"{not json", b"\xff\xfe", b"[1]", b"", b'{"event_type":"visit"}'):
        assert decoder.decode_typed_event(raw) == decoder.decode_event("visit", raw)
