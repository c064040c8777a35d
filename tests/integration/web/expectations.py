"""What the manager page and its API must show, computed from the independent models alone.

KPIs, funnel and pipeline come from tests/reference_model.py, targets, leaderboards and
follow-ups from tests/management_scenario.py, stalled deals from tests/stall_model.py; nothing
is read back from ClickHouse. The display rules are docs/web-api.md § "How the page writes
numbers", re-implemented here in Python: amounts with two decimals, percentages and the
average cycle and NPS with one, half away from zero, grouped with commas.
"""

from collections import defaultdict
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any
from zoneinfo import ZoneInfo

from tests.oracle.management_scenario import (
    NOW,
    ManagementScenario,
    expected_attainment,
    expected_followups,
    expected_leaderboard,
)
from tests.oracle.reference_model import DEALS_CURRENT_COLUMNS, KPI_COLUMNS, KPI_INDEX, expected_views
from tests.oracle.stall_model import StalledDeal, stalled_deals

DASH = "—"
OPEN_STAGES = ("prospecting", "qualified", "proposal", "negotiation")
CHILD = {"company": "region", "region": "team", "team": "rep", "rep": None}


# --------------------------------------------------------------------------- periods


@dataclass(frozen=True)
class Span:
    first: date
    last: date

    @property
    def query(self) -> str:
        return f"from={self.first.isoformat()}&to={self.last.isoformat()}"


