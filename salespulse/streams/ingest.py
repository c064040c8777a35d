"""The ingest service: input topics → validated batches → ClickHouse, effectively once.

Why a batch consumer and not one Faust agent per topic: Faust's per-event machinery tops out
near 10,000 events/s on a 2-core machine, while contract §7 asks batch work to run close to
what the machine allows. So this service, which runs inside the Faust worker, reads every
input topic with one aiokafka consumer in batches, and for each flushed batch:

1. decodes and validates every message (``decoding``) into rows or rejections;
2. publishes the rejections to the DLQ and waits for the broker to acknowledge them;
3. writes the rows to ClickHouse (``sinks.clickhouse``), retrying with back-off for as long
   as ClickHouse is unavailable, with the partitions paused;
4. only then commits the batch's offsets.

A crash anywhere before step 4 replays the batch: the sink recognises the events it already
holds as duplicates, and the views collapse any copy a race let through, so results are the
same as if the batch had been processed once.
"""

import asyncio
import logging
import random
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import CommitFailedError, KafkaError
from aiokafka.structs import ConsumerRecord
from clickhouse_connect.driver.exceptions import DatabaseError, OperationalError
from mode import Service

from salespulse.config import Settings
from salespulse.kafka.admin import ensure_topics
from salespulse.kafka.consumers import group_consumer
from salespulse.kafka.topics import Topics
from salespulse.schemas.dead_letters import RejectedMessage, dlq_value
from salespulse.schemas.decoding import Decoder, Rejection
from salespulse.schemas.events import ActivityEvent
from salespulse.sinks.clickhouse.rows import BatchStamp, RowBuilder, SourcePosition
from salespulse.sinks.clickhouse.sink import ClickHouseSink, SinkBatch, WriteOutcome
from salespulse.streams.faults import Faults
from salespulse.streams.health import Health
from salespulse.streams.metrics import Metrics

log = logging.getLogger(__name__)

RETRY_FIRST_SECONDS = 0.5


class MigrationFailed(RuntimeError):
    """ClickHouse rejected a migration or view definition: a bug or an incompatible server."""


RETRY_MAX_SECONDS = 30.0
# An offset commit takes a few milliseconds on a local broker: an injected kill "during_commit"
# (the reliability suite) fires within this window, so most land while the commit is in flight.
COMMIT_KILL_WINDOW_SECONDS = 0.002


@dataclass
class PendingBatch:
    """Messages read since the last flush, decoded, with the offsets that cover them."""

    stamp: BatchStamp = field(default_factory=lambda: BatchStamp.at(datetime.now(UTC)))
    rows: SinkBatch = field(default_factory=SinkBatch)
    rejected: list[RejectedMessage] = field(default_factory=list)
    consumed: Counter[str] = field(default_factory=Counter)
    next_offsets: dict[TopicPartition, int] = field(default_factory=dict)
    message_timestamps_ms: list[int] = field(default_factory=list)
    started: float = field(default_factory=time.monotonic)
    messages: int = 0

    def __bool__(self) -> bool:
        return self.messages > 0


class _Rebalance(ConsumerRebalanceListener):
    """Flush what was read from partitions before they go to another worker."""

    def __init__(self, service: "IngestService") -> None:
        self._service = service

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        self._service.drop_unwritten()

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        self._service.health.assigned_partitions = len(assigned)
        log.info("ingest: assigned %d partitions", len(assigned))


