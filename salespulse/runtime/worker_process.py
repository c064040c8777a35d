"""A `salespulse worker` as a child process with its own data directory, topics, group and ports.

What the benchmark and the tests run: start it, wait until it is ready, read its metrics and
health, query its views through its query endpoint, stop it cleanly or kill it.
"""

import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Self

import clickhouse_connect
import orjson

from salespulse.runtime.children import ChildProcess, environment_without_settings
from salespulse.runtime.metrics_reader import Samples, read_metrics, total
from salespulse.runtime.ports import free_port
from salespulse.runtime.waiting import wait_until


class WorkerProcess(ChildProcess):
    """One worker; ``extra_env`` (``SALESPULSE_*`` variables) adds to or overrides its own settings."""

    def __init__(
        self,
        broker: str,
        data_dir: Path,
        topic_prefix: str,
        app_id: str,
        extra_env: Mapping[str, str] | None = None,
        *,
        web_port: int | None = None,
        sql_port: int | None = None,
    ) -> None:
        super().__init__("worker", ["worker"], {}, data_dir / "worker.log", own_session=False)
        self.broker = broker
        self.data_dir = data_dir
        self.topic_prefix = topic_prefix
        self.app_id = app_id
        self.extra_env = dict(extra_env or {})
        self.web_port = web_port or free_port()
        self.sql_port = sql_port or free_port()
        # Where to query the views, when not the worker's own endpoint (a ClickHouse server).
        self.query_port: int | None = None
        self._client: Any = None
        self._client_port: int | None = None

    def environment(self) -> dict[str, str]:
        """The worker's environment: no inherited SALESPULSE_* variables, only its own."""
        return {
            **environment_without_settings(),
            "SALESPULSE_BROKER": self.broker,
            "SALESPULSE_DATA_DIR": str(self.data_dir),
            "SALESPULSE_TOPIC_PREFIX": self.topic_prefix,
            "SALESPULSE_APP_ID": self.app_id,
            "SALESPULSE_WEB_PORT": str(self.web_port),
            "SALESPULSE_SQL_PORT": str(self.sql_port),
            **self.extra_env,
        }

    def start(self) -> Self:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.env = self.environment()
        return super().start()

    @property
    def web_url(self) -> str:
        return f"http://127.0.0.1:{self.web_port}"

    def wait_ready(self, timeout: float = 120.0, error: type[Exception] = TimeoutError) -> None:
        """Until /ready answers 200: ClickHouse migrated, partitions assigned."""

        def ready() -> bool:
            self.require_running()
            with urllib.request.urlopen(f"{self.web_url}/ready", timeout=2) as response:
                return bool(response.status == 200)

        wait_until(ready, timeout, f"worker on port {self.web_port} to be ready", interval=0.2, error=error)

    def health(self) -> tuple[int, dict[str, Any]]:
        """(HTTP status, body) of /health."""
        try:
            with urllib.request.urlopen(f"{self.web_url}/health", timeout=5) as response:
                return response.status, orjson.loads(response.read())
        except urllib.error.HTTPError as error:
            return error.code, orjson.loads(error.read())

    def metric_samples(self) -> Samples:
        return read_metrics(f"{self.web_url}/metrics")

    def counter(self, name: str, **labels: str) -> float:
        """Sum of a counter's samples whose labels include ``labels``."""
        return total(self.metric_samples(), name, **labels)

    def client(self) -> Any:
        """A new clickhouse-connect client on the worker's query endpoint (or ``query_port``)."""
        port = self.query_port or self.sql_port
        return clickhouse_connect.get_client(host="127.0.0.1", port=port, database="salespulse")

    def query(self, sql: str, parameters: dict[str, Any] | None = None) -> list[tuple[Any, ...]]:
        """Rows of ``sql``, on one client kept while the worker runs: polling loops stay cheap, and
        a handshake per poll would add its own queries to what a benchmark measures."""
        port = self.query_port or self.sql_port
        if self._client is not None and self._client_port != port:
            self._close_client()
        if self._client is None:
            self._client, self._client_port = self.client(), port
        return [tuple(row) for row in self._client.query(sql, parameters=parameters).result_rows]

    def rss_mb(self) -> float:
        """The worker's resident memory."""
        assert self.process is not None
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        raise RuntimeError(f"cannot read the resident memory of process {self.process.pid}")

    def stop(self, timeout: float = 60.0) -> int | None:
        self._close_client()
        return super().stop(timeout)

    def kill(self) -> None:
        self._close_client()
        super().kill()

    def _close_client(self) -> None:
        if self._client is not None:
            client, self._client = self._client, None
            client.close()
