"""The ClickHouse sink: where accepted events and reference records become rows.

``ClickHouseSink.write`` takes one flushed batch and makes it durable: it classifies each
event as new or a duplicate (an event_id ClickHouse already holds, or seen earlier in the
batch), then inserts the new events and the reference records with one insert per table.
Writing the same batch twice is harmless: the second time every event is a duplicate and
reference rows carry the same key, so the contract views are unchanged.
"""

import logging
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from clickhouse_connect.driver.client import Client

from salespulse.config import Settings
from salespulse.sinks.clickhouse.client import connect
from salespulse.sinks.clickhouse.migrations import apply_migrations
from salespulse.sinks.clickhouse.rows import EVENT_COLUMNS, REFERENCE_COLUMNS, REFERENCE_TABLES

log = logging.getLogger(__name__)

# Ids per duplicate lookup: keeps each query's text to a few hundred kilobytes.
LOOKUP_CHUNK = 5_000

_EVENT_ID = EVENT_COLUMNS.index("event_id")
_EVENT_TYPE = EVENT_COLUMNS.index("event_type")


@dataclass
class SinkBatch:
    """What one flush writes: activity rows (EVENT_COLUMNS order) and reference rows by type.

    Every row of a batch carries the same ``ingested_at``: that is how a retried write
    recognises the rows its own earlier attempt managed to insert.
    """

    ingested_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    events: list[tuple[Any, ...]] = field(default_factory=list)
    references: dict[str, list[tuple[Any, ...]]] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.events) + sum(len(rows) for rows in self.references.values())


@dataclass
class WriteOutcome:
    accepted: Counter[str] = field(default_factory=Counter)
    duplicates: Counter[str] = field(default_factory=Counter)


class ClickHouseSink:
    """Writes flushed batches into the salespulse database."""

    def __init__(self, client: Client, settings: Settings) -> None:
        self.client = client
        self.database = settings.clickhouse_database

    @classmethod
    def open(cls, settings: Settings) -> "ClickHouseSink":
        """Connect and migrate: the sink is ready to write when this returns."""
        client = connect(settings)
        apply_migrations(client, settings)
        return cls(client, settings)

    def write(self, batch: SinkBatch) -> WriteOutcome:
        outcome = WriteOutcome()
        new_events = self._drop_duplicates(batch, outcome)
        if new_events:
            # Column-oriented: transposing in C (zip) is far cheaper than the client doing it per row.
            columns = list(zip(*new_events, strict=True))
            self.client.insert(
                "events", columns, column_names=EVENT_COLUMNS, database=self.database, column_oriented=True
            )
        for record_type, rows in batch.references.items():
            latest = _latest_per_key(rows)
            self.client.insert(
                REFERENCE_TABLES[record_type],
                latest,
                column_names=REFERENCE_COLUMNS[record_type],
                database=self.database,
            )
            outcome.accepted[record_type] += len(rows)
        return outcome

    def known_event_ids(self, event_ids: Sequence[str], ingested_at: datetime) -> dict[str, bool]:
        """The ids among ``event_ids`` that ClickHouse already holds, each mapped to whether the
        row came from a batch written at ``ingested_at`` (an earlier attempt of this very write)."""
        known: dict[str, bool] = {}
        for start in range(0, len(event_ids), LOOKUP_CHUNK):
            # The ids travel as one hex string literal: ClickHouse parses a long list literal at a
            # few microseconds per element and client-side escaping costs as much again, while a
            # single string of [0-9a-f,] needs no escaping and keeps every possible id intact.
            chunk = ",".join(event_id.encode().hex() for event_id in event_ids[start : start + LOOKUP_CHUNK])
            result = self.client.query(
                f"SELECT event_id, max(ingested_at = {{at:DateTime64(6, 'UTC')}}) FROM {self.database}.events "
                f"WHERE event_id IN (SELECT unhex(arrayJoin(splitByChar(',', '{chunk}')))) GROUP BY event_id "
                f"SETTINGS max_query_size = {len(chunk) + 4096}",
                parameters={"at": ingested_at},
            )
            known.update((row[0], bool(row[1])) for row in result.result_rows)
        return known

    def _drop_duplicates(self, batch: SinkBatch, outcome: WriteOutcome) -> list[tuple[Any, ...]]:
        rows = batch.events
        if not rows:
            return rows
        known = self.known_event_ids(list({row[_EVENT_ID] for row in rows}), batch.ingested_at)
        fresh, seen = [], set()
        for row in rows:
            event_id, event_type = row[_EVENT_ID], row[_EVENT_TYPE]
            if event_id in seen or (event_id in known and not known[event_id]):
                outcome.duplicates[event_type] += 1
                continue
            seen.add(event_id)
            outcome.accepted[event_type] += 1
            if event_id not in known:  # else: already written by an earlier attempt of this batch
                fresh.append(row)
        return fresh

    def query_rows(self, sql: str, parameters: dict[str, Any] | None = None) -> list[tuple[Any, ...]]:
        return [tuple(row) for row in self.client.query(sql, parameters=parameters).result_rows]

    def close(self) -> None:
        self.client.close()


def _latest_per_key(rows: Iterable[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """Within one batch, only the last record of each key counts (rows arrive in offset order)."""
    latest: dict[str, tuple[Any, ...]] = {}
    for row in rows:
        latest[row[0]] = row
    return list(latest.values())
