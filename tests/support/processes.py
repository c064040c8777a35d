"""Test processes: workers with the tests' settings, and a publisher that writes as a CRM would."""

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import orjson
from kafka import KafkaProducer

from salespulse.runtime.worker_process import WorkerProcess

# Short flushes and group timeouts: the embedded broker joins a group only after the rebalance
# timeout, and tests wait for every flush.
TEST_WORKER_SETTINGS: Mapping[str, str] = {
    "SALESPULSE_FLUSH_INTERVAL_SECONDS": "0.2",
    "SALESPULSE_BROKER_SESSION_TIMEOUT_SECONDS": "6",
    "SALESPULSE_BROKER_REBALANCE_TIMEOUT_SECONDS": "3",
}


def spawn_worker(
    broker: str,
    data_dir: Path,
    topic_prefix: str,
    app_id: str,
    extra_env: Mapping[str, str] | None = None,
    **ports: int,
) -> WorkerProcess:
    """A worker with the tests' settings, then ``extra_env`` on top."""
    return WorkerProcess(
        broker, data_dir, topic_prefix, app_id, {**TEST_WORKER_SETTINGS, **(extra_env or {})}, **ports
    )


class Publisher:
    """Publishes test messages with kafka-python, the way a CRM integration would."""

    def __init__(self, broker: str, topic_prefix: str) -> None:
        self.topic_prefix = topic_prefix
        self.producer = KafkaProducer(
            bootstrap_servers=broker, acks="all", linger_ms=5, max_request_size=4 << 20
        )

    def send(self, suffix: str, value: bytes | dict[str, Any] | None, key: str | bytes | None = None) -> None:
        payload = orjson.dumps(value) if isinstance(value, dict) else value
        raw_key = key.encode() if isinstance(key, str) else key
        self.producer.send(f"{self.topic_prefix}{suffix}", payload, key=raw_key)

    def send_all(
        self, messages: Iterable[tuple[str, bytes | dict[str, Any] | None, str | bytes | None]]
    ) -> int:
        count = 0
        for suffix, value, key in messages:
            self.send(suffix, value, key)
            count += 1
        self.flush()
        return count

    def flush(self) -> None:
        self.producer.flush(60)

    def close(self) -> None:
        self.producer.close(10)
