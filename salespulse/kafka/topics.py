"""The Kafka topics of contract §3 and what each one carries.

Names come from the configurable prefix (``crm.`` by default). Reference topics are
compacted; the others keep their messages for the broker's retention.
"""

from dataclasses import dataclass
from typing import Literal

from salespulse.config import Settings

TopicKind = Literal["activity", "reference", "dlq", "alerts", "internal"]

# Topic suffix → (kind, the event or record type it carries).
TOPIC_LAYOUT: dict[str, tuple[TopicKind, str]] = {
    "visits": ("activity", "visit"),
    "calls": ("activity", "call"),
    "deals": ("activity", "deal"),
    "feedback": ("activity", "feedback"),
    "org": ("reference", "org"),
    "targets": ("reference", "targets"),
    "customers": ("reference", "customers"),
    "dlq": ("dlq", "dlq"),
    "alerts": ("alerts", "alerts"),
    # The CRM adapters' partial changes (issue 14), read by the worker's assembly agent only.
    "changes": ("internal", "changes"),
}


@dataclass(frozen=True)
class TopicInfo:
    name: str
    kind: TopicKind
    type: str

    @property
    def compacted(self) -> bool:
        return self.kind == "reference"


class Topics:
    """Topic names for one prefix, looked up by suffix, by type or by name."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.by_name = {
            f"{prefix}{suffix}": TopicInfo(f"{prefix}{suffix}", kind, type_)
            for suffix, (kind, type_) in TOPIC_LAYOUT.items()
        }
        self.by_type = {info.type: info for info in self.by_name.values()}

    @classmethod
    def from_settings(cls, settings: Settings) -> "Topics":
        return cls(settings.topic_prefix)

    @property
    def inputs(self) -> list[TopicInfo]:
        """Topics the ingest service consumes: the four activity topics and the reference topics."""
        return [info for info in self.by_name.values() if info.kind in ("activity", "reference")]

    @property
    def dlq(self) -> str:
        return f"{self.prefix}dlq"

    @property
    def alerts(self) -> str:
        return f"{self.prefix}alerts"

    @property
    def changes(self) -> str:
        """The internal topic of partial CRM changes (gateway adapters → assembly agent)."""
        return f"{self.prefix}changes"

    def for_type(self, type_: str) -> str:
        return self.by_type[type_].name
