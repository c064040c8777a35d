"""Stall alerts (contract §6): one message per transition of an alert, on the ``crm.alerts`` topic.

An alert covers one *episode* of one rule on one deal: it is ``opened`` when the rule starts to
hold, ``escalated`` when it turns critical, ``resolved`` when an activity, a stage change, a
close or the rule no longer holding ends it. Times are event times (when the threshold was
crossed, when the resolving event occurred), so a replay produces the same alerts.
"""

from datetime import datetime
from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

StallReason = Literal["idle", "stuck", "overdue"]
Severity = Literal["warning", "critical"]
AlertState = Literal["opened", "escalated", "resolved"]
Resolution = Literal["activity", "stage_change", "won", "lost", "rule_cleared"]


class StallAlert(BaseModel):
    """One transition of a stall alert."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    alert_id: str = Field(description="Identifies the episode: stable across replays and restarts.")
    transition_id: str = Field(description="alert_id and state: each transition is notified at most once.")
    deal_id: str
    reason: StallReason
    state: AlertState
    severity: Severity = Field(description="Severity after this transition.")
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
