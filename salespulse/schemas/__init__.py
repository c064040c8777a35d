"""Pydantic models of every event and reference record of contract §3, and their JSON Schema export."""

from salespulse.schemas.events import (
    ACTIVITY_MODELS,
    ActivityEvent,
    Call,
    Deal,
    Feedback,
    Visit,
)
from salespulse.schemas.reference import (
    REFERENCE_MODELS,
    CustomerRecord,
    OrgRecord,
    ReferenceRecord,
    TargetRecord,
)

__all__ = [
    "ACTIVITY_MODELS",
    "REFERENCE_MODELS",
    "ActivityEvent",
    "Call",
    "CustomerRecord",
    "Deal",
    "Feedback",
    "OrgRecord",
    "ReferenceRecord",
    "TargetRecord",
    "Visit",
]
