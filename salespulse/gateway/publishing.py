"""The gateway's producer: aiokafka, acks=all, idempotent where the broker supports it.

A request is answered 200 only after the broker has acknowledged every message it published
(:meth:`GatewayProducer.publish` awaits each send). The broker being unreachable, refusing, or
slower than ``ingest_timeout_seconds`` raises :class:`BrokerUnavailable`; messages sent before
that may already be on Kafka, which is harmless: events are deduplicated by event_id and
reference records are keyed, so the caller simply resends the whole request.
"""

import asyncio
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from aiokafka.protocol.transaction import InitProducerIdRequest

from salespulse.config import Settings
from salespulse.kafka.admin import ensure_topics
from salespulse.kafka.producer import MAX_MESSAGE_BYTES

log = logging.getLogger(__name__)


class BrokerUnavailable(ConnectionError):
    """The broker did not acknowledge in time (or refused): answer 503 with Retry-After."""


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One message to publish."""

    topic: str
    key: str | None
    value: bytes


async def broker_supports_idempotence(producer: AIOKafkaProducer, timeout: float) -> bool:
    """Ask the broker for a producer id (what an idempotent producer does first).

    Apache Kafka answers; the embedded broker (Tansu) answers with an error, so there the
    gateway publishes with acks=all only (duplicates are the pipeline's job anyway).
    """
    client = producer.client
    try:
        await asyncio.wait_for(client.bootstrap(), timeout)
        node_id = client.get_random_node()
        if node_id is None:
            return False
        response = await asyncio.wait_for(
            client.send(node_id, InitProducerIdRequest(transactional_id=None, transaction_timeout_ms=60_000)),
            timeout,
        )
    except (KafkaError, OSError, TimeoutError) as error:
        log.info("idempotent producer not available (%r); publishing with acks=all", error)
        return False
    return bool(response.error_code == 0)


class GatewayProducer:
    """One aiokafka producer shared by every request of a gateway process."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.idempotent = False
        self._producer: AIOKafkaProducer | None = None

    def _make(self, idempotent: bool) -> AIOKafkaProducer:
        timeout_ms = int(self.settings.ingest_timeout_seconds * 1000)
        return AIOKafkaProducer(
            bootstrap_servers=self.settings.broker,
            client_id="salespulse-gateway",
            acks="all",
            enable_idempotence=idempotent,
            linger_ms=2,
            max_batch_size=512 * 1024,
            max_request_size=MAX_MESSAGE_BYTES,
            # A batch not acknowledged within the request's own deadline is given up on; the
            # caller got its 503 and resends.
            request_timeout_ms=max(timeout_ms, 1000),
            retry_backoff_ms=100,
        )

    async def start(self) -> None:
        """Connect, create the salespulse topics if missing, choose idempotence (``ingest_idempotence``)."""
        mode = self.settings.ingest_idempotence
        probe = self._make(False)
        await probe.start()
        try:
            await ensure_topics(self.settings)
            if mode == "auto":
                self.idempotent = await broker_supports_idempotence(probe, 10.0)
            else:
                self.idempotent = mode == "on"
        finally:
            if self.idempotent:
                await probe.stop()
        if self.idempotent:
            self._producer = self._make(True)
            await self._producer.start()
        else:
            self._producer = probe
        log.info(
            "gateway producer: acks=all, idempotent=%s, broker %s", self.idempotent, self.settings.broker
        )

    async def stop(self) -> None:
        if self._producer is not None:
            await self._producer.stop()
            self._producer = None

    async def publish(self, messages: Sequence[Outgoing]) -> float:
        """Send every message and wait for every acknowledgement; returns the seconds it took.

        Raises :class:`BrokerUnavailable` past ``ingest_timeout_seconds`` or on any delivery error.
        """
        producer = self._require()
        started = time.perf_counter()
        try:
            async with asyncio.timeout(self.settings.ingest_timeout_seconds):
                deliveries = [
                    await producer.send(
                        message.topic,
                        message.value,
                        key=None if message.key is None else message.key.encode("utf-8"),
                    )
                    for message in messages
                ]
                await asyncio.gather(*deliveries)
        except TimeoutError:
            raise BrokerUnavailable(
                f"the broker at {self.settings.broker} did not acknowledge within "
                f"{self.settings.ingest_timeout_seconds:g}s (SALESPULSE_INGEST_TIMEOUT_SECONDS)"
            ) from None
        except KafkaError as error:
            raise BrokerUnavailable(
                f"the broker at {self.settings.broker} failed the delivery: {error!r}"
            ) from None
        return time.perf_counter() - started

    async def broker_answers(self, timeout: float) -> bool:
        """Whether the broker answers a metadata request within ``timeout`` seconds."""
        producer = self._require()
        try:
            await asyncio.wait_for(producer.client.fetch_all_metadata(), timeout)
        except (KafkaError, OSError, TimeoutError):
            return False
        return True

    def _require(self) -> AIOKafkaProducer:
        if self._producer is None:
            raise RuntimeError("the gateway producer is not started")
        return self._producer
