"""Consuming salespulse topics: the consumer groups, and reading a topic to its true end.

Every salespulse consumer group commits its offsets itself, after its work is done
(:func:`group_consumer`). :func:`read_to_end` is the one way salespulse reads "everything on a
topic" (the DLQ, the alerts topic, tests): the embedded broker under-reports where a partition
ends, so the reported end offsets are never trusted alone.
"""

import time
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition

from salespulse.config import Settings


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
    consumer: AIOKafkaConsumer,
    partitions: list[TopicPartition],
    quiet_ms: int = 500,
    max_seconds: float | None = None,
) -> list[ConsumerRecord[bytes, bytes]]:
    """Every record from the current positions to the end of ``partitions`` (assigned already).

    The reported end offsets are not trusted alone: the embedded broker reports the end of a
    partition as the first offset of its last batch plus one. So reading goes on past them until
    a poll stays empty for ``quiet_ms``. A partition that a producer keeps writing is never
    quiet: ``max_seconds`` bounds the read for those, returning what was read by then.
    """
    ends = await consumer.end_offsets(partitions)
    records: list[ConsumerRecord[bytes, bytes]] = []
    give_up_at = None if max_seconds is None else time.monotonic() + max_seconds
    while give_up_at is None or time.monotonic() < give_up_at:
        behind = [tp for tp in partitions if await consumer.position(tp) < ends[tp]]
        batch = await consumer.getmany(*partitions, timeout_ms=2000 if behind else quiet_ms, max_records=5000)
        for messages in batch.values():
            records.extend(messages)
        if not batch and not behind:
            return records
    return records


async def existing_partitions(consumer: AIOKafkaConsumer, topics: list[str]) -> list[TopicPartition]:
    """The partitions of those ``topics`` that exist, in topic and partition order."""
    existing = await consumer.topics()
    return [
        TopicPartition(topic, partition)
        for topic in topics
        if topic in existing
        for partition in sorted(consumer.partitions_for_topic(topic) or ())
    ]


async def read_topics(
    bootstrap: str, topics: list[str], quiet_ms: int = 500, max_seconds: float | None = None
) -> dict[str, list[ConsumerRecord[bytes, bytes]]]:
    """Every record on each topic from its beginning, partition by partition in offset order.

    A topic that does not exist reads as empty. Uses no consumer group: nothing is committed.
    ``max_seconds`` bounds the read of topics still being written (see :func:`read_to_end`).
    """
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False)
    await consumer.start()
    try:
        partitions = await existing_partitions(consumer, topics)
        records: dict[str, list[ConsumerRecord[bytes, bytes]]] = {topic: [] for topic in topics}
        if not partitions:
            return records
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        by_partition: dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]] = {tp: [] for tp in partitions}
        for record in await read_to_end(consumer, partitions, quiet_ms, max_seconds):
            by_partition[TopicPartition(record.topic, record.partition)].append(record)
        for partition in partitions:
            records[partition.topic].extend(by_partition[partition])
        return records
    finally:
        await consumer.stop()
