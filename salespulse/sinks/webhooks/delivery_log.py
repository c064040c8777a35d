"""The webhook delivery log: the outcome of each (transition, target) pair.

It is what makes a notification at most once: 'sending' is recorded before the first attempt,
'delivered' or 'dead' (with the last error: the dead-letter record) after. A transition the log
holds for a target is never sent to it again, across crashes and restarts. In a worker the log is
the ClickHouse table ``webhook_deliveries``.
"""

import time
from dataclasses import dataclass
from typing import Literal, Protocol

from clickhouse_connect.driver.client import Client

Outcome = Literal["sending", "delivered", "dead"]


class DeliveryLog(Protocol):
    """Outcome of each (transition, target) pair: what makes a notification at-most-once."""

    def delivered(self, transition_id: str, target_name: str) -> bool:
        """Whether the transition was already delivered to the target."""
        ...

    def record(
        self, transition_id: str, target_name: str, outcome: Outcome, attempts: int, error: str | None
    ) -> None:
        """Store an outcome: 'delivered', or 'dead' (gave up) with the last error."""
        ...


@dataclass(frozen=True)
class DeliveryRecord:
    transition_id: str
    target_name: str
    outcome: Outcome
    attempts: int
    error: str | None


class InMemoryDeliveryLog:
    """A :class:`DeliveryLog` in memory (tests, or runs without ClickHouse); final outcomes in ``records``."""

    def __init__(self) -> None:
        self.records: list[DeliveryRecord] = []
        self._delivered: set[tuple[str, str]] = set()

    def delivered(self, transition_id: str, target_name: str) -> bool:
        return (transition_id, target_name) in self._delivered

    def record(
        self, transition_id: str, target_name: str, outcome: Outcome, attempts: int, error: str | None
    ) -> None:
        if outcome == "sending":
            return  # in memory nothing survives a crash: only final outcomes are worth keeping
        self.records.append(DeliveryRecord(transition_id, target_name, outcome, attempts, error))
        if outcome == "delivered":
            self._delivered.add((transition_id, target_name))

    def dead(self) -> list[DeliveryRecord]:
        """The dead-letter records."""
        return [record for record in self.records if record.outcome == "dead"]


class ClickHouseDeliveryLog:
    """The delivery log in ClickHouse (``webhook_deliveries``): what a worker uses, durable across crashes."""

    def __init__(self, client: Client, database: str) -> None:
        self.client = client
        self.db = database

    def delivered(self, transition_id: str, target_name: str) -> bool:
        rows = self.client.query(
            f"SELECT outcome FROM {self.db}.webhook_deliveries FINAL "
            "WHERE transition_id = {transition_id:String} AND target = {target:String}",
            parameters={"transition_id": transition_id, "target": target_name},
        ).result_rows
        # 'sending' without an outcome: the worker died mid-delivery; the receiver may have it.
        return bool(rows) and rows[0][0] in ("sending", "delivered")

    def record(
        self, transition_id: str, target_name: str, outcome: Outcome, attempts: int, error: str | None
    ) -> None:
        self.client.insert(
            "webhook_deliveries",
            [[transition_id, target_name, outcome, attempts, error or "", time.time_ns() // 1000]],
            column_names=["transition_id", "target", "outcome", "attempts", "error", "recorded_at"],
            database=self.db,
        )
