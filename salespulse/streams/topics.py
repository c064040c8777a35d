"""The Kafka topics of SPEC §3 and what each one carries.

Names come from the configurable prefix (``crm.`` by default). Reference topics are
compacted; the others keep their messages for the broker's retention. The salespulse consumer
groups are configured here too (group_consumer).
"""

from dataclasses import dataclass
from typing import Any, Literal

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition

from salespulse.streams.settings import Settings

TopicKind = Literal["activity", "reference", "dlq", "alerts"]

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

    def for_type(self, type_: str) -> str:
        return self.by_type[type_].name


async def ensure_topics(settings: Settings, timeout_seconds: float = 30.0) -> list[str]:
    """Create every salespulse topic that does not exist yet; returns the names created."""
    import asyncio
    import contextlib

    from aiokafka.admin import AIOKafkaAdminClient, NewTopic
    from aiokafka.errors import TopicAlreadyExistsError

    topics = Topics.from_settings(settings)
    admin = AIOKafkaAdminClient(
        bootstrap_servers=settings.broker, request_timeout_ms=int(timeout_seconds * 1000)
    )
    await asyncio.wait_for(admin.start(), timeout_seconds)
    try:
        existing = set(await admin.list_topics())
        wanted = [
            NewTopic(
                info.name,
                settings.topic_partitions,
                settings.topic_replication,
                topic_configs={"cleanup.policy": "compact"} if info.compacted else {},
            )
            for info in topics.by_name.values()
            if info.name not in existing
        ]
        if not wanted:
            return []
        with contextlib.suppress(TopicAlreadyExistsError):  # another worker created them first
            await admin.create_topics(wanted)
        return [topic.name for topic in wanted]
    finally:
        await admin.close()


def group_consumer(settings: Settings, role: str, *topics: str, **options: Any) -> AIOKafkaConsumer:
    """A consumer in the group ``<app_id>-<role>`` that commits its offsets itself, after its work.

    The session and rebalance timeouts come from the settings (the embedded broker joins groups
    only after the rebalance timeout, so tests and `up` keep it short).
    """
    session_ms = int(settings.broker_session_timeout_seconds * 1000)
    return AIOKafkaConsumer(
        *topics,
        bootstrap_servers=settings.broker,
        group_id=f"{settings.app_id}-{role}",
        client_id=f"{settings.app_id}-{role}",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        session_timeout_ms=session_ms,
        heartbeat_interval_ms=max(100, session_ms // 5),
        rebalance_timeout_ms=int(settings.broker_rebalance_timeout_seconds * 1000),
        **options,
    )


async def read_to_end(
    consumer: AIOKafkaConsumer, partitions: list[TopicPartition], quiet_ms: int = 500
) -> list[ConsumerRecord[bytes, bytes]]:
    """Every record from the current positions to the end of ``partitions`` (assigned already).

    The reported end offsets are not trusted alone: the embedded broker reports the end of a
    partition as the first offset of its last batch plus one. So reading goes on past them until
    a poll stays empty for ``quiet_ms``.
    """
    ends = await consumer.end_offsets(partitions)
    records: list[ConsumerRecord[bytes, bytes]] = []
    while True:
        behind = [tp for tp in partitions if await consumer.position(tp) < ends[tp]]
        batch = await consumer.getmany(*partitions, timeout_ms=2000 if behind else quiet_ms, max_records=5000)
        for messages in batch.values():
            records.extend(messages)
        if not batch and not behind:
            return records
