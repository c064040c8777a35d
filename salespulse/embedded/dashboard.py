"""Live KPIs in the terminal for `salespulse up` (a rich display refreshed in place).

Everything shown comes from the contract views through the query endpoint, exactly as a BI
tool would read it, plus the worker's own counters from /metrics.
"""

import contextlib
from collections.abc import Iterator
from datetime import date, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from rich.console import Console, Group
from rich.live import Live
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from salespulse.config import Settings
from salespulse.runtime.metrics_reader import read_metrics, total
from salespulse.sinks.clickhouse.querying import QueryFailed, query_client

REFRESH_SECONDS = 2.0
TOP_REPS = 5

_OVERVIEW_COLUMNS = (
    "visits",
    "calls",
    "calls_connected",
    "new_customers",
    "deals_created",
    "deals_won",
    "deals_lost",
    "won_amount",
    "csat_satisfied",
    "csat_count",
    "nps_promoters",
    "nps_detractors",
    "nps_count",
)


def _money(value: Any) -> str:
    return f"{Decimal(value or 0):,.2f}"


def _percent(numerator: Any, denominator: Any) -> str:
    return f"{100 * float(numerator) / float(denominator):.1f}%" if denominator else "–"


class Dashboard:
    """Queries the views every refresh and renders one screen."""

    def __init__(self, settings: Settings, console: Console) -> None:
        self.settings = settings
        self.console = console
        self._client: Any = None
        self._live: Live | None = None
        self._last = 0.0

    @contextlib.contextmanager
    def live(self) -> Iterator["Dashboard"]:
        with Live(self.render(), console=self.console, refresh_per_second=1, transient=False) as live:
            self._live = live
            try:
                yield self
            finally:
                self._live = None

    def refresh(self) -> None:
        now = datetime.now().timestamp()
        if self._live is None or now - self._last < REFRESH_SECONDS:
            return
        self._last = now
        self._live.update(self.render())

    def _rows(self, sql: str) -> list[tuple[Any, ...]]:
        if self._client is None:
            self._client = query_client(self.settings)
        return [tuple(row) for row in self._client.query(sql).result_rows]

    def render(self) -> Group | Panel:
        try:
            return self._render()
        except (QueryFailed, Exception) as error:  # the worker may be restarting: show why, keep going
            self._client = None
            return Panel(
                Text(f"waiting for the worker: {str(error)[:200]}", style="yellow"), title="salespulse"
            )

    def _render(self) -> Group:
        tz = self.settings.reporting_timezone
        today = datetime.now(ZoneInfo(tz)).date()
        month_start = today.replace(day=1)
        currency = self.settings.reporting_currency

        kpis = self._company_kpis(today, month_start)
        overview = Table(title=f"Company KPIs ({tz})")
        overview.add_column("")
        overview.add_column(f"today {today:%m-%d}", justify="right")
        overview.add_column(f"since {month_start:%m-%d}", justify="right")
        for label, render in (
            ("visits", lambda k: str(k["visits"])),
            ("calls (connected)", lambda k: f"{k['calls']} ({k['calls_connected']})"),
            ("new customers", lambda k: str(k["new_customers"])),
            ("deals created", lambda k: str(k["deals_created"])),
            ("won / lost", lambda k: f"{k['deals_won']} / {k['deals_lost']}"),
            ("win rate", lambda k: _percent(k["deals_won"], k["deals_won"] + k["deals_lost"])),
            (f"revenue {currency}", lambda k: _money(k["won_amount"])),
            ("avg deal size", lambda k: _money(k["won_amount"] / k["deals_won"]) if k["deals_won"] else "–"),
            ("CSAT", lambda k: _percent(k["csat_satisfied"], k["csat_count"])),
            (
                "NPS",
                lambda k: (
                    f"{100 * (k['nps_promoters'] - k['nps_detractors']) / k['nps_count']:.0f}"
                    if k["nps_count"]
                    else "–"
                ),
            ),
        ):
            overview.add_row(label, render(kpis["today"]), render(kpis["month"]))

        regions = Table(title=f"Revenue by region this month ({currency})")
        regions.add_column("region")
        regions.add_column("won", justify="right")
        regions.add_column("revenue", justify="right")
        for region, region_won, revenue in self._rows(
            "SELECT entity_id, sum(deals_won), sum(won_amount) AS revenue FROM kpi_daily "
            f"WHERE level = 'region' AND day >= '{month_start}' GROUP BY entity_id ORDER BY revenue DESC"
        ):
            regions.add_row(region, str(region_won), _money(revenue))

        reps = Table(title=f"Top reps this month (月度最佳销售, {currency})")
        reps.add_column("#", justify="right")
        reps.add_column("rep")
        reps.add_column("revenue", justify="right")
        reps.add_column("won", justify="right")
        reps.add_column("visits", justify="right")
        for rank, (rep, revenue, rep_won, rep_visits) in enumerate(
            self._rows(
                "SELECT entity_id, sum(won_amount) AS revenue, sum(deals_won), sum(visits) FROM kpi_daily "
                f"WHERE level = 'rep' AND day >= '{month_start}' GROUP BY entity_id "
                f"ORDER BY revenue DESC, entity_id LIMIT {TOP_REPS}"
            ),
            start=1,
        ):
            reps.add_row(str(rank), rep, _money(revenue), str(rep_won), str(rep_visits))

        pipeline = Table(title=f"Open pipeline ({currency})")
        for column in ("stage", "open deals", "amount", "weighted"):
            pipeline.add_column(column, justify="right" if column != "stage" else "left")
        for stage, deals, amount, weighted in self._rows(
            "SELECT stage, open_deals, open_amount, weighted_amount FROM pipeline_current "
            "WHERE level = 'company' ORDER BY indexOf(['prospecting','qualified','proposal','negotiation'], stage)"
        ):
            pipeline.add_row(stage, str(deals), _money(amount), _money(weighted))

        # Two columns, so the whole screen fits a normal terminal.
        layout = Table.grid(expand=True, padding=(0, 2))
        layout.add_column(ratio=1)
        layout.add_column(ratio=1)
        layout.add_row(overview, reps)
        layout.add_row(regions, pipeline)
        return Group(
            layout,
            Text(self._pipeline_health(), style="dim"),
            Text(
                "query:  salespulse sql \"SELECT * FROM kpi_daily WHERE day = today() AND level = 'team'\"",
                style="dim",
            ),
            Text(
                f"        curl 'http://{self.settings.sql_host}:{self.settings.sql_port}/?database="
                f"{self.settings.clickhouse_database}&query=SELECT+*+FROM+pipeline_current'   ·   Ctrl-C stops",
                style="dim",
            ),
        )

    def _company_kpis(self, today: date, month_start: date) -> dict[str, dict[str, Any]]:
        """Company totals of the dashboard's KPI columns for today and for the month so far."""
        columns = list(_OVERVIEW_COLUMNS)
        sums = ", ".join(
            f"sumIf({column}, day = '{today}'), sumIf({column}, day >= '{month_start}')" for column in columns
        )
        rows = self._rows(f"SELECT {sums} FROM kpi_daily WHERE level = 'company' AND day >= '{month_start}'")
        values = rows[0] if rows else (0,) * (2 * len(columns))
        return {
            "today": {column: values[2 * i] or 0 for i, column in enumerate(columns)},
            "month": {column: values[2 * i + 1] or 0 for i, column in enumerate(columns)},
        }

    def _pipeline_health(self) -> str:
        url = f"http://{self.settings.web_host}:{self.settings.web_port}/metrics"
        try:
            samples = read_metrics(url, timeout=1)
        except OSError:
            return "pipeline: worker metrics unavailable"
        totals = {
            kind: total(samples, f"salespulse_events_{kind}_total")
            for kind in ("consumed", "accepted", "duplicate", "rejected")
        }
        return (
            f"pipeline (this worker): consumed {totals['consumed']:.0f} · accepted {totals['accepted']:.0f} · "
            f"duplicates {totals['duplicate']:.0f} · rejected to DLQ {totals['rejected']:.0f}"
        )