def month_span(year: int, month: int) -> Span:
    first = date(year, month, 1)
    following = date(year + month // 12, month % 12 + 1, 1)
    return Span(first, following - timedelta(days=1))


def previous_span(kind: str, span: Span) -> Span:
    """SPEC §9's previous period, from the issue's words: the month before, or as long, just before."""
    if kind == "month":
        before = span.first - timedelta(days=1)
        return month_span(before.year, before.month)
    length = (span.last - span.first).days + 1
    return Span(span.first - timedelta(days=length), span.last - timedelta(days=length))


# --------------------------------------------------------------------------- formatting


def _decimal(value: Any) -> Decimal:
    # A float reaches the browser as its shortest repr, and ICU formats that spelling.
    return Decimal(repr(value)) if isinstance(value, float) else Decimal(value)


def _fixed(value: Decimal, places: int) -> str:
    quantum = Decimal(1).scaleb(-places)
    return f"{value.quantize(quantum, rounding=ROUND_HALF_UP):,.{places}f}"


def amount(value: Any) -> str:
    return DASH if value is None else _fixed(_decimal(value), 2)


def count(value: Any) -> str:
    return DASH if value is None else f"{int(value):,}"


def percent(value: Any) -> str:
    return DASH if value is None else _fixed(_decimal(value) * 100, 1) + "%"


def one_decimal(value: Any) -> str:
    return DASH if value is None else _fixed(_decimal(value), 1)


def days(value: Any, lang: str = "en") -> str:
    if value is None:
        return DASH
    return f"{one_decimal(value)} d" if lang == "en" else f"{one_decimal(value)} 天"


CARD_FORMAT = {
    "won_amount": amount,
    "deals_won": count,
    "deals_lost": count,
    "win_rate": percent,
    "avg_deal_size": amount,
    "avg_cycle_days": days,
    "new_customers": count,
    "visits": count,
    "calls": count,
    "connect_rate": percent,
    "csat": percent,
    "nps": one_decimal,
}


def shanghai_minutes(moment: datetime, zone: str) -> str:
    return moment.astimezone(ZoneInfo(zone)).strftime("%Y-%m-%d %H:%M")


# --------------------------------------------------------------------------- the model


def ratio(numerator: Decimal, denominator: Decimal) -> Decimal | None:
    return None if denominator == 0 else numerator / denominator


def derived(sums: dict[str, Decimal]) -> dict[str, Decimal | None]:
    """SPEC §4's ratios from the period's sums."""
    return {
        "win_rate": ratio(sums["deals_won"], sums["deals_won"] + sums["deals_lost"]),
        "avg_deal_size": ratio(sums["won_amount"], sums["deals_won"]),
        "avg_cycle_days": ratio(sums["cycle_days_sum"], sums["deals_won"]),
        "csat": ratio(sums["csat_satisfied"], sums["csat_count"]),
        "nps": ratio(100 * (sums["nps_promoters"] - sums["nps_detractors"]), sums["nps_count"]),
        "connect_rate": ratio(sums["calls_connected"], sums["calls"]),
    }


class PageModel:
    """Every number the page shows for the scenario's events, from the models."""

    def __init__(self, scenario: ManagementScenario, events: list[dict[str, Any]]) -> None:
        base = scenario.base
        self.scenario = scenario
        self.timezone = base.timezone
        self.views = expected_views(
            scenario.org,
            events,
            timezone=base.timezone,
            reporting_currency=base.reporting_currency,
            currency_rates=base.currency_rates,
        )
        self.kpi_rows = self.views["kpi_daily"]
        self.deals = [
            dict(zip(DEALS_CURRENT_COLUMNS, row, strict=True)) for row in self.views["deals_current"]
        ]
        self.latest_day = max(row[0] for row in self.kpi_rows if row[1] == "company")
        self._stalled = stalled_deals(
            scenario.org,
            events,
            NOW,
            timezone=base.timezone,
            reporting_currency=base.reporting_currency,
            currency_rates=base.currency_rates,
        )
        self._followups = expected_followups(replace(scenario, events=events))
        self._leaderboard = expected_leaderboard(self.kpi_rows)
        self._attainment = expected_attainment(
            scenario, self.kpi_rows, self.views["deals_current"], DEALS_CURRENT_COLUMNS
        )

    # KPIs ------------------------------------------------------------------------------------

    def sums(self, level: str, entity: str, span: Span) -> dict[str, Decimal]:
        totals = {name: Decimal(0) for name in KPI_COLUMNS}
        for row in self.kpi_rows:
            if row[1] == level and row[2] == entity and span.first <= row[0] <= span.last:
                for name, index in KPI_INDEX.items():
                    totals[name] += Decimal(row[3 + index])
        return totals

    def card_values(self, level: str, entity: str, span: Span) -> dict[str, Decimal | None]:
        sums = self.sums(level, entity, span)
        return {**sums, **derived(sums)}

    def card_texts(self, level: str, entity: str, span: Span, lang: str = "en") -> dict[str, str]:
        values = self.card_values(level, entity, span)
        return {
            key: (days(values[key], lang) if key == "avg_cycle_days" else format_(values[key]))
            for key, format_ in CARD_FORMAT.items()
        }

    def trend(self, level: str, entity: str, span: Span) -> dict[str, list[Any]]:
        """Per day of the span: revenue and activity; nothing after the latest day with data."""
        by_day: dict[date, list[Any]] = {}
        for row in self.kpi_rows:
            if row[1] == level and row[2] == entity:
                by_day[row[0]] = list(row[3:])
        series: dict[str, list[Any]] = defaultdict(list)
        day = span.first
        while day <= span.last:
            values = by_day.get(day)
            for name in ("won_amount", "deals_won", "visits", "calls"):
                if day > self.latest_day:
                    series[name].append(None)
                else:
                    raw = values[KPI_INDEX[name]] if values else 0
                    series[name].append(float(raw) if name == "won_amount" else int(raw))
            day += timedelta(days=1)
        return dict(series)

    # who is below whom (as the page's docs say: from deals_current) ---------------------------

    def children(self, level: str, entity: str) -> list[str]:
        child = CHILD[level]
        if child is None:
            return []
        if level == "company":
            regions = {row[2] for row in self.kpi_rows if row[1] == "region"}
            return sorted(regions | {deal["region_id"] for deal in self.deals})
        parent_key = {"region": "region_id", "team": "team_id"}[level]
        child_key = {"team": "team_id", "rep": "rep_id"}[child]
        return sorted({deal[child_key] for deal in self.deals if deal[parent_key] == entity})

    def breakdown(self, level: str, entity: str, span: Span) -> list[tuple[str, ...]]:
        """Rows as displayed: name, revenue, deals won, win rate, visits, calls, new customers."""
        child = CHILD[level]
        rows = []
        for member in self.children(level, entity):
            assert child is not None
            values = self.card_values(child, member, span)
            rows.append(
                (
                    values["won_amount"],
                    member,
                    (
                        member,
                        amount(values["won_amount"]),
                        count(values["deals_won"]),
                        percent(values["win_rate"]),
                        count(values["visits"]),
                        count(values["calls"]),
                        count(values["new_customers"]),
                    ),
                )
            )
        rows.sort(key=lambda row: (-row[0], row[1]))
        return [row[2] for row in rows]

    # current state ---------------------------------------------------------------------------

    def funnel(self, level: str, entity: str) -> list[tuple[str, int, int, float]]:
        rows = [row for row in self.views["stage_conversion"] if row[0] == level and row[1] == entity]
        return [(row[2], row[4], row[5], row[6]) for row in sorted(rows, key=lambda row: row[3])]

    def pipeline(self, level: str, entity: str) -> list[tuple[str, int, Decimal, Decimal]]:
        found = {
            row[2]: row for row in self.views["pipeline_current"] if row[0] == level and row[1] == entity
        }
        return [
            (stage, found[stage][3], found[stage][4], found[stage][5])
            if stage in found
            else (stage, 0, Decimal("0.0000"), Decimal("0E-8"))
            for stage in OPEN_STAGES
        ]

    def targets(self, level: str, entity: str, span: Span) -> list[tuple[Any, ...]]:
        """target_attainment rows of the entity whose period overlaps the span, in the page's order."""
        order = ("won_amount", "deals_won", "new_customers", "visits", "calls")
        rows = []
        for row in self._attainment:
            period, start = row[0], row[1]
            months = 1 if period == "month" else 3
            end_month = start.month - 1 + months
            end = date(start.year + end_month // 12, end_month % 12 + 1, 1)
            if row[2] == level and row[3] == entity and start <= span.last and end > span.first:
                rows.append(row)
        return sorted(rows, key=lambda row: (["month", "quarter"].index(row[0]), row[1], order.index(row[4])))

    def leaderboard(
        self, level: str, metric: str, month_start: date, top: int = 10
    ) -> list[tuple[int, str, float]]:
        rows = [
            (row[4], row[5], row[6])
            for row in self._leaderboard
            if row[0] == "month"
            and row[1] == month_start
            and row[2] == level
            and row[3] == metric
            and row[4] <= top
        ]
        return sorted(rows)

    def stalled(self, level: str = "company", entity: str = "all") -> list[StalledDeal]:
        key = {"region": "region_id", "team": "team_id", "rep": "rep_id"}.get(level)
        rows = [row for row in self._stalled if key is None or getattr(row, key) == entity]
        # The API's order: critical first, then the longest stalled, then deal_id.
        return sorted(rows, key=lambda row: (row.severity != "critical", row.stalled_since, row.deal_id))

    def followups(self, level: str = "company", entity: str = "all") -> list[tuple[Any, ...]]:
        index = {"region": 4, "team": 3, "rep": 2}.get(level)
        rows = [row for row in self._followups if index is None or row[index] == entity]
        return sorted(rows, key=lambda row: (-row[7], row[1], row[0]))


def naive_utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(tzinfo=None)
