"""Creating the salespulse topics on a broker (reference topics compacted)."""

import asyncio
import contextlib

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from salespulse.config import Settings
from salespulse.kafka.topics import Topics


async def ensure_topics(settings: Settings, timeout_seconds: float = 30.0) -> list[str]:
    """Create every salespulse topic that does not exist yet; returns the names created."""
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
