"""Reference data on compacted topics (contract §3): org history, targets and customers.

Each record has a ``record_key``: the compaction key that keeps its history apart
(``rep_id|effective_from`` for org records, and so on). The pipeline derives the key
from the record itself, so a producer that keys messages differently loses nothing.
"""

from datetime import date
from typing import Annotated, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from salespulse.schemas.fields import (
    WHOLE_NUMBER,
    Amount,
    CalendarDate,
    Identifier,
    ShortText,
    schema_pattern,
)

TIER_FOLLOW_UP_DAYS: dict[str, int] = {"A": 14, "B": 30, "C": 60}


class ReferenceRecord(BaseModel):
    """Base of the three reference record types."""

    model_config = ConfigDict(strict=True, extra="ignore", frozen=True)

    RECORD_TYPE: ClassVar[str]
    KEY_FIELDS: ClassVar[tuple[str, ...]]

    @property
    def record_key(self) -> str:
        return "|".join(_key_part(getattr(self, name)) for name in self.KEY_FIELDS)


def _key_part(value: object) -> str:
    return value.isoformat() if isinstance(value, date) else str(value)


class OrgRecord(ReferenceRecord):
    """Where a rep sits in the hierarchy from effective_from on (rep → team → region)."""

    RECORD_TYPE: ClassVar[str] = "org"
    KEY_FIELDS: ClassVar[tuple[str, ...]] = ("rep_id", "effective_from")

    rep_id: Identifier
    rep_name: ShortText = ""
    team_id: Identifier
    team_name: ShortText = ""
    manager_id: ShortText = Field(default="", description="The team lead or manager the rep reports to.")
    region_id: Identifier
    effective_from: CalendarDate


class TargetRecord(ReferenceRecord):
    """A SMART target: a number to reach for one entity, metric and period."""

    RECORD_TYPE: ClassVar[str] = "targets"
    KEY_FIELDS: ClassVar[tuple[str, ...]] = ("level", "entity_id", "metric", "period", "period_start")
    # The rule of _period_start_opens_the_period, said in the JSON Schema too.
    model_config = ConfigDict(
        json_schema_extra={
            "allOf": [
                {
                    "if": {"properties": {"period": {"const": "month"}}, "required": ["period"]},
                    "then": {
                        "properties": {"period_start": {"pattern": schema_pattern("[0-9]{4}-[0-9]{2}-01")}}
                    },
                },
                {
                    "if": {"properties": {"period": {"const": "quarter"}}, "required": ["period"]},
                    "then": {
                        "properties": {
                            "period_start": {"pattern": schema_pattern("[0-9]{4}-(?:01|04|07|10)-01")}
                        }
                    },
                },
            ]
        }
    )

    level: Literal["rep", "team", "region", "company"]
    entity_id: Identifier
    metric: Literal["won_amount", "deals_won", "visits", "calls", "new_customers"]
    period: Literal["month", "quarter"]
    period_start: CalendarDate
    target: Amount

    @model_validator(mode="after")
    def _period_start_opens_the_period(self) -> "TargetRecord":
        start = self.period_start
        if start.day != 1 or (self.period == "quarter" and start.month not in (1, 4, 7, 10)):
            first = "the first day of a month" if self.period == "month" else "Jan 1, Apr 1, Jul 1 or Oct 1"
            raise ValueError(f"period_start {start.isoformat()} must be {first} for a {self.period} target")
        return self


class CustomerRecord(ReferenceRecord):
    """A customer's tier; tiers set how often the customer must be contacted (定期回访)."""

    RECORD_TYPE: ClassVar[str] = "customers"
    KEY_FIELDS: ClassVar[tuple[str, ...]] = ("customer_id",)

    customer_id: Identifier
    tier: Literal["A", "B", "C"]
    follow_up_days: Annotated[int, Field(ge=1, le=3650), WHOLE_NUMBER] | None = Field(
        default=None, description="Overrides the tier default (A 14, B 30, C 60 days)."
    )


REFERENCE_MODELS: dict[str, type[ReferenceRecord]] = {
    model.RECORD_TYPE: model for model in (OrgRecord, TargetRecord, CustomerRecord)
}
