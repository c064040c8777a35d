"""Live KPIs in the terminal for `salespulse up` (a rich display refreshed in place).

Everything shown comes from the contract views through the query endpoint, exactly as a BI
tool would read it, plus the worker's own counters from /metrics.
"""

import contextlib
import re
import urllib.request
from collections.abc import Iterator
from datetime import datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from rich.console import Console, Group
from rich.live import Live
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from salespulse.streams.querying import QueryFailed, query_client
from salespulse.streams.settings import Settings

REFRESH_SECONDS = 2.0
TOP_REPS = 5

_COUNTER = re.compile(r"^salespulse_events_(consumed|accepted|duplicate|rejected)_total\{(.*)\} ([0-9.e+]+)$")


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

        (today_row,) = self._rows(
            "SELECT sum(visits), sum(calls), sum(calls_connected), sum(new_customers), sum(deals_created), "
            "sum(deals_won), sum(deals_lost), sum(won_amount), sum(csat_count), sum(nps_count) "
            f"FROM kpi_daily WHERE level = 'company' AND day = '{today}'"
        ) or [(0,) * 10]
        (month_row,) = self._rows(
            "SELECT sum(deals_won), sum(deals_lost), sum(won_amount), sum(csat_satisfied), sum(csat_count), "
            "sum(nps_promoters), sum(nps_detractors), sum(nps_count) "
            f"FROM kpi_daily WHERE level = 'company' AND day >= '{month_start}'"
        ) or [(0,) * 8]

        activity = Table(title=f"Today ({today}, {tz})", expand=True)
        for column in (
            "visits",
            "calls (connected)",
            "new customers",
            "deals created",
            "won / lost",
            f"won {currency}",
        ):
            activity.add_column(column, justify="right")
        visits, calls, connected, new_customers, created, won, lost, won_amount = today_row[:8]
        activity.add_row(
            str(visits or 0), f"{calls or 0} ({connected or 0})", str(new_customers or 0), str(created or 0),
            f"{won or 0} / {lost or 0}", _money(won_amount),
        )  # fmt: skip

        m_won, m_lost, m_amount, satisfied, csat, promoters, detractors, nps = month_row
        month = Table(title=f"This month (since {month_start})", expand=True)
        for column in ("win rate", f"revenue {currency}", "avg deal size", "CSAT", "NPS"):
            month.add_column(column, justify="right")
        month.add_row(
            _percent(m_won, (m_won or 0) + (m_lost or 0)),
            _money(m_amount),
            _money(Decimal(m_amount or 0) / m_won) if m_won else "–",
            _percent(satisfied, csat),
            f"{100 * ((promoters or 0) - (detractors or 0)) / nps:.0f}" if nps else "–",
        )

        regions = Table(title=f"Revenue by region this month ({currency})", expand=True)
        regions.add_column("region")
        regions.add_column("won", justify="right")
        regions.add_column("revenue", justify="right")
        for region, region_won, revenue in self._rows(
            "SELECT entity_id, sum(deals_won), sum(won_amount) AS revenue FROM kpi_daily "
            f"WHERE level = 'region' AND day >= '{month_start}' GROUP BY entity_id ORDER BY revenue DESC"
        ):
            regions.add_row(region, str(region_won), _money(revenue))

        reps = Table(title=f"Top reps this month (月度最佳销售, {currency})", expand=True)
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

        pipeline = Table(title=f"Open pipeline ({currency})", expand=True)
        for column in ("stage", "open deals", "amount", "weighted"):
            pipeline.add_column(column, justify="right" if column != "stage" else "left")
        for stage, deals, amount, weighted in self._rows(
            "SELECT stage, open_deals, open_amount, weighted_amount FROM pipeline_current "
            "WHERE level = 'company' ORDER BY indexOf(['prospecting','qualified','proposal','negotiation'], stage)"
        ):
            pipeline.add_row(stage, str(deals), _money(amount), _money(weighted))

        return Group(
            activity,
            month,
            regions,
            reps,
            pipeline,
            Text(self._pipeline_health(), style="dim"),
            Text(
                f"Query the views: salespulse sql \"SELECT * FROM kpi_daily WHERE day = today() AND level = 'team'\"  "
                f"·  curl 'http://{self.settings.sql_host}:{self.settings.sql_port}/?query=SELECT+1'  ·  Ctrl-C stops",
                style="dim",
            ),
        )

    def _pipeline_health(self) -> str:
        url = f"http://{self.settings.web_host}:{self.settings.web_port}/metrics"
        totals = {"consumed": 0.0, "accepted": 0.0, "duplicate": 0.0, "rejected": 0.0}
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                for line in response.read().decode().splitlines():
                    match = _COUNTER.match(line)
                    if match:
                        totals[match.group(1)] += float(match.group(3))
        except OSError:
            return "pipeline: worker metrics unavailable"
        return (
            f"pipeline (this worker): consumed {totals['consumed']:.0f} · accepted {totals['accepted']:.0f} · "
            f"duplicates {totals['duplicate']:.0f} · rejected to DLQ {totals['rejected']:.0f}"
        )
