"""Live KPI tables: kept up to date batch by batch, recomputed per touched key from key-ordered rows.

For each flushed batch the sink calls ``LiveTables.write_keyed`` with the events it is about
to insert (before inserting them into ``events``) and, once they are in, ``refresh`` with every
event of the batch. ``refresh`` recomputes, from the key-ordered raw rows, the live rows of
whatever the batch touched: the deals it names, the (day, rep) cells of its events and of every
deal event of those deals. Each recomputed row carries a version derived from the rows it was
computed from (how many, and the sum of their dedup versions), which never decreases as rows
arrive; the live tables keep the highest version, so the computation that saw the most wins and
a concurrent one that saw less cannot overwrite it. docs/semantics.md ("Live tables") gives
the argument; ``rebuild`` recomputes everything from ``events``.
"""

from collections.abc import Callable, Iterable, Sequence
from datetime import date
from typing import Any

from clickhouse_connect.driver.client import Client

from salespulse.config import Settings
from salespulse.sinks.clickhouse.rows import EVENT_COLUMNS

# Keys per recompute statement: bounds the query text and the set ClickHouse builds.
KEY_CHUNK = 20_000
# Deal-id hash buckets a rebuild works through: bounds its memory (and drives the progress bar).
REBUILD_BUCKETS = 16

_I = {name: index for index, name in enumerate(EVENT_COLUMNS)}

CELL_COLUMNS = (
    "rep_id",
    "occurred_at",
    "event_id",
    "event_type",
    "deal_id",
    "visit_outcome",
    "call_outcome",
    "call_duration_seconds",
    "score_type",
    "score",
    "category",
    "dedup_version",
)
DEAL_COLUMNS = (
    "deal_id",
    "event_id",
    "event_type",
    "occurred_at",
    "ingested_at",
    "src_partition",
    "src_offset",
    "stage",
    "rep_id",
    "customer_id",
    "amount",
    "original_amount",
    "original_currency",
    "expected_close_date",
    "lost_reason",
    "dedup_version",
)
LIVE_TABLES = ("kpi_activity_cells", "kpi_deal_cells", "deal_live")
KEYED_TABLES = ("events_by_cell", "events_by_deal", "customer_live", "event_clock")

_VERSION = "bitShiftLeft(toUInt256(count()), 128) + toUInt256(sum(dedup_version))"

# The activity KPIs of (day, rep) cells, from events_by_cell.
_ACTIVITY_CELLS = """
INSERT INTO {db}.kpi_activity_cells
SELECT
    day, rep_id,
    countIf(event_type = 'visit'),
    countIf(event_type = 'visit' AND visit_outcome = 'completed'),
    countIf(event_type = 'call'),
    countIf(event_type = 'call' AND call_outcome = 'connected'),
    sumIf(toUInt64(call_duration_seconds), event_type = 'call'),
    countIf(event_type = 'feedback' AND score_type = 'csat'),
    sumIf(toUInt64(score), event_type = 'feedback' AND score_type = 'csat'),
    countIf(event_type = 'feedback' AND score_type = 'csat' AND score >= 4),
    countIf(event_type = 'feedback' AND score_type = 'nps'),
    countIf(event_type = 'feedback' AND score_type = 'nps' AND score >= 9),
    countIf(event_type = 'feedback' AND score_type = 'nps' AND score <= 6),
    countIf(event_type = 'feedback' AND category = 'complaint'),
    {version}
FROM {db}.events_by_cell FINAL
WHERE {cells}
GROUP BY day, rep_id
"""

