"""The four activity events CRMs publish (contract §3): visit, call, deal and feedback.

Models are strict (a number where a string is expected is an error, not a guess) and
tolerant (unknown fields are ignored so CRMs can add fields freely). Amounts are the
one exception to strictness: money arrives as JSON numbers or decimal strings.
"""

from typing import Annotated, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic_core import PydanticCustomError

from salespulse.schemas.fields import (
    WHOLE_NUMBER,
    Amount,
    CalendarDate,
    CurrencyCode,
    EventId,
    Identifier,
    LongText,
    ShortText,
    Timestamp,
)

EventType = Literal["visit", "call", "deal", "feedback"]

# The funnel, in order (contract §3). won and lost close a deal; the others are open stages.
FUNNEL_STAGES: tuple[str, ...] = ("prospecting", "qualified", "proposal", "negotiation", "won", "lost")
OPEN_STAGES: tuple[str, ...] = FUNNEL_STAGES[:4]
Stage = Literal["prospecting", "qualified", "proposal", "negotiation", "won", "lost"]


class ActivityEvent(BaseModel):
    """Fields every activity event carries."""

    model_config = ConfigDict(strict=True, extra="ignore", frozen=True)

    EVENT_TYPE: ClassVar[str]

    event_id: EventId = Field(description="Unique per event; a redelivery of the same id changes nothing.")
    occurred_at: Timestamp = Field(description="When it happened: RFC 3339 with a UTC offset.")
    rep_id: Identifier = Field(description="The rep who owns the activity.")
    customer_id: Identifier
    deal_id: Identifier | None = Field(default=None, description="Links the activity to an opportunity.")
    source: ShortText | None = Field(default=None, description="The CRM's name.")
    schema_version: Annotated[int, Field(ge=1, le=65535), WHOLE_NUMBER] = 1  # stored as UInt16
    event_type: str | None = Field(
        default=None, description="Optional; when present it must name the topic's event type."
    )

    @model_validator(mode="after")
    def _event_type_matches_topic(self) -> "ActivityEvent":
        if self.event_type is not None and self.event_type != self.EVENT_TYPE:
            raise PydanticCustomError(
                "event_type_mismatch",
                "event_type '{got}' does not match this topic, which carries '{expected}' events",
                {"got": self.event_type, "expected": self.EVENT_TYPE},
            )
        return self


class Visit(ActivityEvent):
    """A customer visit (上门拜访 / 定期回访)."""

    EVENT_TYPE: ClassVar[str] = "visit"

    duration_minutes: Annotated[int, Field(ge=0, le=100_000), WHOLE_NUMBER]
    outcome: Literal["completed", "cancelled", "no_show"]


class Call(ActivityEvent):
    """A phone call with a customer."""

    EVENT_TYPE: ClassVar[str] = "call"

    direction: Literal["outbound", "inbound"]
    duration_seconds: Annotated[int, Field(ge=0, le=10_000_000), WHOLE_NUMBER]
    outcome: Literal["connected", "no_answer", "busy", "voicemail"]


class Deal(ActivityEvent):
    """A deal's full state as of occurred_at (a CRM change event); its owner is rep_id."""

    EVENT_TYPE: ClassVar[str] = "deal"

    deal_id: Identifier = Field(description="Required on deal events.")
    stage: Stage
    amount: Amount
    currency: CurrencyCode | None = Field(default=None, description="Defaults to the reporting currency.")
    expected_close_date: CalendarDate | None = None
    lost_reason: ShortText | None = None


class Feedback(ActivityEvent):
    """A satisfaction survey answer or a piece of customer feedback."""

    EVENT_TYPE: ClassVar[str] = "feedback"
    # The scale depends on score_type: said in the JSON Schema too, so integrators catch it early.
    model_config = ConfigDict(
        json_schema_extra={
            "allOf": [
                {
                    "if": {"properties": {"score_type": {"const": "csat"}}},
                    "then": {"properties": {"score": {"minimum": 1, "maximum": 5}}},
                }
            ]
        }
    )

    score_type: Literal["csat", "nps"]
    score: Annotated[int, Field(ge=0, le=10), WHOLE_NUMBER]
    category: Literal["praise", "complaint", "suggestion"] | None = None
    comment: LongText | None = None

    @model_validator(mode="after")
    def _score_in_scale(self) -> "Feedback":
        low, high = (1, 5) if self.score_type == "csat" else (0, 10)
        if not low <= self.score <= high:
            raise ValueError(f"score {self.score} is outside the {self.score_type} scale {low}–{high}")
        return self


ACTIVITY_MODELS: dict[str, type[ActivityEvent]] = {
    model.EVENT_TYPE: model for model in (Visit, Call, Deal, Feedback)
}
