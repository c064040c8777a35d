"""Accepted events and records as ClickHouse rows, in the column order of the tables.

This is where an event's amount is converted to the reporting currency and where each row
gets its provenance (topic, partition, offset) and acceptance order.
"""

from datetime import UTC, datetime
from decimal import ROUND_HALF_EVEN, Context, Decimal
from typing import Any, NamedTuple

from salespulse.config import Settings
from salespulse.schemas.decoding import Tombstone
from salespulse.schemas.events import ActivityEvent, Call, Deal, Feedback, Visit
from salespulse.schemas.reference import CustomerRecord, OrgRecord, ReferenceRecord, TargetRecord

REPORTING_QUANTUM = Decimal("0.0001")
ORIGINAL_QUANTUM = Decimal("0.0000000001")
# Enough digits for any accepted amount (< 10^18, any number of decimals) times any rate, so that
# conversion and rounding are exact: the default context (28 digits) would round early or fail.
EXACT = Context(prec=80, rounding=ROUND_HALF_EVEN)
# dedup_version = DEDUP_BASE - acceptance time: the first accepted copy has the largest version.
DEDUP_BASE = 2**63


class SourcePosition(NamedTuple):
    topic: str
    partition: int
    offset: int


EVENT_COLUMNS: tuple[str, ...] = (
    "event_id",
    "event_type",
    "occurred_at",
    "rep_id",
    "customer_id",
    "deal_id",
    "source",
    "schema_version",
    "visit_duration_minutes",
    "visit_outcome",
    "call_direction",
    "call_duration_seconds",
    "call_outcome",
    "stage",
    "amount",
    "original_amount",
    "original_currency",
    "expected_close_date",
    "lost_reason",
    "score_type",
    "score",
    "category",
    "comment",
    "src_topic",
    "src_partition",
    "src_offset",
    "ingested_at",
    "dedup_version",
)

# The type-specific columns, in table order, in four groups; an event fills its own group and
# stores the empty values of the other three. Tuples are concatenated rather than built from a
# dict: this runs once per event on the hot path.
_VISIT_EMPTY = (0, "")  # visit_duration_minutes, visit_outcome
_CALL_EMPTY = ("", 0, "")  # call_direction, call_duration_seconds, call_outcome
_DEAL_EMPTY = ("", None, None, "", None, "")  # stage .. lost_reason
_FEEDBACK_EMPTY = ("", 0, "", "")  # score_type, score, category, comment

_PROVENANCE = ("is_deleted", "src_topic", "src_partition", "src_offset", "ingested_at", "version")

REFERENCE_TABLES: dict[str, str] = {
    "org": "org_records",
    "targets": "target_records",
    "customers": "customer_records",
}
REFERENCE_COLUMNS: dict[str, tuple[str, ...]] = {
    "org": (
        "record_key",
        "rep_id",
        "rep_name",
        "team_id",
        "team_name",
        "manager_id",
        "region_id",
        "effective_from",
        *_PROVENANCE,
    ),
    "targets": (
        "record_key",
        "level",
        "entity_id",
        "metric",
        "period",
        "period_start",
        "target",
        *_PROVENANCE,
    ),
    "customers": ("record_key", "customer_id", "tier", "follow_up_days", *_PROVENANCE),
}

_ZERO = Decimal(0)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def microseconds(moment: datetime) -> int:
    """Microseconds since the epoch, exactly (no float rounding)."""
    delta = moment - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


class BatchStamp(NamedTuple):
    """What every row of one batch shares: when it was accepted, and the dedup version that follows."""

    ingested_at: datetime
    ingested_at_us: int
    dedup_version: int

    @classmethod
    def at(cls, ingested_at: datetime) -> "BatchStamp":
        us = microseconds(ingested_at)
        return cls(ingested_at, us, DEDUP_BASE - us)


class RowBuilder:
    """Builds table rows for one worker's settings (currency, rates)."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings

    def event_row(self, event: ActivityEvent, position: SourcePosition, stamp: BatchStamp) -> tuple[Any, ...]:
        # Timestamps as microseconds: DateTime64(6) columns take them as they are, where datetime
        # objects cost a conversion each on the hot path.
        common = (
            event.event_id,
            event.EVENT_TYPE,
            microseconds(event.occurred_at),
            event.rep_id,
            event.customer_id,
            event.deal_id or "",
            event.source or "",
            event.schema_version,
        )
        provenance = (
            position.topic,
            position.partition,
            position.offset,
            stamp.ingested_at_us,
            stamp.dedup_version,
        )
        specific: tuple[Any, ...]
        if isinstance(event, Visit):
            specific = (event.duration_minutes, event.outcome, *_CALL_EMPTY, *_DEAL_EMPTY, *_FEEDBACK_EMPTY)
        elif isinstance(event, Call):
            call = (event.direction, event.duration_seconds, event.outcome)
            specific = (*_VISIT_EMPTY, *call, *_DEAL_EMPTY, *_FEEDBACK_EMPTY)
        elif isinstance(event, Deal):
            specific = (*_VISIT_EMPTY, *_CALL_EMPTY, *self._deal_columns(event), *_FEEDBACK_EMPTY)
        elif isinstance(event, Feedback):
            feedback = (event.score_type, event.score, event.category or "", event.comment or "")
            specific = (*_VISIT_EMPTY, *_CALL_EMPTY, *_DEAL_EMPTY, *feedback)
        else:  # pragma: no cover - the models are closed
            raise TypeError(f"unknown event {type(event).__name__}")
        return (*common, *specific, *provenance)

    def _deal_columns(self, deal: Deal) -> tuple[Any, ...]:
        currency = deal.currency or self._settings.reporting_currency
        rate = self._settings.rate_for(currency)
        assert rate is not None, "the decoder rejects currencies without a rate"
        return (
            deal.stage,
            EXACT.multiply(deal.amount, rate).quantize(REPORTING_QUANTUM, context=EXACT),
            deal.amount.quantize(ORIGINAL_QUANTUM, context=EXACT),
            currency,
            deal.expected_close_date,
            deal.lost_reason or "",
        )

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
            values: tuple[Any, ...] = (
                record.rep_id,
                record.rep_name,
                record.team_id,
                record.team_name,
                record.manager_id,
                record.region_id,
                record.effective_from,
            )
        elif isinstance(record, TargetRecord):
            values = (
                record.level,
                record.entity_id,
                record.metric,
                record.period,
                record.period_start,
                record.target.quantize(REPORTING_QUANTUM, context=EXACT),
            )
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
