"""`salespulse bench --views`: the dashboard queries over a large history, live views vs the baseline.

A history of 1,000 reps in 100 teams, 50,000 customers and one year is generated inside
ClickHouse (INSERT ... SELECT FROM numbers(), far faster than publishing it), the live tables
are built from it with the product's own ``LiveTables.rebuild``, and each dashboard query is
timed against the contract views and against the views as they were before the live tables
(``baseline_views.sql``: computed from ``events FINAL`` at every query), in the same process on
the same engine. Queries are timed as a BI tool sends them: over ClickHouse's HTTP interface,
served by the worker's own query endpoint (``embedded.query_server``, read-only, with the
configured limits) on the same engine, median of ``runs`` after one warm-up; rows are compared
live vs baseline over the direct client.
"""

import asyncio
import math
import re
import statistics
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from string import Template
from typing import Any

import clickhouse_connect
from clickhouse_connect.driver.exceptions import DatabaseError

from salespulse.config import Settings
from salespulse.embedded.query_server.limits import limits_from_settings
from salespulse.embedded.query_server.service import QueryEndpoint
from salespulse.runtime.ports import free_port
from salespulse.sinks.clickhouse.client import connect
from salespulse.sinks.clickhouse.live import LiveTables
from salespulse.sinks.clickhouse.migrations import apply_migrations, statements, view_parameters

BASELINE_VIEWS = (
    "events_final", "org_history", "deal_facts", "deals_attributed", "deals_current", "kpi_daily",
    "stage_conversion", "pipeline_current", "targets", "target_attainment", "leaderboard", "followup_due",
    "stall_reasons", "stall_alerts", "stalled_deals",
)  # fmt: skip

# "Now" with --clock event before the live tables: the latest occurred_at of every stored event.
BASELINE_NOW = "(SELECT toDateTime64(max(occurred_at), 6, 'UTC') FROM {db}.events)"

# name → SQL with {v} for the view prefix ('' live, 'base_' baseline).
DASHBOARD_QUERIES: dict[str, str] = {
    "kpi_daily, every team, one month": "SELECT * FROM {v}kpi_daily WHERE level = 'team' "
    "AND day >= '2025-06-01' AND day < '2025-07-01'",
    "kpi_daily, one rep, one month": "SELECT * FROM {v}kpi_daily WHERE level = 'rep' AND entity_id = 'rep-0042' "
    "AND day >= '2025-06-01' AND day < '2025-07-01'",
    "deals_current, open deals of one team": "SELECT * FROM {v}deals_current WHERE team_id = 'team-007' "
    "AND status = 'open'",
    "pipeline_current, company": "SELECT * FROM {v}pipeline_current WHERE level = 'company'",
    "stage_conversion, company": "SELECT * FROM {v}stage_conversion WHERE level = 'company'",
    "leaderboard, one month": "SELECT * FROM {v}leaderboard WHERE period = 'month' AND period_start = '2025-06-01'",
    "target_attainment, one month": "SELECT * FROM {v}target_attainment WHERE period = 'month' "
    "AND period_start = '2025-06-01'",
    "stalled_deals, one team": "SELECT * FROM {v}stalled_deals WHERE team_id = 'team-007'",
    "followup_due, one rep": "SELECT * FROM {v}followup_due WHERE rep_id = 'rep-0042'",
}

# Columns that read the wall clock whatever the clock setting (left out of the comparison):
# stalled_deals' detected_at is the query's time for a deal the stall monitor has not noticed.
WALL_CLOCK_COLUMNS = {"stalled_deals, one team": "detected_at"}