# One deal's history in CRM order (occurred_at, then delivery order) and the shape of its
# final stage run; shared by the deal state and the deal KPIs of cells. {rows} yields the
# deal events (event_type = 'deal') of the deals wanted.
_DEAL_HISTORY = """
SELECT
    deal_id, history, rows_read, dedup_sum, last_activity_at,
    arrayMap(x -> x.5, history) AS stages,
    arrayFirstIndex(s -> s != stages[-1], arrayReverse(stages)) AS first_other,
    if(first_other = 0, 1, length(stages) - first_other + 2) AS run_start
FROM
(
    SELECT
        deal_id,
        arraySort(
            x -> (x.1, x.2, x.3, x.4),
            groupArrayIf((occurred_at, ingested_at, src_partition, src_offset, stage, rep_id, customer_id,
                          amount, original_amount, original_currency, expected_close_date, lost_reason, day),
                         event_type = 'deal')
        ) AS history,
        count() AS rows_read,
        sum(dedup_version) AS dedup_sum,
        max(occurred_at) AS last_activity_at
    FROM {rows}
    GROUP BY deal_id
    HAVING countIf(event_type = 'deal') > 0
)
"""

_DEAL_LIVE = """
INSERT INTO {db}.deal_live
SELECT
    deal_id,
    history[-1].5 AS stage,
    multiIf(stage = 'won', 'won', stage = 'lost', 'lost', 'open') AS status,
    history[-1].6, history[-1].7, history[-1].8, history[-1].9, history[-1].10, history[-1].11, history[-1].12,
    history[1].1, history[1].6,
    history[run_start].1, history[run_start].6,
    history[-1].1,
    arrayMax(arrayMap(s -> indexOf(['prospecting', 'qualified', 'proposal', 'negotiation', 'won'], s), stages)),
    pasts[-1] AS close_passed_at,
    if(isNull(pasts[overdue_start]), NULL, greatest(history[overdue_start].1, pasts[overdue_start])),
    -- The longest an earlier state j of the run had been past its date when state j + 1 began
    -- (the views compare it with the critical days: greatest(at_j, past_j + N days) < at_j+1).
    arrayMax(arrayMap(
        j -> if(j >= overdue_start AND isNotNull(pasts[j]) AND history[j].1 < history[j + 1].1,
                toUnixTimestamp64Micro(history[j + 1].1) - toUnixTimestamp64Micro(assumeNotNull(pasts[j])), 0),
        range(1, toUInt32(length(history))))),
    last_activity_at,
    now64(6, 'UTC'),
    bitShiftLeft(toUInt256(rows_read), 128) + toUInt256(dedup_sum)
FROM
(
    SELECT
        *,
        -- Overdue (contract §6) holds from midnight after expected_close_date (reporting time
        -- zone). pasts[i] is that moment for state i (NULL without a date).
        arrayMap(x -> toTimeZone(toDateTime64(x.11 + 1, 6, '{tz}'), 'UTC'), history) AS pasts,
        -- links[j]: an overdue episode that holds in state j + 1 from its start reaches back
        -- into state j (open, dated, already overdue before state j + 1 began).
        arrayMap(
            j -> ifNull(
                history[j].5 IN ('prospecting', 'qualified', 'proposal', 'negotiation')
                -- (greatest() skips NULLs: a state without a date is checked first.)
                AND isNotNull(pasts[j]) AND isNotNull(pasts[j + 1])
                AND greatest(history[j].1, pasts[j]) < history[j + 1].1
                AND pasts[j + 1] <= history[j + 1].1,
                0),
            range(1, toUInt32(length(history)))) AS links,
        arrayFirstIndex(x -> NOT x, arrayReverse(links)) AS first_break,
        -- The first state of the unbroken overdue run that ends with the current state.
        length(history) - if(first_break = 0, length(links), first_break - 1) AS overdue_start
    FROM ({history})
)
"""

