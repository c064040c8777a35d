"""Resource limits of the query endpoint: what one query may take from the worker it runs in.

The endpoint's queries run inside the worker's process, beside ingest. A ClickHouse server would
bound them with a settings profile and its constraints; chDB has no access control, so the
endpoint does the same itself:

- every request's handle gets the limits as settings (``max_execution_time``, ``max_memory_usage``,
  ``max_rows_to_read``/``max_bytes_to_read``, ``max_result_rows``/``max_result_bytes`` with
  ``result_overflow_mode = 'throw'``, ``max_threads``), so chDB stops a query that exceeds one with
  ClickHouse's own error (TIMEOUT_EXCEEDED, MEMORY_LIMIT_EXCEEDED, TOO_MANY_ROWS, ...);
- a client may tighten a limit (a URL parameter below it) but not loosen it: a URL parameter above
  the limit, or any mention of a limited setting in a query's SETTINGS clause, is refused with
  SETTING_CONSTRAINT_VIOLATION, as a ClickHouse constraint ``MAX`` would refuse it;
- at most ``concurrent_queries`` run at once; the next ones wait up to ``queue_seconds``, then are
  refused with TOO_MANY_SIMULTANEOUS_QUERIES.
"""

import os
from collections.abc import Mapping
from dataclasses import dataclass

from salespulse.config import Settings
from salespulse.embedded.query_server.errors import ClickHouseError


def half_the_cores() -> int:
    """The default for threads per query and for queries at once: the other half is ingest's."""
    return max(1, (os.cpu_count() or 1) // 2)


# Settings that would lift or change a limit from inside a query; `profile` applies a whole profile.
_GUARDED_EXTRA = frozenset({"profile", "result_overflow_mode", "read_overflow_mode", "timeout_overflow_mode"})


@dataclass(frozen=True)
class QueryLimits:
    """The endpoint's limits; 0 means unlimited (for the numeric ones)."""

    max_execution_seconds: float = 30.0
    max_memory_bytes: int = 1 << 30
    max_rows_to_read: int = 1_000_000_000
    max_bytes_to_read: int = 100 << 30
    max_result_rows: int = 1_000_000
    max_result_bytes: int = 256 << 20
    max_threads: int = 0  # 0: half the cores
    concurrent_queries: int = 0  # 0: half the cores
    queue_seconds: float = 5.0

    @property
    def concurrency(self) -> int:
        return self.concurrent_queries or half_the_cores()

    def settings(self) -> dict[str, str]:
        """The ClickHouse settings that enforce the limits on a request's handle."""
        values: dict[str, float | int] = {
            "max_execution_time": self.max_execution_seconds,
            "max_memory_usage": self.max_memory_bytes,
            "max_rows_to_read": self.max_rows_to_read,
            "max_bytes_to_read": self.max_bytes_to_read,
            "max_result_rows": self.max_result_rows,
            "max_result_bytes": self.max_result_bytes,
            "max_threads": self.max_threads or half_the_cores(),
        }
        limited = {
            name: f"{value:g}" if isinstance(value, float) else str(value) for name, value in values.items()
        }
        return {
            **limited,
            "result_overflow_mode": "throw",
            "read_overflow_mode": "throw",
            "timeout_overflow_mode": "throw",
        }

    def guarded_names(self) -> frozenset[str]:
        """Settings a query's SETTINGS clause must not name."""
        return frozenset(self.settings()) | _GUARDED_EXTRA

    def check_client_settings(self, requested: Mapping[str, str]) -> None:
        """Refuse a URL setting that loosens a limit; one that tightens it is fine (it is applied)."""
        enforced = self.settings()
        for name, value in requested.items():
            if name == "profile":
                raise constraint_violation(name, "a settings profile cannot be chosen on this endpoint")
            if name not in enforced:
                continue
            limit = enforced[name]
            if name.endswith("_overflow_mode"):
                if value.strip().strip("'").lower() != limit:
                    raise constraint_violation(name, f"it is fixed to '{limit}' on this endpoint")
                continue
            try:
                number = float(value)
            except ValueError:
                raise ClickHouseError(
                    "CANNOT_PARSE_NUMBER", f"setting {name} must be a number, got {value!r}"
                ) from None
            if float(limit) != 0 and (number == 0 or number > float(limit)):
                raise constraint_violation(name, f"it shouldn't be greater than {limit} (0 means unlimited)")

    def check_query_settings(self, named: set[str]) -> None:
        """Refuse a SETTINGS clause that names a limited setting (its value cannot be checked safely)."""
        guarded = sorted(named & self.guarded_names())
        if guarded:
            raise constraint_violation(
                guarded[0],
                "a query's SETTINGS clause may not change a limit of this endpoint; "
                "pass a lower value as a URL parameter instead",
            )


def constraint_violation(name: str, why: str) -> ClickHouseError:
    return ClickHouseError("SETTING_CONSTRAINT_VIOLATION", f"Setting {name}: {why}")


def limits_from_settings(settings: Settings) -> QueryLimits:
    """The limits configured by the SALESPULSE_SQL_* settings."""
    return QueryLimits(
        max_execution_seconds=settings.sql_max_execution_seconds,
        max_memory_bytes=settings.sql_max_memory_bytes,
        max_rows_to_read=settings.sql_max_rows_to_read,
        max_bytes_to_read=settings.sql_max_bytes_to_read,
        max_result_rows=settings.sql_max_result_rows,
        max_result_bytes=settings.sql_max_result_bytes,
        max_threads=settings.sql_max_threads,
        concurrent_queries=settings.sql_max_concurrent_queries,
        queue_seconds=settings.sql_queue_seconds,
    )
