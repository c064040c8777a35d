"""Rows in table column order: each event type fills its own columns and leaves the others empty."""

from datetime import UTC, date, datetime
from decimal import Decimal

import orjson

from salespulse.config import Settings
from salespulse.schemas.decoding import Decoder
from salespulse.sinks.clickhouse.rows import DEDUP_BASE, EVENT_COLUMNS, BatchStamp, RowBuilder, SourcePosition

SETTINGS = Settings(currency_rates="EUR=1.08")
AT = datetime(2026, 3, 2, 1, 2, 3, 456789, tzinfo=UTC)
STAMP = BatchStamp.at(AT)
BASE = {"event_id": "e1", "occurred_at": "2026-03-02T09:30:00+08:00", "rep_id": "r1", "customer_id": "c1"}
EMPTY = {
    "visit_duration_minutes": 0,
    "visit_outcome": "",
    "call_direction": "",
    "call_duration_seconds": 0,
    "call_outcome": "",
    "stage": "",
    "amount": None,
    "original_amount": None,
    "original_currency": "",
    "expected_close_date": None,
    "lost_reason": "",
    "score_type": "",
    "score": 0,
    "category": "",
    "comment": "",
}


def row(event_type: str, **fields: object) -> dict[str, object]:
    event = Decoder(SETTINGS).decode_event(event_type, orjson.dumps({**BASE, **fields}))
    values = RowBuilder(SETTINGS).event_row(event, SourcePosition("crm.x", 3, 42), STAMP)  # type: ignore[arg-type]
    assert len(values) == len(EVENT_COLUMNS)
    return dict(zip(EVENT_COLUMNS, values, strict=True))


def expected(event_type: str, **specific: object) -> dict[str, object]:
    return {
        "event_id": "e1",
        "event_type": event_type,
        "occurred_at": 1_772_415_000_000_000,  # 2026-03-02T01:30Z in µs
        "rep_id": "r1",
        "customer_id": "c1",
        "deal_id": specific.pop("deal_id", ""),
        "source": "",
        "schema_version": 1,
        **EMPTY,
        **specific,
        "src_topic": "crm.x",
        "src_partition": 3,
        "src_offset": 42,
        "ingested_at": 1_772_413_323_456_789,
        "dedup_version": DEDUP_BASE - 1_772_413_323_456_789,
    }


def test_each_type_fills_its_own_columns() -> None:
    assert row("visit", duration_minutes=30, outcome="completed") == expected(
        "visit", visit_duration_minutes=30, visit_outcome="completed"
    )
    assert row("call", direction="inbound", duration_seconds=65, outcome="busy", deal_id="d1") == expected(
        "call", call_direction="inbound", call_duration_seconds=65, call_outcome="busy", deal_id="d1"
    )
    assert row("feedback", score_type="nps", score=9, category="praise", comment="好") == expected(
        "feedback", score_type="nps", score=9, category="praise", comment="好"
    )


def test_deal_amounts_are_converted_and_rounded_half_even() -> None:
    # 1000.00375 EUR × 1.08 = 1080.00405 → 1080.0040 (half-even), original kept to 10 places.
    deal = row(
        "deal",
        deal_id="d1",
        stage="won",
        amount="1000.00375",
        currency="EUR",
        expected_close_date="2026-04-30",
        lost_reason="",
    )
    assert deal == expected(
        "deal",
        deal_id="d1",
        stage="won",
        amount=Decimal("1080.0040"),
        original_amount=Decimal("1000.0037500000"),
        original_currency="EUR",
        expected_close_date=date(2026, 4, 30),
    )
    usd = row("deal", deal_id="d2", stage="proposal", amount=12.5)
    assert (usd["amount"], usd["original_currency"]) == (Decimal("12.5000"), "USD")
