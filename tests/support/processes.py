"""Run the real embedded broker and real salespulse workers as child processes."""

import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import clickhouse_connect
import orjson
from kafka import KafkaProducer
from prometheus_client.parser import text_string_to_metric_families

from salespulse.streams.broker import free_port

T = TypeVar("T")


def wait_until(check: Callable[[], T], timeout: float, what: str, interval: float = 0.2) -> T:
    """Poll ``check`` until it returns a truthy value; fail with ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    last_error: BaseException | None = None
    while time.monotonic() < deadline:
        try:
            value = check()
            if value:
                return value
        except Exception as error:  # the process may still be starting
            last_error = error
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what} (last error: {last_error!r})")


@dataclass
class WorkerProcess:
    """One `salespulse worker` process with its own data directory and ports."""

    broker: str
    data_dir: Path
    topic_prefix: str
    app_id: str
    extra_env: dict[str, str] = field(default_factory=dict)
    web_port: int = field(default_factory=free_port)
    sql_port: int = field(default_factory=free_port)
    query_port: int | None = None  # where to query the views, when not the worker's own endpoint
    process: subprocess.Popen[bytes] | None = None
    starts: int = 0

    @property
    def log_path(self) -> Path:
        return self.data_dir / "worker.log"

    def env(self) -> dict[str, str]:
        env = {key: value for key, value in os.environ.items() if not key.startswith("SALESPULSE_")}
        env.update(
            {
                "SALESPULSE_BROKER": self.broker,
                "SALESPULSE_DATA_DIR": str(self.data_dir),
                "SALESPULSE_TOPIC_PREFIX": self.topic_prefix,
                "SALESPULSE_APP_ID": self.app_id,
                "SALESPULSE_WEB_PORT": str(self.web_port),
                "SALESPULSE_SQL_PORT": str(self.sql_port),
                "SALESPULSE_FLUSH_INTERVAL_SECONDS": "0.2",
                "SALESPULSE_BROKER_SESSION_TIMEOUT_SECONDS": "6",
                "SALESPULSE_BROKER_REBALANCE_TIMEOUT_SECONDS": "3",
                **self.extra_env,
            }
        )
        return env

    def start(self) -> "WorkerProcess":
        self.data_dir.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "salespulse", "worker"],
            env=self.env(),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        self.starts += 1
        return self

    def wait_healthy(self, timeout: float = 120.0) -> None:
        def healthy() -> bool:
            if self.process is not None and self.process.poll() is not None:
                raise AssertionError(f"worker exited with {self.process.returncode}; log:\n{self.log_tail()}")
            with urllib.request.urlopen(f"http://127.0.0.1:{self.web_port}/ready", timeout=2) as response:
                return bool(response.status == 200)

        wait_until(healthy, timeout, f"worker on port {self.web_port} to be ready")

    def stop(self, timeout: float = 60.0) -> int:
        """SIGTERM and wait: a clean stop."""
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(timeout)
        return self.process.returncode

    def health(self) -> tuple[int, dict[str, Any]]:
        """(HTTP status, body) of /health."""
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.web_port}/health", timeout=5) as response:
                return response.status, orjson.loads(response.read())
        except urllib.error.HTTPError as error:
            return error.code, orjson.loads(error.read())

    def kill(self) -> None:
        """SIGKILL: a crash."""
        assert self.process is not None
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(30)

    def log_tail(self, lines: int = 60) -> str:
        if not self.log_path.exists():
            return "(no log)"
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def metric_samples(self) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.web_port}/metrics", timeout=5) as response:
            text = response.read().decode()
        samples = {}
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
        return samples

    def counter(self, name: str, **labels: str) -> float:
        """Sum of a counter's samples whose labels include ``labels``."""
        wanted = set(labels.items())
        return sum(
            value
            for (sample, sample_labels), value in self.metric_samples().items()
            if sample == name and wanted <= set(sample_labels)
        )

    def client(self) -> Any:
        port = self.query_port or self.sql_port
        return clickhouse_connect.get_client(host="127.0.0.1", port=port, database="salespulse")

    def query(self, sql: str, parameters: dict[str, Any] | None = None) -> list[tuple[Any, ...]]:
        client = self.client()
        try:
            return [tuple(row) for row in client.query(sql, parameters=parameters).result_rows]
        finally:
            client.close()


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
