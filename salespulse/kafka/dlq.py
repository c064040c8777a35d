"""`salespulse dlq list` and `salespulse dlq replay`: the dead-letter workflow.

The DLQ topic holds every rejected message with its reason and original bytes (``schemas.dead_letters``).
After the cause is fixed — a currency rate added, a CRM bug fixed upstream — `replay` sends the
original bytes back to their source topics with their original keys. The worker then judges
them again: accepted ones are written once (an event_id already accepted is a duplicate, so a
replay repeated by accident changes nothing), and ones that still fail go back to the DLQ as new
records with their (possibly new) reason.

What has been replayed is remembered as committed offsets of the consumer group
``<app_id>-dlq-replay`` on the DLQ topic, committed only after the broker acknowledged every
replayed message. `list` shows the records after that point (the ones still waiting), or
everything with ``--all``.
"""

import asyncio
import base64
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.structs import OffsetAndMetadata

from salespulse.config import Settings
from salespulse.kafka.consumers import read_to_end
from salespulse.kafka.topics import Topics


@dataclass(frozen=True)
class DeadLetter:
    """One DLQ record and where it sits on the DLQ topic."""

    partition: int
    offset: int
    body: dict[str, Any]

    @property
    def reason(self) -> str:
        return str(self.body.get("reason", "unreadable"))

    @property
    def source_topic(self) -> str:
        return str(self.body.get("source_topic", ""))

    @property
    def origin(self) -> str:
        """Where the rejected message came from: its topic, or the gateway endpoint of a webhook item."""
        return self.source_topic or str(self.body.get("source_endpoint", ""))

    @property
    def payload(self) -> bytes | None:
        encoded = self.body.get("payload_base64")
        return None if encoded is None else base64.b64decode(encoded)


@dataclass
class ReasonSummary:
    reason: str
    source_topic: str
    count: int
    sample_message: str
    sample_payload: str


@dataclass
class ReplayReport:
    replayed: Counter[str] = field(default_factory=Counter)  # by reason
    not_replayable: list[DeadLetter] = field(default_factory=list)  # payload too large to copy

    @property
    def total(self) -> int:
        return sum(self.replayed.values())


def _group(settings: Settings) -> str:
    return f"{settings.app_id}-dlq-replay"


async def _with_consumer(
    settings: Settings, work: Callable[[AIOKafkaConsumer, list[TopicPartition]], Awaitable[Any]]
) -> Any:
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.broker,
        group_id=_group(settings),
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        request_timeout_ms=15_000,
    )
    await consumer.start()
    try:
        topic = Topics.from_settings(settings).dlq
        partitions = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
        if not partitions:
            await consumer.force_metadata_update()
            partitions = [
                TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())
            ]
        if not partitions:
            raise LookupError(f"the DLQ topic {topic} does not exist on {settings.broker}")
        consumer.assign(partitions)
        return await work(consumer, partitions)
    finally:
        await consumer.stop()


async def _read(
    consumer: AIOKafkaConsumer, partitions: list[TopicPartition], everything: bool
) -> tuple[list[DeadLetter], dict[TopicPartition, int]]:
    """The DLQ records from the replay point (or the beginning) to the end, and where reading ended."""
    for tp in partitions:
        committed = None if everything else await consumer.committed(tp)
        if committed is None:
            await consumer.seek_to_beginning(tp)
        else:
            consumer.seek(tp, committed)
    letters: list[DeadLetter] = []
    for message in await read_to_end(consumer, partitions):
        try:
            body = orjson.loads(message.value or b"{}")
        except orjson.JSONDecodeError:
            body = {"reason": "unreadable", "message": "the DLQ record is not JSON"}
        letters.append(DeadLetter(message.partition, message.offset, body if isinstance(body, dict) else {}))
    return letters, {tp: await consumer.position(tp) for tp in partitions}


def read_dead_letters(settings: Settings, everything: bool = False) -> list[DeadLetter]:
    """DLQ records not replayed yet (or all of them)."""

    async def work(consumer: AIOKafkaConsumer, partitions: list[TopicPartition]) -> list[DeadLetter]:
        letters, _ = await _read(consumer, partitions, everything)
        return letters

    result: list[DeadLetter] = asyncio.run(_with_consumer(settings, work))
    return result


def summarize(letters: list[DeadLetter]) -> list[ReasonSummary]:
    """Counts by reason and source topic, most frequent first, with the first record as a sample."""
    groups: dict[tuple[str, str], list[DeadLetter]] = {}
    for letter in letters:
        groups.setdefault((letter.reason, letter.origin), []).append(letter)
    summaries = []
    for (reason, topic), members in groups.items():
        sample = members[0].body
        payload = sample.get("payload_text") or ("<binary>" if sample.get("payload_base64") else "<omitted>")
        summaries.append(
            ReasonSummary(reason, topic, len(members), str(sample.get("message", "")), payload[:200])
        )
    return sorted(summaries, key=lambda s: (-s.count, s.reason, s.source_topic))


def replay(settings: Settings, reasons: set[str] | None = None) -> ReplayReport:
    """Send every waiting DLQ record (of ``reasons``, or all) back to its source topic."""

    async def work(consumer: AIOKafkaConsumer, partitions: list[TopicPartition]) -> ReplayReport:
        letters, ends = await _read(consumer, partitions, everything=False)
        report = ReplayReport()
        producer = AIOKafkaProducer(bootstrap_servers=settings.broker, acks="all", enable_idempotence=False)
        await producer.start()
        try:
            pending = []
            commit_to = dict(ends)
            by_number = {tp.partition: tp for tp in partitions}
            for letter in letters:
                if reasons and letter.reason not in reasons:
                    # Left for a later replay: the replay point may not move past it.
                    tp = by_number[letter.partition]
                    commit_to[tp] = min(commit_to[tp], letter.offset)
                    continue
                payload = letter.payload
                if payload is None or not letter.source_topic:
                    report.not_replayable.append(letter)
                    continue
                key = letter.body.get("source_key")
                pending.append(
                    await producer.send(letter.source_topic, payload, key=key.encode() if key else None)
                )
                report.replayed[letter.reason] += 1
            await producer.flush()
            await asyncio.gather(*pending)  # every replayed message acknowledged...
        finally:
            await producer.stop()
        # ...before the replay point moves past them (records too large to have been copied into
        # the DLQ cannot be replayed from it: they are reported, and the point moves on).
        await consumer.commit({tp: OffsetAndMetadata(offset, "") for tp, offset in commit_to.items()})
        return report

    result: ReplayReport = asyncio.run(_with_consumer(settings, work))
    return result
