"""The one keying rule of salespulse (contract §3): which key each event and record is published with."""

import pytest

from salespulse.kafka.producer import message_key


@pytest.mark.parametrize(
    ("record_type", "record", "key"),
    [
        ("deal", {"deal_id": "deal-1", "customer_id": "cust-1"}, "deal-1"),
        ("visit", {"deal_id": "deal-1", "customer_id": "cust-1"}, "deal-1"),
        ("call", {"customer_id": "cust-1"}, "cust-1"),
        ("feedback", {"deal_id": None, "customer_id": "cust-1"}, "cust-1"),
        ("visit", {"deal_id": "", "customer_id": "cust-1"}, "cust-1"),
        ("visit", {"event_id": "e-1"}, None),
        ("call", {"customer_id": 42}, "42"),
        ("org", {"rep_id": "rep-1", "effective_from": "2026-01-01", "team_id": "t"}, "rep-1|2026-01-01"),
        ("customers", {"customer_id": "cust-9", "tier": "A"}, "cust-9"),
        (
            "targets",
            {
                "level": "team",
                "entity_id": "east-1",
                "metric": "won_amount",
                "period": "quarter",
                "period_start": "2026-04-01",
                "target": 5,
            },
            "team|east-1|won_amount|quarter|2026-04-01",
        ),
    ],
)
def test_message_keys(record_type: str, record: dict[str, object], key: str | None) -> None:
    assert message_key(record_type, record) == key


def test_reference_records_missing_a_key_field_keep_their_own_key() -> None:
    one = message_key("org", {"rep_id": "rep-1", "team_id": "a"})
    other = message_key("org", {"rep_id": "rep-1", "team_id": "b"})
    assert one is not None and other is not None
    assert one.startswith("rep-1|#") and other.startswith("rep-1|#") and one != other
    assert one == message_key("org", {"team_id": "a", "rep_id": "rep-1"})  # field order does not matter


def test_unknown_record_type_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="unknown record type 'visits'"):
        message_key("visits", {})
