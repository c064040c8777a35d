"""The live KPI tables after batches with crashes, replays, duplicates and two writers equal a rebuild.

Real chDB, no broker: the sink is driven directly, so each crash point of a write (after the
key-ordered rows, after the insert into ``events``, before the refresh) can be hit exactly.
Two sinks over one engine stand for two workers; the rebuild recomputes everything from
``events``, and the live tables must equal it row for row (versions aside).
"""

import random
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from salespulse.config import Settings
from salespulse.schemas.decoding import Decoder
from salespulse.schemas.events import ActivityEvent
from salespulse.sinks.clickhouse.client import connect
from salespulse.sinks.clickhouse.live import LIVE_TABLES, LiveTables
from salespulse.sinks.clickhouse.migrations import apply_migrations
from salespulse.sinks.clickhouse.rows import EVENT_COLUMNS, BatchStamp, RowBuilder, SourcePosition
from salespulse.sinks.clickhouse.sink import ClickHouseSink, SinkBatch, WriteOutcome
from tests.oracle.scenario import build_scenario

SNAPSHOT = {
    "kpi_activity_cells": "SELECT * EXCEPT version FROM {db}.kpi_activity_cells FINAL ORDER BY ALL",
    "kpi_deal_cells": "SELECT * EXCEPT version FROM {db}.kpi_deal_cells FINAL "
    "WHERE deals_created + deals_won + deals_lost > 0 ORDER BY ALL",
    # (refreshed_at is when a row was computed, not what it says.)
    "deal_live": "SELECT * EXCEPT (version, refreshed_at) FROM {db}.deal_live FINAL ORDER BY ALL",
    "customer_live": "SELECT * FROM {db}.customer_live FINAL ORDER BY ALL",
    "event_clock": "SELECT * FROM {db}.event_clock FINAL",
    "kpi_daily": "SELECT * FROM {db}.kpi_daily ORDER BY ALL",
}


_INGESTED, _VERSION = EVENT_COLUMNS.index("ingested_at"), EVENT_COLUMNS.index("dedup_version")


def _now(step: int) -> datetime:
    """Distinct acceptance times, one per write attempt (as the batches of a worker get)."""
    return datetime(2026, 1, 1, tzinfo=UTC) + timedelta(seconds=step)


def _restamp(row: tuple[Any, ...], stamp: BatchStamp) -> tuple[Any, ...]:
    """The row as a later attempt (or another worker) would build it."""
    values = list(row)
    values[_INGESTED], values[_VERSION] = stamp.ingested_at_us, stamp.dedup_version
    return tuple(values)


def snapshot(sink: ClickHouseSink) -> dict[str, list[tuple[Any, ...]]]:
    return {name: sink.query_rows(sql.format(db=sink.database)) for name, sql in SNAPSHOT.items()}


def test_live_tables_after_crashes_duplicates_and_two_writers_equal_a_rebuild(tmp_path: Path) -> None:
    scenario = build_scenario(7)
    settings = Settings(
        data_dir=tmp_path,
        reporting_timezone=scenario.timezone,
        reporting_currency=scenario.reporting_currency,
        currency_rates=scenario.currency_rates,
    )
    decoder, builder = Decoder(settings), RowBuilder(settings)
    client = connect(settings)
    apply_migrations(client, settings)
    first, second = ClickHouseSink(client, settings), ClickHouseSink(client, settings)
    rng = random.Random(11)
    events: list[ActivityEvent] = []
    for body in scenario.events:
        decoded = decoder.decode_event(body["event_type"], orjson.dumps(body))
        assert isinstance(decoded, ActivityEvent), decoded
        events.append(decoded)
    # Disorder and duplicates: shuffled within windows, a fifth sent again later.
    order = list(range(len(events)))
    for start in range(0, len(order), 40):
        window = order[start : start + 40]
        rng.shuffle(window)
        order[start : start + 40] = window
    order += rng.sample(range(len(events)), len(events) // 5)
    crashes = {"after_keyed": 0, "after_insert": 0, "two_writers": 0}
    offset = 0
    for start in range(0, len(order), 97):
        stamp = BatchStamp.at(_now(offset))
        offset += 1
        rows = [
            builder.event_row(events[index], SourcePosition("crm.x", index % 3, start + n), stamp)
            for n, index in enumerate(order[start : start + 97])
        ]
        batch = SinkBatch(ingested_at=stamp.ingested_at, events=rows)
        roll = rng.random()
        if roll < 0.15:
            # Killed after the key-ordered rows: the replay (a new batch stamp) writes everything.
            crashes["after_keyed"] += 1
            first.live.write_keyed(rows)
        elif roll < 0.3:
            # Killed after the insert into events, before the refresh: the replay finds them known.
            crashes["after_insert"] += 1
            first.live.write_keyed(rows)
            first.client.insert(
                "events",
                list(zip(*rows, strict=True)),
                column_names=EVENT_COLUMNS,
                database=first.database,
                column_oriented=True,
            )
        elif roll < 0.45:
            # Two workers given the same events (same event_ids on partitions they each own),
            # both finding them new: both write, each refreshes after its own insert.
            crashes["two_writers"] += 1
            other = _now(offset + 500)
            offset += 1
            copy = SinkBatch(ingested_at=other, events=[_restamp(row, BatchStamp.at(other)) for row in rows])
            fresh_first = first._drop_duplicates(batch, WriteOutcome())
            fresh_second = second._drop_duplicates(copy, WriteOutcome())
            first.live.write_keyed(fresh_first)
            second.live.write_keyed(fresh_second)
            for sink, fresh in ((first, fresh_first), (second, fresh_second)):
                if fresh:
                    sink.client.insert(
                        "events",
                        list(zip(*fresh, strict=True)),
                        column_names=EVENT_COLUMNS,
                        database=sink.database,
                        column_oriented=True,
                    )
            second.live.refresh(copy.events)
            first.live.refresh(batch.events)
            continue
        replay_stamp = BatchStamp.at(_now(offset + 1000))
        offset += 1
        replay = SinkBatch(
            ingested_at=replay_stamp.ingested_at, events=[_restamp(r, replay_stamp) for r in rows]
        )
        (first if rng.random() < 0.5 else second).write(replay)
    assert all(count > 3 for count in crashes.values()), crashes
    live = snapshot(first)
    assert live["kpi_daily"] and live["deal_live"], "the scenario produced no KPIs"
    LiveTables(client, settings).rebuild(from_scratch=True)
    rebuilt = snapshot(first)
    for name in SNAPSHOT:
        assert live[name] == rebuilt[name], name
    assert len(live["deal_live"]) == len({e.deal_id for e in events if e.EVENT_TYPE == "deal"})
    assert sorted(LIVE_TABLES) == ["deal_live", "kpi_activity_cells", "kpi_deal_cells"]