# Deal KPIs of (day, rep) cells: every deal created or closed in a cell has a deal event in
# it, so the deals with a deal event in the cell are the candidates; their facts come from all
# of their deal events. The version counts the cell's rows and the candidates' rows.
_DEAL_CELLS = """
INSERT INTO {db}.kpi_deal_cells
WITH
    cell_rows AS
    (
        SELECT rep_id, day, deal_id, dedup_version
        FROM {db}.events_by_cell FINAL
        WHERE event_type = 'deal' AND ({cells})
    ),
    facts AS
    (
        SELECT
            deal_id, rows_read, dedup_sum,
            history[1].13 AS created_day, history[1].6 AS created_by,
            history[run_start].13 AS closed_day, history[run_start].6 AS closed_by,
            multiIf(stages[-1] = 'won', 'won', stages[-1] = 'lost', 'lost', 'open') AS status,
            history[-1].8 AS amount
        FROM ({history})
    ),
    cell_reads AS
    (
        SELECT rep_id, day, count() AS rows_read, sum(dedup_version) AS dedup_sum
        FROM cell_rows GROUP BY rep_id, day
    ),
    cell_deals AS
    (
        SELECT p.rep_id AS rep_id, p.day AS day,
            countIf(f.created_day = p.day AND f.created_by = p.rep_id) AS deals_created,
            countIf(f.status = 'won' AND f.closed_day = p.day AND f.closed_by = p.rep_id) AS deals_won,
            countIf(f.status = 'lost' AND f.closed_day = p.day AND f.closed_by = p.rep_id) AS deals_lost,
            toDecimal128(sumIf(f.amount, f.status = 'won' AND f.closed_day = p.day AND f.closed_by = p.rep_id), 4)
                AS won_amount,
            sumIf(dateDiff('day', f.created_day, f.closed_day),
                  f.status = 'won' AND f.closed_day = p.day AND f.closed_by = p.rep_id) AS cycle_days_sum,
            sum(f.rows_read) AS rows_read,
            sum(toUInt256(f.dedup_sum)) AS dedup_sum
        FROM (SELECT DISTINCT rep_id, day, deal_id FROM cell_rows) AS p
        INNER JOIN facts AS f ON f.deal_id = p.deal_id
        GROUP BY p.rep_id, p.day
    )
SELECT
    r.day, r.rep_id, d.deals_created, d.deals_won, d.deals_lost, d.won_amount, d.cycle_days_sum,
    bitShiftLeft(toUInt256(r.rows_read + d.rows_read), 128) + toUInt256(r.dedup_sum) + d.dedup_sum
FROM cell_reads AS r
INNER JOIN cell_deals AS d ON d.rep_id = r.rep_id AND d.day = r.day
"""


def _hex_list(values: Iterable[str]) -> str:
    """Values as one string of hex codes: needs no escaping, keeps every possible id intact."""
    return ",".join(value.encode().hex() for value in values)


def _cells_condition(cells: Sequence[tuple[str, date]]) -> str:
    text = ",".join(f"{rep.encode().hex()}:{day.isoformat()}" for rep, day in cells)
    return (
        "(rep_id, day) IN (SELECT unhex(splitByChar(':', c)[1]), toDate(splitByChar(':', c)[2]) "
        f"FROM (SELECT arrayJoin(splitByChar(',', '{text}')) AS c))"
    )


def _deals_condition(deal_ids: Iterable[str]) -> str:
    return f"deal_id IN (SELECT unhex(arrayJoin(splitByChar(',', '{_hex_list(deal_ids)}'))))"