class IngestService(Service):
    """Consumes the input topics in batches and writes them to ClickHouse."""

    def __init__(self, settings: Settings, metrics: Metrics, health: Health, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.settings = settings
        self.metrics = metrics
        self.health = health
        self.topics = Topics.from_settings(settings)
        self.decoder = Decoder(settings)
        self.rows = RowBuilder(settings)
        self.faults = Faults(settings.faults)
        self.sink: ClickHouseSink | None = None
        self.consumer: AIOKafkaConsumer | None = None
        self.producer: AIOKafkaProducer | None = None
        self._pending = PendingBatch()
        # Batches decoded and waiting to be written, one at a time and in order, by _write_batches:
        # the next batch is read and decoded while the previous one is being written.
        self._ready: asyncio.Queue[PendingBatch] = asyncio.Queue(maxsize=1)
        self._written = asyncio.Event()  # set each time the writer finishes a batch
        self.catching_up = False  # the last batch was full: more is waiting on the broker
        self.sink_ready = asyncio.Event()  # ClickHouse is migrated: others may query it
        self.flush_listeners: list[Callable[[], None]] = []  # told after each flush that wrote events

    async def on_start(self) -> None:
        self.sink = await self._open_sink()
        self.sink_ready.set()
        await self._retry("create topics", lambda: ensure_topics(self.settings))
        self.producer = AIOKafkaProducer(
            bootstrap_servers=self.settings.broker,
            client_id=f"{self.settings.app_id}-dlq",
            acks="all",
            linger_ms=5,
            max_request_size=4 * 1024 * 1024,
        )
        await self._retry("start the DLQ producer", self.producer.start)
        self.consumer = group_consumer(
            self.settings,
            "ingest",
            # A broker may hold a fetch for this long even when data is waiting (the embedded one
            # does): it bounds what a fetch adds to freshness. Idle, it costs 10 small requests/s.
            fetch_max_wait_ms=100,
            max_poll_interval_ms=600_000,
            max_partition_fetch_bytes=8 * 1024 * 1024,
            fetch_max_bytes=64 * 1024 * 1024,
        )
        self.consumer.subscribe(topics=[info.name for info in self.topics.inputs], listener=_Rebalance(self))
        await self._retry("start the consumer", self.consumer.start)
        self.metrics.clickhouse_up.set(1)
        self.health.started = True

    async def on_stop(self) -> None:
        # Write what was read before leaving: nothing accepted is lost on a clean stop.
        if self.consumer is not None:
            try:
                await self.flush()
            finally:
                await self.consumer.stop()
        if self.producer is not None:
            await self.producer.stop()
        if self.sink is not None:
            await asyncio.to_thread(self.sink.close)

    @Service.task
    async def _consume(self) -> None:
        consumer = self.consumer
        assert consumer is not None
        max_batch = self.settings.max_batch_events
        interval = self.settings.flush_interval_seconds
        while not self.should_stop:
            if self._ready.full():
                # A batch is being written and the next one is ready: wait for the writer, which
                # signals each batch it finishes. During a long ClickHouse outage, keep polling
                # (with every partition paused) so the group does not take the consumer for dead.
                try:
                    await asyncio.wait_for(self._written.wait(), timeout=1.0)
                except TimeoutError:
                    consumer.pause(*consumer.assignment())
                    await consumer.getmany(timeout_ms=0)
                    consumer.resume(*consumer.assignment())
                self._written.clear()
                continue
            pending = self._pending
            wait = interval if not pending else max(0.0, pending.started + interval - time.monotonic())
            try:
                records = await consumer.getmany(
                    timeout_ms=int(min(wait, 0.5) * 1000), max_records=max(1, max_batch - pending.messages)
                )
            except KafkaError as error:
                log.warning("ingest: fetch failed (%s); retrying", error)
                await self.sleep(1.0)
                continue
            if records:
                started = time.perf_counter()
                for partition, messages in records.items():
                    self._decode(partition, messages, self._pending)
                self.metrics.processing_seconds.observe(time.perf_counter() - started)
            pending = self._pending
            full = pending.messages >= max_batch
            if (
                pending
                and (full or time.monotonic() - pending.started >= interval)
                and not self._ready.full()
            ):
                self.catching_up = full
                self._ready.put_nowait(pending)
                self._pending = PendingBatch()

    def _decode(
        self, partition: TopicPartition, messages: list[ConsumerRecord], pending: PendingBatch
    ) -> None:
        if not pending:
            pending.started = time.monotonic()
            pending.stamp = BatchStamp.at(datetime.now(UTC))
            pending.rows.ingested_at = pending.stamp.ingested_at
        info = self.topics.by_name[partition.topic]
        stamp = pending.stamp
        for message in messages:
            position = SourcePosition(partition.topic, partition.partition, message.offset)
            decoded: Any
            if info.kind == "activity":
                decoded = self.decoder.decode_event(info.type, message.value)
            else:
                decoded = self.decoder.decode_reference(info.type, message.key, message.value)
            if isinstance(decoded, Rejection):
                where = (partition.topic, partition.partition, message.offset)
                rejected = RejectedMessage(
                    info.type, *where, message.key, message.value, message.timestamp, decoded
                )
                pending.rejected.append(rejected)
            elif isinstance(decoded, ActivityEvent):
                pending.rows.events.append(self.rows.event_row(decoded, position, stamp))
            else:
                pending.rows.references.setdefault(info.type, []).append(
                    self.rows.reference_row(decoded, position, stamp.ingested_at)
                )
            pending.consumed[info.type] += 1
            pending.message_timestamps_ms.append(message.timestamp)
        pending.messages += len(messages)
        pending.next_offsets[partition] = messages[-1].offset + 1

    @Service.task
    async def _write_batches(self) -> None:
        while True:
            batch = await self._ready.get()
            try:
                await self._write_batch(batch)
            finally:
                self._ready.task_done()
                self._written.set()

    async def flush(self) -> None:
        """Write everything read so far (DLQ, ClickHouse) and commit its offsets; returns when done."""
        if self._pending:
            await self._ready.put(self._pending)
            self._pending = PendingBatch()
        await self._ready.join()

    def drop_unwritten(self) -> None:
        """Partitions are being revoked: forget what was read but not yet handed to the writer.

        Its offsets were not committed, so whoever gets the partitions reads it again; the batch
        being written, if any, completes (its rows are then duplicates to the next owner).
        """
        self._pending = PendingBatch()
        while not self._ready.empty():
            self._ready.get_nowait()
            self._ready.task_done()

    async def _write_batch(self, pending: PendingBatch) -> None:
        await self._publish_rejections(pending.rejected)
        self.faults.point("before_write")
        with self.faults.around("during_write"):
            outcome = await self._write(pending.rows)
        written_at = time.time()
        self.faults.point("after_write")
        with self.faults.around("during_commit", within_seconds=COMMIT_KILL_WINDOW_SECONDS):
            await self._commit(pending.next_offsets)
        self.faults.point("after_commit")
        self._record(pending, outcome, written_at)
        if pending.rows:
            for listener in self.flush_listeners:
                listener()

    def owned_deal_partitions(self) -> set[int]:
        """Partitions of the deals topic assigned to this worker (the deals it watches for stalls)."""
        if self.consumer is None:
            return set()
        deals = self.topics.for_type("deal")
        return {partition.partition for partition in self.consumer.assignment() if partition.topic == deals}

    async def _publish_rejections(self, rejected: list[RejectedMessage]) -> None:
        if not rejected:
            return
        assert self.producer is not None
        producer = self.producer

        async def send_all() -> None:
            futures = [
                await producer.send(
                    self.topics.dlq, dlq_value(message, self.settings.app_id), key=message.dlq_key
                )
                for message in rejected
            ]
            await asyncio.gather(*futures)

        await self._retry("publish rejected messages to the DLQ", send_all)

    async def _write(self, rows: SinkBatch) -> WriteOutcome:
        sink = self.sink
        assert sink is not None
        delay = RETRY_FIRST_SECONDS
        while True:
            started = time.perf_counter()
            try:
                self.faults.check_write()  # an injected outage fails like ClickHouse would
                outcome = await asyncio.to_thread(sink.write, rows)
            except Exception as error:  # any failure of the store: retry, never skip the batch
                self.metrics.sink_errors.labels(error=type(error).__name__).inc()
                self.metrics.clickhouse_up.set(0)
                self.health.record_sink_error(error)
                log.warning(
                    "ingest: ClickHouse write failed (%s: %s); retrying in %.1fs",
                    type(error).__name__,
                    str(error)[:300],
                    delay,
                )
                await asyncio.sleep(delay)  # the consume loop pauses fetching meanwhile
                delay = min(RETRY_MAX_SECONDS, delay * 2) * random.uniform(0.8, 1.2)
                continue
            self.metrics.sink_write_seconds.observe(time.perf_counter() - started)
            self.metrics.clickhouse_up.set(1)
            self.health.record_sink_ok()
            return outcome

    async def _commit(self, offsets: dict[TopicPartition, int]) -> None:
        consumer = self.consumer
        assert consumer is not None
        owned = consumer.assignment()
        mine = {partition: offset for partition, offset in offsets.items() if partition in owned}
        if not mine:
            return
        try:
            await consumer.commit(mine)
        except (CommitFailedError, KafkaError) as error:
            # The partitions moved during a rebalance: their next owner re-reads this batch
            # and finds its events already written (duplicates), so nothing is counted twice.
            log.warning("ingest: offset commit failed (%s); the next owner will re-read", error)

    def _record(self, pending: PendingBatch, outcome: WriteOutcome, written_at: float) -> None:
        metrics = self.metrics
        for type_, count in pending.consumed.items():
            metrics.consumed.labels(type=type_).inc(count)
        for type_, count in outcome.accepted.items():
            metrics.accepted.labels(type=type_).inc(count)
        for type_, count in outcome.duplicates.items():
            metrics.duplicates.labels(type=type_).inc(count)
        for message in pending.rejected:
            metrics.rejected.labels(type=message.record_type, reason=message.rejection.reason).inc()
        metrics.observe_delays(written_at, pending.message_timestamps_ms)
        metrics.batch_events.observe(pending.messages)
        metrics.last_flush.set(written_at)
        self.health.last_flush_at = written_at
        consumer = self.consumer
        if consumer is not None:
            for partition in consumer.assignment():
                highwater = consumer.highwater(partition)
                next_offset = pending.next_offsets.get(partition)
                if highwater is not None and next_offset is not None:
                    metrics.consumer_lag.labels(
                        topic=partition.topic, partition=str(partition.partition)
                    ).set(max(0, highwater - next_offset))

    async def _open_sink(self) -> ClickHouseSink:
        async def open_sink() -> ClickHouseSink:
            try:
                return await asyncio.to_thread(ClickHouseSink.open, self.settings)
            except DatabaseError as error:
                if isinstance(error, OperationalError):
                    raise  # ClickHouse unreachable: worth retrying
                # ClickHouse answered and refused a migration: retrying cannot help.
                log.critical("ingest: ClickHouse refused the schema migration: %s", error)
                raise MigrationFailed(str(error)) from error

        return await self._retry("open ClickHouse", open_sink, sink=True)

    async def _retry(self, what: str, action: Any, sink: bool = False) -> Any:
        """Run ``action`` until it succeeds, backing off between attempts."""
        delay = RETRY_FIRST_SECONDS
        while True:
            try:
                return await action()
            except Exception as error:
                if self.should_stop or isinstance(error, MigrationFailed):
                    raise
                log.warning(
                    "ingest: could not %s (%s: %s); retrying in %.1fs",
                    what,
                    type(error).__name__,
                    str(error)[:300],
                    delay,
                )
                if sink:
                    self.health.record_sink_error(error)
                await asyncio.sleep(delay)
                delay = min(RETRY_MAX_SECONDS, delay * 2)
