"""How far a consumer group is behind: its committed offsets against the true end of each partition.

The true end is not the end the embedded broker reports (it reports the first offset of a
partition's last batch plus one, see :func:`consumers.read_to_end`): it is found by reading
that last batch, which costs one small fetch per partition, not a read of the partition.
"""

from aiokafka import AIOKafkaConsumer, TopicPartition

from salespulse.kafka.consumers import read_to_end


async def true_end_offsets(bootstrap: str, partitions: list[TopicPartition]) -> dict[TopicPartition, int]:
    """The offset after the last record of each partition, read rather than trusted."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False)
    await consumer.start()
    try:
        consumer.assign(partitions)
        reported = await consumer.end_offsets(partitions)
        for partition in partitions:
            # The last batch starts at or before reported - 1: read from there on.
            consumer.seek(partition, max(0, reported[partition] - 1))
        ends = dict(reported)
        for record in await read_to_end(consumer, partitions, quiet_ms=300):
            partition = TopicPartition(record.topic, record.partition)
            ends[partition] = max(ends[partition], record.offset + 1)
        return ends
    finally:
        await consumer.stop()


async def group_lag(bootstrap: str, group: str, topics: list[str]) -> dict[TopicPartition, int]:
    """Messages on ``topics`` that ``group`` has not committed yet, per partition (0: caught up)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
    await consumer.start()  # never subscribes: it only reads the group's committed offsets
    try:
        existing = await consumer.topics()
        partitions = [
            TopicPartition(topic, partition)
            for topic in topics
            if topic in existing
            for partition in sorted(consumer.partitions_for_topic(topic) or ())
        ]
        if not partitions:
            return {}
        committed = {partition: await consumer.committed(partition) or 0 for partition in partitions}
    finally:
        await consumer.stop()
    ends = await true_end_offsets(bootstrap, partitions)
    return {partition: max(0, ends[partition] - committed[partition]) for partition in partitions}