def _chunks(items: Sequence[Any], size: int = KEY_CHUNK) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class LiveTables:
    """Writes the key-ordered rows and recomputes the live rows a batch touched."""

    def __init__(self, client: Client, settings: Settings) -> None:
        self.client = client
        self.db = settings.clickhouse_database
        self.tz = settings.reporting_timezone

    def _command(self, sql: str) -> None:
        # The key lists travel in the query text: allow for them.
        self.client.command(sql, settings={"max_query_size": len(sql) + 4096})

    def write_keyed(self, new_events: Sequence[tuple[Any, ...]]) -> None:
        """Write the key-ordered rows of events about to be inserted into ``events``.

        Called before the insert into ``events``: a crash in between leaves rows that the
        replayed batch writes again (same key and event_id: collapsed), never an event in
        ``events`` missing here.
        """
        if not new_events:
            return
        columns = list(zip(*new_events, strict=True))
        self.client.insert(
            "events_by_cell",
            [columns[_I[name]] for name in CELL_COLUMNS],
            column_names=CELL_COLUMNS,
            database=self.db,
            column_oriented=True,
        )
        linked = [row for row in new_events if row[_I["deal_id"]]]
        if linked:
            linked_columns = list(zip(*linked, strict=True))
            self.client.insert(
                "events_by_deal",
                [linked_columns[_I[name]] for name in DEAL_COLUMNS],
                column_names=DEAL_COLUMNS,
                database=self.db,
                column_oriented=True,
            )
        occurred, event_ids, reps = columns[_I["occurred_at"]], columns[_I["event_id"]], columns[_I["rep_id"]]
        contact = [
            (event_type == "visit" and visit == "completed") or (event_type == "call" and call == "connected")
            for event_type, visit, call in zip(
                columns[_I["event_type"]],
                columns[_I["visit_outcome"]],
                columns[_I["call_outcome"]],
                strict=True,
            )
        ]
        activity = list(zip(occurred, event_ids, reps, strict=True))
        self.client.insert(
            "customer_live",
            [
                columns[_I["customer_id"]],
                activity,
                activity,
                [int(flag) for flag in contact],
                [at if flag else 0 for at, flag in zip(occurred, contact, strict=True)],
            ],
            column_names=("customer_id", "first_activity", "latest_activity", "contacted", "last_contact_at"),
            database=self.db,
            column_oriented=True,
        )
        self.client.insert(
            "event_clock",
            [[1], [max(occurred)]],
            column_names=("clock", "latest_occurred_at"),
            database=self.db,
            column_oriented=True,
        )

    def touched(self, events: Sequence[tuple[Any, ...]]) -> tuple[list[str], list[tuple[str, date]]]:
        """The deals and (rep, day) cells of ``events``, the day computed as events_by_cell does."""
        deal_ids = sorted({row[_I["deal_id"]] for row in events if row[_I["deal_id"]]})
        moments = sorted({(row[_I["rep_id"]], row[_I["occurred_at"]]) for row in events})
        cells: set[tuple[str, date]] = set()
        for chunk in _chunks(moments):
            text = ",".join(f"{rep.encode().hex()}:{int(at)}" for rep, at in chunk)
            sql = (
                "SELECT DISTINCT unhex(splitByChar(':', c)[1]), "
                f"toDate(fromUnixTimestamp64Micro(toInt64(splitByChar(':', c)[2]), 'UTC'), '{self.tz}') "
                f"FROM (SELECT arrayJoin(splitByChar(',', '{text}')) AS c)"
            )
            cells.update(self._rows(sql))
        return deal_ids, sorted(cells)

    def _rows(self, sql: str) -> list[tuple[Any, ...]]:
        result = self.client.query(sql, settings={"max_query_size": len(sql) + 4096})
        return [tuple(row) for row in result.result_rows]

    def refresh(self, events: Sequence[tuple[Any, ...]]) -> None:
        """Recompute the live rows of everything ``events`` touched (call after inserting them)."""
        if not events:
            return
        deal_ids, cells = self.touched(events)
        self.refresh_keys(deal_ids, cells)

    def refresh_keys(self, deal_ids: Sequence[str], activity_cells: Sequence[tuple[str, date]]) -> None:
        db = self.db
        deal_cells: set[tuple[str, date]] = set()
        for chunk in _chunks(deal_ids):
            condition = _deals_condition(chunk)
            rows = f"{db}.events_by_deal FINAL WHERE {condition}"
            self._command(_DEAL_LIVE.format(db=db, tz=self.tz, history=_DEAL_HISTORY.format(rows=rows)))
            deal_cells.update(
                self._rows(
                    f"SELECT DISTINCT rep_id, day FROM {db}.events_by_deal FINAL "
                    f"WHERE event_type = 'deal' AND {condition}"
                )
            )
        for chunk in _chunks(list(activity_cells)):
            self._command(_ACTIVITY_CELLS.format(db=db, cells=_cells_condition(chunk), version=_VERSION))
        for chunk in _chunks(sorted(deal_cells)):
            self._deal_cells(_cells_condition(chunk))

    def _deal_cells(self, cells: str) -> None:
        db = self.db
        rows = f"{db}.events_by_deal FINAL WHERE event_type = 'deal' AND deal_id IN (SELECT deal_id FROM cell_rows)"
        self._command(_DEAL_CELLS.format(db=db, cells=cells, history=_DEAL_HISTORY.format(rows=rows)))

    def rebuild(self, from_scratch: bool = False, progress: Callable[[int, int], None] | None = None) -> None:
        """Recompute every key-ordered and live row from ``events``.

        Safe while workers write, unless ``from_scratch``: it only adds rows (the key-ordered
        ones collapse with those already there) and its recomputations read everything stored,
        so their versions are at least those of any worker's concurrent one. ``from_scratch``
        empties the tables first, as a change of time zone needs (rows move to other days):
        events written meanwhile may then be missing until a rebuild runs again with workers stopped.
        """
        db = self.db
        steps = 2 + 2 * REBUILD_BUCKETS
        done = 0

        def step() -> None:
            nonlocal done
            done += 1
            if progress is not None:
                progress(done, steps)

        if from_scratch:
            for table in (*KEYED_TABLES, *LIVE_TABLES):
                self.client.command(f"TRUNCATE TABLE IF EXISTS {db}.{table}")
        cell_columns = ", ".join(CELL_COLUMNS)
        deal_columns = ", ".join(DEAL_COLUMNS)
        self.client.command(
            f"INSERT INTO {db}.events_by_cell ({cell_columns}) SELECT {cell_columns} FROM {db}.events FINAL"
        )
        self.client.command(
            f"INSERT INTO {db}.events_by_deal ({deal_columns}) SELECT {deal_columns} FROM {db}.events FINAL "
            "WHERE deal_id != ''"
        )
        self.client.command(
            f"INSERT INTO {db}.customer_live SELECT customer_id, min((occurred_at, event_id, rep_id)), "
            "max((occurred_at, event_id, rep_id)), max(toUInt8(is_contact)), "
            "max(if(is_contact, occurred_at, toDateTime64(0, 6, 'UTC'))) FROM ("
            "SELECT customer_id, occurred_at, event_id, rep_id, "
            "(event_type = 'visit' AND visit_outcome = 'completed') "
            "OR (event_type = 'call' AND call_outcome = 'connected') AS is_contact "
            f"FROM {db}.events FINAL) GROUP BY customer_id"
        )
        # max over every stored copy, as "now" with --clock event always was.
        self.client.command(
            f"INSERT INTO {db}.event_clock SELECT 1, max(occurred_at) FROM {db}.events HAVING count() > 0"
        )
        step()
        self.client.command(_ACTIVITY_CELLS.format(db=db, cells="1", version=_VERSION))
        step()
        for bucket in range(REBUILD_BUCKETS):
            where = f"cityHash64(deal_id) % {REBUILD_BUCKETS} = {bucket}"
            rows = f"{db}.events_by_deal FINAL WHERE {where}"
            self.client.command(_DEAL_LIVE.format(db=db, tz=self.tz, history=_DEAL_HISTORY.format(rows=rows)))
            step()
        for bucket in range(REBUILD_BUCKETS):
            # Cells by rep hash: every deal event of a cell is in the same bucket.
            self._deal_cells(f"cityHash64(rep_id) % {REBUILD_BUCKETS} = {bucket}")
            step()
