"""Read back everything on some topics of the real broker, up to their end offsets."""

import asyncio
import time
from collections.abc import Iterable
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition


def read_topics(bootstrap: str, topics: Iterable[str], timeout: float = 30.0) -> dict[str, list[Any]]:
    """Every record on each topic (partition by partition, in offset order); [] for a missing topic."""
    return asyncio.run(_read(bootstrap, list(topics), timeout))


async def _read(bootstrap: str, topics: list[str], timeout: float) -> dict[str, list[Any]]:
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=None, auto_offset_reset="earliest", enable_auto_commit=False
    )
    await consumer.start()
    try:
        existing = await consumer.topics()
        partitions = [
            TopicPartition(topic, partition)
            for topic in topics
            if topic in existing
            for partition in sorted(consumer.partitions_for_topic(topic) or ())
        ]
        records: dict[str, list[Any]] = {topic: [] for topic in topics}
        if not partitions:
            return records
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        by_partition: dict[TopicPartition, list[Any]] = {partition: [] for partition in partitions}
        deadline = time.monotonic() + timeout
        while [partition for partition in partitions if await consumer.position(partition) < ends[partition]]:
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out reading {topics} up to {ends}")
            batches = await consumer.getmany(timeout_ms=500)
            for partition, batch in batches.items():
                by_partition[partition].extend(batch)
        for partition in partitions:
            records[partition.topic].extend(by_partition[partition])
        return records
    finally:
        await consumer.stop()
