"""Stall alerts (contract §6): one message per transition of an alert, on the ``crm.alerts`` topic.

An alert covers one *episode* of one rule on one deal: it is ``opened`` when the rule starts to
hold, ``escalated`` when it turns critical, ``resolved`` when an activity, a stage change, a
close or the rule no longer holding ends it. Times are event times (when the threshold was
crossed, when the resolving event occurred), so a replay produces the same alerts.

Events can arrive late (a backfill, a topic read behind the others). When late data shows that
an escalated episode is not critical after all, the alert is ``deescalated`` (back to warning);
when it shows that the episode as alerted never held, the alert is resolved with
``resolved_by = "late_data"``. ``sequence`` numbers an alert's transitions in the order they
were published, so the latest state of an alert is its transition with the highest sequence.
"""

from datetime import datetime
from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

StallReason = Literal["idle", "stuck", "overdue"]
Severity = Literal["warning", "critical"]
AlertState = Literal["opened", "escalated", "deescalated", "resolved"]
Resolution = Literal["activity", "stage_change", "won", "lost", "rule_cleared", "late_data"]


class StallAlert(BaseModel):
    """One transition of a stall alert."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    alert_id: str = Field(description="Identifies the episode: stable across replays and restarts.")
    transition_id: str = Field(
        description="alert_id and state (and the sequence when a state repeats): each transition is "
        "notified at most once."
    )
    sequence: int = Field(
        default=1,
        ge=1,
        description="Position of this transition in its alert (1 = opened): the highest is the latest state.",
    )
    deal_id: str
    reason: StallReason
    state: AlertState
    severity: Severity = Field(description="Severity after this transition.")
    previous_severity: Severity | None = Field(
        default=None, description="Severity before this transition (null for opened)."
    )
    at: datetime = Field(description="When the transition happened (event time).")
    stalled_since: datetime = Field(description="When the rule started to hold.")
    threshold_days: int = Field(description="The rule's threshold for the deal's stage (overdue: 0).")
    resolved_by: Resolution | None = None
    rep_id: str
    team_id: str
    region_id: str
    customer_id: str
    stage: str
    amount: Decimal = Field(description="Current amount in the reporting currency.")
    currency: str
    detected_at: datetime = Field(description="When the pipeline emitted the transition (wall clock).")
