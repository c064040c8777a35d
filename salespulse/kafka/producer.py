"""Publishing events and reference records to their topics, the way a CRM integration would.

One producer wrapper (:class:`TopicPublisher`) and one keying rule (:func:`message_key`) serve
every publisher of salespulse: JSON Lines files (``salespulse.publishing``), the simulator, and
:func:`publish_records`, which sends ``(type, dict)`` pairs (the simulator and tests).

Keys (contract §3): activity events are keyed by ``deal_id`` when they have one, else by
``customer_id``, so every event of a deal lands on one partition in order; reference records by
their compaction key (``rep_id|effective_from``, ``level|entity_id|metric|period|period_start``,
``customer_id``), derived from the record's own fields.
"""

import asyncio
import hashlib
from collections import Counter
from collections.abc import Callable, Coroutine, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from types import TracebackType
from typing import Any, TypeVar

import orjson
from kafka import KafkaProducer
from kafka.errors import KafkaError, KafkaTimeoutError

from salespulse.config import Settings
from salespulse.kafka.admin import ensure_topics
from salespulse.kafka.topics import Topics
from salespulse.schemas.events import ACTIVITY_MODELS
from salespulse.schemas.reference import REFERENCE_MODELS

ACTIVITY_TYPES: tuple[str, ...] = tuple(ACTIVITY_MODELS)  # visit, call, deal, feedback
REFERENCE_TYPES: tuple[str, ...] = tuple(REFERENCE_MODELS)  # org, targets, customers
RECORD_TYPES: tuple[str, ...] = ACTIVITY_TYPES + REFERENCE_TYPES

CONNECT_TIMEOUT_SECONDS = 10.0
ACK_TIMEOUT_SECONDS = 120.0
# kafka-python's default; a line larger than this cannot be sent to a default-configured broker.
MAX_MESSAGE_BYTES = 1_048_576

T = TypeVar("T")


class BrokerUnavailable(ConnectionError):
    """The broker could not be reached, or did not acknowledge what was sent, in time."""


class PublishFailed(RuntimeError):
    """The broker refused messages that :func:`publish_records` sent (not a connection problem)."""


def message_key(record_type: str, record: Mapping[str, Any]) -> str | None:
    """The Kafka key of one event or reference record (the one keying rule of salespulse).

    - Activity events: ``deal_id`` when present, else ``customer_id``, else no key (the
      partitioner spreads such messages; the pipeline does not depend on keys, contract §3).
    - Reference records: the compaction key of contract §3, the record's key fields joined with
      ``|`` exactly as written in the record (so it equals ``record_key`` of every valid record).
      Compacted topics need a key, and two *different* invalid records must not compact each
      other away before the pipeline has sent them to the DLQ, so a record missing a key field
      gets the fields it has plus ``#`` and a digest of its content.
    """
    if record_type in ACTIVITY_MODELS:
        for name in ("deal_id", "customer_id"):
            part = _key_part(record.get(name))
            if part:
                return part
        return None
    if record_type not in REFERENCE_MODELS:
        raise ValueError(f"unknown record type '{record_type}'; expected one of {', '.join(RECORD_TYPES)}")
    parts = [_key_part(record.get(name)) for name in REFERENCE_MODELS[record_type].KEY_FIELDS]
    key = "|".join(part or "" for part in parts)
    if all(parts):
        return key
    digest = hashlib.sha256(orjson.dumps(record, option=orjson.OPT_SORT_KEYS)).hexdigest()[:16]
    return f"{key}#{digest}"


def _key_part(value: Any) -> str | None:
    # Strings as written; numbers as their JSON text (the pipeline rejects them, but the key
    # should still be stable); anything else cannot name a record.
    if isinstance(value, str):
        return value or None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return orjson.dumps(value).decode()
    return None


def record_topic(topics: Topics, record_type: str) -> str:
    """The topic of an event or record type (``visit`` → ``crm.visits``, ``org`` → ``crm.org``)."""
    if record_type not in RECORD_TYPES:
        raise ValueError(f"unknown record type '{record_type}'; expected one of {', '.join(RECORD_TYPES)}")
    return topics.for_type(record_type)


# --- the producer ------------------------------------------------------------------------------


def _unreachable_message(settings: Settings, what: str, error: BaseException) -> str:
    return (
        f"{what} the Kafka broker at {settings.broker} ({error}); check that it is running and "
        "reachable, or point salespulse at it with SALESPULSE_BROKER or --broker"
    )


def _run_to_completion(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine from synchronous code, even when the caller is inside an event loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coroutine)
    with ThreadPoolExecutor(max_workers=1) as thread:
        return thread.submit(asyncio.run, coroutine).result()