_GENERATE = """
INSERT INTO {db}.events
SELECT
    concat('h', toString(number)) AS event_id,
    CAST(multiIf(k < 55, 'call', k < 74, 'visit', k < 92, 'deal', 'feedback') AS Enum8('visit' = 1, 'call' = 2,
         'deal' = 3, 'feedback' = 4)) AS event_type,
    toDateTime64('2025-01-01 00:00:00', 6, 'UTC') + toIntervalSecond(intDiv(number * 31536000, {n})
        + (cityHash64(number, 1) % 3600)) AS occurred_at,
    concat('rep-', leftPad(toString(deal % 1000), 4, '0')) AS rep_id,
    concat('cust-', leftPad(toString(deal % 50000), 7, '0')) AS customer_id,
    if(event_type = 'deal' OR cityHash64(number, 2) % 10 < 4, concat('deal-', toString(deal)), '') AS deal_id,
    'bench', 1,
    if(event_type = 'visit', toUInt32(10 + cityHash64(number, 3) % 110), 0),
    if(event_type = 'visit', ['completed', 'completed', 'completed', 'cancelled', 'no_show'][1 + cityHash64(number, 4) % 5], ''),
    if(event_type = 'call', ['outbound', 'inbound'][1 + cityHash64(number, 5) % 2], ''),
    if(event_type = 'call', toUInt32(cityHash64(number, 6) % 1800), 0),
    if(event_type = 'call', ['connected', 'connected', 'no_answer', 'busy', 'voicemail'][1 + cityHash64(number, 7) % 5], ''),
    if(event_type = 'deal', ['prospecting', 'qualified', 'proposal', 'negotiation', 'won', 'lost'][1 + least(5, intDiv(number % 7919, 1400))], ''),
    if(event_type = 'deal', toDecimal128(1000 + cityHash64(number, 8) % 500000, 4), NULL),
    if(event_type = 'deal', toDecimal128(1000 + cityHash64(number, 8) % 500000, 10), NULL),
    if(event_type = 'deal', 'CNY', ''),
    if(event_type = 'deal', toDate(occurred_at) + 30, NULL),
    '',
    if(event_type = 'feedback', ['csat', 'nps'][1 + cityHash64(number, 9) % 2], ''),
    if(event_type = 'feedback', toUInt8(cityHash64(number, 10) % 6), 0),
    if(event_type = 'feedback', ['praise', 'complaint', 'suggestion'][1 + cityHash64(number, 11) % 3], ''),
    '', 'bench.deals', toUInt32(number % 12), number, occurred_at, toUInt64(9223372036854775807) - number
FROM
(
    SELECT number, cityHash64(number) % 100 AS k,
           -- about four deal events per deal over a few weeks: deals are local in time
           intDiv(number, 40) * 10 + cityHash64(number, 12) % 10 AS deal
    FROM numbers({n})
)
"""


@dataclass
class ViewsFigures:
    events: int
    generate_seconds: float
    rebuild_seconds: float
    live_ms: dict[str, float] = field(default_factory=dict)
    baseline_ms: dict[str, float] = field(default_factory=dict)


def _median_ms(client: Any, sql: str, runs: int) -> float:
    """Median of ``runs`` after a warm-up; NaN when the endpoint refuses the query in any run
    (one of its limits, e.g. memory: what a BI tool would get)."""
    try:
        client.query(sql)  # warm up
        times = []
        for _ in range(runs):
            started = time.perf_counter()
            client.query(sql)
            times.append((time.perf_counter() - started) * 1000)
    except DatabaseError:
        return math.nan
    return statistics.median(times)


@contextmanager
def _query_endpoint(settings: Settings) -> Iterator[Any]:
    """The worker's HTTP query endpoint over the bench's engine, on a thread; yields an HTTP client."""
    port = free_port()
    endpoint = QueryEndpoint(
        settings.effective_clickhouse_url.removeprefix("chdb://"),
        settings.clickhouse_database,
        "127.0.0.1",
        port,
        limits=limits_from_settings(settings),
    )
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="query-endpoint", daemon=True)
    thread.start()
    asyncio.run_coroutine_threadsafe(endpoint.start(), loop).result(60)
    client = clickhouse_connect.get_client(host="127.0.0.1", port=port, database=settings.clickhouse_database)
    try:
        yield client
    finally:
        client.close()
        asyncio.run_coroutine_threadsafe(endpoint.stop(), loop).result(60)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)


def _baseline_sql(db: str, parameters: dict[str, str]) -> list[str]:
    text = resources.files("salespulse.bench").joinpath("baseline_views.sql").read_text(encoding="utf-8")
    names = "|".join(BASELINE_VIEWS)
    text = re.sub(rf"\$db\.({names})\b", r"$db.base_\1", text)
    return statements(Template(text).substitute({**parameters, "db": db}))


