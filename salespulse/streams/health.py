"""What /health and /ready report: is the worker consuming, and can it write to ClickHouse."""

import time
from dataclasses import dataclass
from typing import Any


@dataclass
class Health:
    started: bool = False
    assigned_partitions: int = 0
    last_flush_at: float | None = None
    sink_ok: bool = True
    sink_error: str | None = None
    sink_error_since: float | None = None

    def record_sink_error(self, error: BaseException) -> None:
        if self.sink_ok:
            self.sink_error_since = time.time()
        self.sink_ok = False
        self.sink_error = f"{type(error).__name__}: {str(error)[:500]}"

    def record_sink_ok(self) -> None:
        self.sink_ok, self.sink_error, self.sink_error_since = True, None, None

    def report(self) -> tuple[bool, dict[str, Any]]:
        """(healthy, details): healthy when started and ClickHouse takes writes."""
        healthy = self.started and self.sink_ok
        details: dict[str, Any] = {
            "status": "ok" if healthy else ("starting" if not self.started else "degraded"),
            "clickhouse": "ok" if self.sink_ok else "unavailable",
            "assigned_partitions": self.assigned_partitions,
            "last_flush_at": self.last_flush_at,
        }
        if not self.sink_ok:
            details["clickhouse_error"] = self.sink_error
            details["clickhouse_unavailable_since"] = self.sink_error_since
        return healthy, details
