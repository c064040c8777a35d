"""The webhook delivery log: the outcome of each (transition, target) pair.

It is what makes a notification at most once: 'sending' is recorded before the first attempt,
'delivered' or 'dead' (with the last error: the dead-letter record) after. A transition the log
holds for a target is never sent to it again, across crashes and restarts. In a worker the log is
the ClickHouse table ``webhook_deliveries``.

The log is read and written in batches (one query for a batch of pairs, one insert for a batch
of outcomes) because its calls block: the notifier runs them in a thread of their own, never on
the event loop that ingest shares (an alert flood would otherwise stall ingest).
"""

import time
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

from clickhouse_connect.driver.client import Client

Outcome = Literal["sending", "delivered", "dead"]
# Transition ids per lookup query: keeps the query's parameter well under any size limit.
_LOOKUP_CHUNK = 1000


@dataclass(frozen=True)
class DeliveryRecord:
    transition_id: str
    target_name: str
    outcome: Outcome
    attempts: int
    error: str | None


class DeliveryLog(Protocol):
    """Outcome of each (transition, target) pair: what makes a notification at-most-once.

    Its methods block (a database call): call them from a thread, not from an event loop.
    """

    def handled(self, pairs: Collection[tuple[str, str]]) -> set[tuple[str, str]]:
        """Of these (transition_id, target_name) pairs, those delivered or under way: never send them again."""
        ...

    def record_many(self, records: Sequence[DeliveryRecord]) -> None:
        """Store outcomes: 'sending' before the first attempt, then 'delivered' or 'dead' (with the last error)."""
        ...


class InMemoryDeliveryLog:
    """A :class:`DeliveryLog` in memory (tests, or runs without ClickHouse); final outcomes in ``records``."""

    def __init__(self) -> None:
        self.records: list[DeliveryRecord] = []
        self._delivered: set[tuple[str, str]] = set()

    def delivered(self, transition_id: str, target_name: str) -> bool:
        return (transition_id, target_name) in self._delivered

    def handled(self, pairs: Collection[tuple[str, str]]) -> set[tuple[str, str]]:
        return {pair for pair in pairs if pair in self._delivered}

    def record_many(self, records: Sequence[DeliveryRecord]) -> None:
        for record in records:
            if record.outcome == "sending":
                continue  # in memory nothing survives a crash: only final outcomes are worth keeping
            self.records.append(record)
            if record.outcome == "delivered":
                self._delivered.add((record.transition_id, record.target_name))

    def dead(self) -> list[DeliveryRecord]:
        """The dead-letter records."""
        return [record for record in self.records if record.outcome == "dead"]


class ClickHouseDeliveryLog:
    """The delivery log in ClickHouse (``webhook_deliveries``): what a worker uses, durable across crashes."""

    def __init__(self, client: Client, database: str) -> None:
        self.client = client
        self.db = database

    def handled(self, pairs: Collection[tuple[str, str]]) -> set[tuple[str, str]]:
        wanted = set(pairs)
        ids = sorted({transition_id for transition_id, _ in wanted})
        found: set[tuple[str, str]] = set()
        for start in range(0, len(ids), _LOOKUP_CHUNK):
            rows = self.client.query(
                f"SELECT transition_id, target, outcome FROM {self.db}.webhook_deliveries FINAL "
                "WHERE transition_id IN {ids:Array(String)}",
                parameters={"ids": ids[start : start + _LOOKUP_CHUNK]},
            ).result_rows
            # 'sending' without an outcome: the worker died mid-delivery; the receiver may have it.
            found.update(
                (transition_id, target)
                for transition_id, target, outcome in rows
                if outcome in ("sending", "delivered") and (transition_id, target) in wanted
            )
        return found

    def record_many(self, records: Sequence[DeliveryRecord]) -> None:
        if not records:
            return
        now = time.time_ns() // 1000
        self.client.insert(
            "webhook_deliveries",
            [[r.transition_id, r.target_name, r.outcome, r.attempts, r.error or "", now] for r in records],
            column_names=["transition_id", "target", "outcome", "attempts", "error", "recorded_at"],
            database=self.db,
        )