def run_views_bench(workdir: Path, events: int, runs: int = 5, baseline: bool = True) -> ViewsFigures:
    # Event clock: "now" is the latest event, so live and baseline rows compare exactly, and the
    # live views' "now" (event_clock) is timed against the baseline's (a scan of events).
    settings = Settings(data_dir=workdir, reporting_timezone="Asia/Shanghai", clock="event")
    db = settings.clickhouse_database
    client = connect(settings)
    apply_migrations(client, settings)
    started = time.perf_counter()
    client.command(_GENERATE.format(db=db, n=events))
    client.command(
        f"INSERT INTO {db}.org_records SELECT concat(r, '|2024-01-01'), r, r, "
        "concat('team-', leftPad(toString(n % 100), 3, '0')), 'T', 'm', concat('region-', toString(n % 10)), "
        "'2024-01-01', 0, 'bench.org', 0, n, now64(6), 1 FROM (SELECT number AS n, "
        "concat('rep-', leftPad(toString(number), 4, '0')) AS r FROM numbers(1000))"
    )
    client.command(
        f"INSERT INTO {db}.target_records SELECT concat('team|', t, '|won_amount|month|2025-06-01'), 'team', t, "
        "'won_amount', 'month', '2025-06-01', 1000000, 0, 'bench.targets', 0, n, now64(6), 1 FROM "
        "(SELECT number AS n, concat('team-', leftPad(toString(number), 3, '0')) AS t FROM numbers(100))"
    )
    client.command(
        f"INSERT INTO {db}.customer_records SELECT c, c, ['A', 'B', 'C'][1 + n % 3], NULL, 0, 'bench.customers', "
        "0, n, now64(6), 1 FROM (SELECT number AS n, concat('cust-', leftPad(toString(number), 7, '0')) AS c "
        "FROM numbers(50000))"
    )
    generated = time.perf_counter() - started
    started = time.perf_counter()
    LiveTables(client, settings).rebuild(from_scratch=True)
    rebuilt = time.perf_counter() - started
    figures = ViewsFigures(events, generated, rebuilt)
    if baseline:
        before = {**view_parameters(settings), "now": BASELINE_NOW.format(db=db)}
        for statement in _baseline_sql(db, before):
            client.command(statement)
    with _query_endpoint(settings) as http:
        for name, sql in DASHBOARD_QUERIES.items():
            # Every row travels back to the client, as to a dashboard.
            figures.live_ms[name] = _median_ms(http, sql.format(v=f"{db}."), runs)
            if baseline:
                figures.baseline_ms[name] = _median_ms(http, sql.format(v=f"{db}.base_"), runs)
    for name, sql in DASHBOARD_QUERIES.items():
        if baseline:
            columns = f"* EXCEPT ({WALL_CLOCK_COLUMNS[name]})" if name in WALL_CLOCK_COLUMNS else "*"
            live_rows = client.query(
                f"SELECT {columns} FROM ({sql.format(v=f'{db}.')}) ORDER BY ALL"
            ).result_rows
            base_rows = client.query(
                f"SELECT {columns} FROM ({sql.format(v=f'{db}.base_')}) ORDER BY ALL"
            ).result_rows
            if live_rows != base_rows:
                raise RuntimeError(f"{name}: the live views differ from the baseline views")
    client.close()
    return figures


def _run_in_child(events: int, runs: int) -> dict[str, Any]:
    import tempfile

    with tempfile.TemporaryDirectory(prefix="salespulse-views-") as workdir:
        return run_views_bench(Path(workdir), events, runs).__dict__


def run_views_bench_isolated(events: int, runs: int = 5) -> ViewsFigures:
    """``run_views_bench`` in a process of its own: chDB opens one store per process, and each
    history size gets a fresh one."""
    import multiprocessing

    with multiprocessing.get_context("spawn").Pool(1) as pool:
        return ViewsFigures(**pool.apply(_run_in_child, (events, runs)))
