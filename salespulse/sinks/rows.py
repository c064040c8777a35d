"""Accepted events and records as ClickHouse rows, in the column order of the tables.

This is where an event's amount is converted to the reporting currency and where each row
gets its provenance (topic, partition, offset) and acceptance order.
"""

from datetime import UTC, datetime
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any, NamedTuple

from salespulse.schemas.events import ActivityEvent, Call, Deal, Feedback, Visit
from salespulse.schemas.reference import CustomerRecord, OrgRecord, ReferenceRecord, TargetRecord
from salespulse.streams.decoding import Tombstone
from salespulse.streams.settings import Settings

REPORTING_QUANTUM = Decimal("0.0001")
ORIGINAL_QUANTUM = Decimal("0.0000000001")
# dedup_version = DEDUP_BASE - acceptance time: the first accepted copy has the largest version.
DEDUP_BASE = 2**63


class SourcePosition(NamedTuple):
    topic: str
    partition: int
    offset: int


EVENT_COLUMNS: tuple[str, ...] = (
    "event_id", "event_type", "occurred_at", "rep_id", "customer_id", "deal_id", "source",
    "schema_version", "visit_duration_minutes", "visit_outcome", "call_direction",
    "call_duration_seconds", "call_outcome", "stage", "amount", "original_amount",
    "original_currency", "expected_close_date", "lost_reason", "score_type", "score", "category",
    "comment", "src_topic", "src_partition", "src_offset", "ingested_at", "dedup_version",
)  # fmt: skip

# Columns that only some event types fill; the others store these empty values.
_TYPE_SPECIFIC_DEFAULTS: dict[str, Any] = {
    "visit_duration_minutes": 0,
    "visit_outcome": "",
    "call_direction": "",
    "call_duration_seconds": 0,
    "call_outcome": "",
    "stage": "",
    "amount": Decimal(0),
    "original_amount": Decimal(0),
    "original_currency": "",
    "expected_close_date": None,
    "lost_reason": "",
    "score_type": "",
    "score": 0,
    "category": "",
    "comment": "",
}

_PROVENANCE = ("is_deleted", "src_topic", "src_partition", "src_offset", "ingested_at", "version")

REFERENCE_TABLES: dict[str, str] = {
    "org": "org_records",
    "targets": "target_records",
    "customers": "customer_records",
}
REFERENCE_COLUMNS: dict[str, tuple[str, ...]] = {
    "org": ("record_key", "rep_id", "rep_name", "team_id", "team_name", "manager_id", "region_id",
            "effective_from", *_PROVENANCE),
    "targets": ("record_key", "level", "entity_id", "metric", "period", "period_start", "target", *_PROVENANCE),
    "customers": ("record_key", "customer_id", "tier", "follow_up_days", *_PROVENANCE),
}  # fmt: skip

_ZERO = Decimal(0)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def microseconds(moment: datetime) -> int:
    """Microseconds since the epoch, exactly (no float rounding)."""
    delta = moment - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


class RowBuilder:
    """Builds table rows for one worker's settings (currency, rates)."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings

    def event_row(
        self, event: ActivityEvent, position: SourcePosition, ingested_at: datetime
    ) -> tuple[Any, ...]:
        values: dict[str, Any] = {
            **_TYPE_SPECIFIC_DEFAULTS,
            "event_id": event.event_id,
            "event_type": event.EVENT_TYPE,
            "occurred_at": event.occurred_at.astimezone(UTC),
            "rep_id": event.rep_id,
            "customer_id": event.customer_id,
            "deal_id": event.deal_id or "",
            "source": event.source or "",
            "schema_version": event.schema_version,
            "src_topic": position.topic,
            "src_partition": position.partition,
            "src_offset": position.offset,
            "ingested_at": ingested_at,
            "dedup_version": DEDUP_BASE - microseconds(ingested_at),
        }
        if isinstance(event, Visit):
            values.update(visit_duration_minutes=event.duration_minutes, visit_outcome=event.outcome)
        elif isinstance(event, Call):
            values.update(
                call_direction=event.direction,
                call_duration_seconds=event.duration_seconds,
                call_outcome=event.outcome,
            )
        elif isinstance(event, Deal):
            currency = event.currency or self._settings.reporting_currency
            rate = self._settings.rate_for(currency)
            assert rate is not None, "the decoder rejects currencies without a rate"
            values.update(
                stage=event.stage,
                amount=(event.amount * rate).quantize(REPORTING_QUANTUM, rounding=ROUND_HALF_EVEN),
                original_amount=event.amount.quantize(ORIGINAL_QUANTUM, rounding=ROUND_HALF_EVEN),
                original_currency=currency,
                expected_close_date=event.expected_close_date,
                lost_reason=event.lost_reason or "",
            )
        elif isinstance(event, Feedback):
            values.update(
                score_type=event.score_type,
                score=event.score,
                category=event.category or "",
                comment=event.comment or "",
            )
        return tuple(values[column] for column in EVENT_COLUMNS)

    @staticmethod
    def reference_row(
        record: ReferenceRecord | Tombstone, position: SourcePosition, ingested_at: datetime
    ) -> tuple[Any, ...]:
        provenance = (
            position.topic,
            position.partition,
            position.offset,
            ingested_at,
            microseconds(ingested_at),
        )
        if isinstance(record, Tombstone):
            columns = REFERENCE_COLUMNS[record.record_type]
            blank = tuple(_blank_for(name) for name in columns[1 : -len(_PROVENANCE)])
            return (record.record_key, *blank, 1, *provenance)
        if isinstance(record, OrgRecord):
            values: tuple[Any, ...] = (record.rep_id, record.rep_name, record.team_id, record.team_name,
                                       record.manager_id, record.region_id, record.effective_from)  # fmt: skip
        elif isinstance(record, TargetRecord):
            values = (record.level, record.entity_id, record.metric, record.period, record.period_start,
                      record.target.quantize(REPORTING_QUANTUM, rounding=ROUND_HALF_EVEN))  # fmt: skip
        elif isinstance(record, CustomerRecord):
            values = (record.customer_id, record.tier, record.follow_up_days)
        else:  # pragma: no cover - the models are closed
            raise TypeError(f"unknown reference record {type(record).__name__}")
        return (record.record_key, *values, 0, *provenance)


def _blank_for(column: str) -> Any:
    if column in ("effective_from", "period_start"):
        return _EPOCH.date()
    if column == "target":
        return _ZERO
    if column == "follow_up_days":
        return None
    return ""