class TopicPublisher:
    """A kafka-python producer that sends to salespulse topics and counts acknowledgements.

    Opening it connects to the broker (raising :class:`BrokerUnavailable` with the address if it
    cannot) and, unless ``create_topics`` is false, creates the missing salespulse topics first:
    a broker that auto-creates topics would otherwise make the reference topics uncompacted.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        create_topics: bool = True,
        connect_timeout: float = CONNECT_TIMEOUT_SECONDS,
        linger_ms: int = 10,
    ) -> None:
        self.settings = settings
        self.topics = Topics.from_settings(settings)
        self.acknowledged: Counter[str] = Counter()
        self.sent: Counter[str] = Counter()
        self._timeouts: list[BaseException] = []
        self._refusals: list[BaseException] = []
        try:
            self._producer = KafkaProducer(
                bootstrap_servers=settings.broker,
                # Every in-sync replica, but no idempotence: the embedded broker (Tansu) does not
                # support idempotent producers, and duplicates are the pipeline's job anyway.
                acks="all",
                enable_idempotence=False,
                linger_ms=linger_ms,
                batch_size=512 * 1024,
                max_request_size=MAX_MESSAGE_BYTES,
                bootstrap_timeout_ms=int(connect_timeout * 1000),
                max_block_ms=int(max(connect_timeout, 30.0) * 1000),
                request_timeout_ms=20_000,
                delivery_timeout_ms=60_000,
            )
        except KafkaError as error:
            raise BrokerUnavailable(
                _unreachable_message(settings, f"could not connect within {connect_timeout:g}s to", error)
            ) from error
        if create_topics:
            try:
                _run_to_completion(ensure_topics(settings, timeout_seconds=max(connect_timeout, 10.0)))
            except Exception as error:
                self._producer.close(0)
                raise BrokerUnavailable(
                    f"could not create the salespulse topics on the Kafka broker at {settings.broker} "
                    f"({error!r}); create them with `salespulse topics create` or check SALESPULSE_BROKER "
                    "or --broker"
                ) from error

    def __enter__(self) -> "TopicPublisher":
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.close()

    def send(
        self,
        record_type: str,
        value: bytes,
        key: str | None,
        on_refused: Callable[[BaseException], None] | None = None,
    ) -> str:
        """Send one message to the topic of ``record_type``; returns the topic.

        A refusal by the broker (anything but a timeout) goes to ``on_refused`` when given; it
        is otherwise kept and raised by :meth:`flush`. A timeout means the broker went away and
        is always raised by :meth:`flush`, as :class:`BrokerUnavailable`.
        """
        topic = record_topic(self.topics, record_type)
        try:
            future = self._producer.send(topic, value, key=None if key is None else key.encode("utf-8"))
        except KafkaTimeoutError as error:
            raise BrokerUnavailable(
                _unreachable_message(self.settings, "lost the connection to", error)
            ) from error
        self.sent[topic] += 1
        future.add_callback(lambda _metadata: self.acknowledged.update((topic,)))
        future.add_errback(lambda error: self._delivery_failed(error, on_refused))
        return topic

    def send_record(self, record_type: str, record: Mapping[str, Any]) -> str:
        """Send one event or record dict, JSON-encoded and keyed by :func:`message_key`."""
        return self.send(record_type, orjson.dumps(record), message_key(record_type, record))

    def _delivery_failed(
        self, error: BaseException, on_refused: Callable[[BaseException], None] | None
    ) -> None:
        # Runs on the producer's I/O thread; list.append is atomic under the GIL.
        if isinstance(error, KafkaTimeoutError):
            self._timeouts.append(error)
        elif on_refused is not None:
            on_refused(error)
        else:
            self._refusals.append(error)

    def flush(self, timeout: float = ACK_TIMEOUT_SECONDS) -> None:
        """Wait until the broker has acknowledged (or refused) everything sent so far."""
        try:
            self._producer.flush(timeout)
        except KafkaTimeoutError as error:
            self._timeouts.append(error)
        self.raise_failures()

    def raise_failures(self) -> None:
        """Raise if a delivery has failed so far (without waiting for the ones in flight).

        :class:`BrokerUnavailable` when a delivery timed out, :class:`PublishFailed` when the
        broker refused a message that had no ``on_refused`` handler.
        """
        if self._timeouts:
            total, acked = sum(self.sent.values()), sum(self.acknowledged.values())
            raise BrokerUnavailable(
                _unreachable_message(
                    self.settings,
                    f"only {acked} of {total} messages were acknowledged by",
                    self._timeouts[0],
                )
                + "; publishing again is safe (events are deduplicated by event_id, records by key)"
            )
        if self._refusals:
            raise PublishFailed(
                f"the broker at {self.settings.broker} refused {len(self._refusals)} message(s): "
                f"{self._refusals[0]!r}"
            )

    def close(self) -> None:
        """Release the connection (without waiting: call :meth:`flush` first to be sure)."""
        self._producer.close(timeout=5)


def publish_records(
    records: Iterable[tuple[str, Mapping[str, Any]]],
    settings: Settings,
    *,
    create_topics: bool = True,
) -> dict[str, int]:
    """Publish ``(type, dict)`` pairs keyed by :func:`message_key`; returns messages per topic.

    Waits until the broker has acknowledged every message; raises :class:`BrokerUnavailable`
    or :class:`PublishFailed` otherwise.
    """
    with TopicPublisher(settings, create_topics=create_topics) as publisher:
        for record_type, record in records:
            publisher.send_record(record_type, record)
        publisher.flush()
        return dict(publisher.acknowledged)
