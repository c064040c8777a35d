"""A `salespulse gateway` as a child process on its own port: what the benchmark and the tests run."""

import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import Self

from salespulse.runtime.children import ChildProcess, environment_without_settings
from salespulse.runtime.metrics_reader import read_metrics, total
from salespulse.runtime.ports import free_port
from salespulse.runtime.waiting import wait_until


class GatewayProcess(ChildProcess):
    """One gateway publishing to ``broker`` under ``topic_prefix``, with the named ``tokens``."""

    def __init__(
        self,
        broker: str,
        topic_prefix: str,
        tokens: Mapping[str, str],
        log_path: Path,
        extra_env: Mapping[str, str] | None = None,
        *,
        port: int | None = None,
    ) -> None:
        super().__init__("gateway", ["gateway"], {}, log_path, own_session=False)
        self.broker = broker
        self.topic_prefix = topic_prefix
        self.port = port or free_port()
        self.tokens = dict(tokens)
        self.extra_env = dict(extra_env or {})

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Self:
        self.env = {
            **environment_without_settings(),
            "SALESPULSE_BROKER": self.broker,
            "SALESPULSE_TOPIC_PREFIX": self.topic_prefix,
            "SALESPULSE_INGEST_PORT": str(self.port),
            "SALESPULSE_INGEST_TOKENS": ",".join(f"{name}={token}" for name, token in self.tokens.items()),
            "SALESPULSE_LOG_LEVEL": "warning",
            **self.extra_env,
        }
        return super().start()

    def health_status(self) -> int | None:
        try:
            with urllib.request.urlopen(f"{self.url}/v1/health", timeout=5) as response:
                return int(response.status)
        except urllib.error.HTTPError as error:
            return int(error.code)
        except OSError:
            return None

    def wait_ready(self, timeout: float = 60.0) -> Self:
        def ready() -> bool:
            self.require_running()
            return self.health_status() == 200

        wait_until(ready, timeout, f"the gateway to answer on {self.url}/v1/health")
        return self

    def counter(self, name: str, **labels: str) -> float:
        """The sum of a counter's samples matching ``labels`` on the gateway's /metrics."""
        return total(read_metrics(f"{self.url}/metrics"), name, **labels)
