"""The queries behind the JSON API: the contract views of SPEC §5, read only, always parameterised.

Only these views are read: kpi_daily, deals_current, stage_conversion, pipeline_current,
stalled_deals, target_attainment, leaderboard and followup_due. User input reaches ClickHouse
as query parameters (``{name:Type}``) only; the few pieces of SQL text that vary (a bucket
expression, a filter column, a ranking expression) are picked from fixed tables in this module
by validated names, never built from what a client sent.

The contract views carry no org chart, so the drill-down takes a level's members from
deals_current: a region's teams and a team's reps are those its deals are attributed to (a
deal's team and region are its owner's on the day of its current state). The company's
regions are every region with KPI rows or deals.
"""

import threading
import time
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from clickhouse_connect.driver.exceptions import ClickHouseError, OperationalError

from salespulse.web.connection import Store, StoreUnavailable, redacted, refusal
from salespulse.web.kpis import SUM_COLUMNS, empty_sums
from salespulse.web.params import COMPANY_ENTITY, Period, Scope

OPEN_STAGES: tuple[str, ...] = ("prospecting", "qualified", "proposal", "negotiation")
TREND_COLUMNS: tuple[str, ...] = ("won_amount", "deals_won", "deals_lost", "visits", "calls", "new_customers")
# Buckets of the trend: days up to a quarter, then weeks (from Monday), then months.
BUCKETS: dict[str, str] = {"day": "day", "week": "toMonday(day)", "month": "toStartOfMonth(day)"}
# Where a scope's stalled deals and follow-ups are found.
SCOPE_COLUMN: dict[str, str] = {"region": "region_id", "team": "team_id", "rep": "rep_id"}
# Rankings for periods the leaderboard view does not keep (weeks, years, custom ranges): the
# view's own rules (docs/semantics.md § leaderboard) applied to kpi_daily sums.
RANKINGS: dict[str, tuple[str, str]] = {
    "won_amount": ("toFloat64(sum(won_amount))", "1"),
    "deals_won": ("toFloat64(sum(deals_won))", "1"),
    "win_rate": (
        "sum(deals_won) / greatest(1, sum(deals_won) + sum(deals_lost))",
        "sum(deals_won) + sum(deals_lost) >= 5",
    ),
    "activities": ("toFloat64(sum(visits) + sum(calls))", "1"),
    "csat": ("sum(csat_satisfied) / greatest(1, sum(csat_count))", "sum(csat_count) >= 5"),
}
LEADERBOARD_METRICS: tuple[str, ...] = tuple(RANKINGS)
KNOWN_ENTITIES_TTL = 10.0

_SUMS_SQL = ", ".join(f"sum({column}) AS {column}" for column in SUM_COLUMNS)


def bucket_for(period: Period) -> str:
    if period.days <= 92:
        return "day"
    if period.days <= 731:
        return "week"
    return "month"


def _bucket_starts(period: Period, bucket: str) -> list[date]:
    """Every bucket of the period, so the trend has a point for quiet days too."""
    if bucket == "day":
        return [period.first + timedelta(days=n) for n in range(period.days)]
    if bucket == "week":
        start = period.first - timedelta(days=period.first.weekday())
        return [start + timedelta(weeks=n) for n in range((period.last - start).days // 7 + 1)]
    starts, current = [], period.first.replace(day=1)
    while current <= period.last:
        starts.append(current)
        current = (current + timedelta(days=32)).replace(day=1)
    return starts


@dataclass(frozen=True)
class Membership:
    """Who belongs where, as far as the contract views tell (see the module docstring)."""

    entities: dict[str, set[str]]  # level → every entity id known at that level
    deals: Counter[tuple[str, str, str]]  # (rep, team, region) → deals attributed so

    def children(self, scope: Scope) -> list[str]:
        if scope.level == "company":
            return sorted(self.entities["region"])
        if scope.level == "region":
            return sorted({team for (_, team, region) in self.deals if region == scope.entity})
        if scope.level == "team":
            return sorted({rep for (rep, team, _) in self.deals if team == scope.entity})
        return []

    def path(self, scope: Scope) -> list[dict[str, str]]:
        """Company, then the region, team and rep down to the scope; where the deals name two
        parents (a rep who changed teams), the one with more deals."""
        path = [{"level": "company", "entity": COMPANY_ENTITY}]
        chain: list[tuple[str, str | None]] = []
        if scope.level == "region":
            chain = [("region", scope.entity)]
        elif scope.level == "team":
            regions: Counter[str] = Counter()
            for (_, team, region), deals in self.deals.items():
                if team == scope.entity:
                    regions[region] += deals
            chain = [("region", _most(regions)), ("team", scope.entity)]
        elif scope.level == "rep":
            pairs: Counter[tuple[str, str]] = Counter()
            for (rep, team, region), deals in self.deals.items():
                if rep == scope.entity:
                    pairs[(team, region)] += deals
            found = _most(pairs)
            chain = [("region", found[1] if found else None), ("team", found[0] if found else None)]
            chain.append(("rep", scope.entity))
        path += [{"level": level, "entity": entity} for level, entity in chain if entity]
        return path


def _most(counts: Counter[Any]) -> Any:
    """The value counted most often (ties: the smallest), or None."""
    if not counts:
        return None
    return min(counts, key=lambda value: (-counts[value], value))


class ViewReader:
    """Runs the API's queries on one Store; every method is blocking (call it from a thread)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._membership: Membership | None = None
        self._membership_at = 0.0
        self._lock = threading.Lock()

    def _rows(self, sql: str, parameters: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        client = self.store.client()
        try:
            result = client.query(sql, parameters=parameters or {})
        except OperationalError:
            raise StoreUnavailable(
                f"lost the connection to ClickHouse at {redacted(self.store.url)}; the page retries on its own"
            ) from None
        except ClickHouseError as error:
            raise refusal(self.store.url, error) from None
        columns = result.column_names
        return [dict(zip(columns, row, strict=True)) for row in result.result_rows]

    # --- who is who -------------------------------------------------------------------------

    def membership(self, fresh: bool = False) -> Membership:
        """Known entities and the rep → team → region links, cached for a few seconds."""
        with self._lock:
            if not fresh and self._membership and time.monotonic() - self._membership_at < KNOWN_ENTITIES_TTL:
                return self._membership
        entities: dict[str, set[str]] = defaultdict(set)
        for row in self._rows(
            "SELECT level, entity_id FROM kpi_daily WHERE level != 'company' GROUP BY level, entity_id"
        ):
            entities[row["level"]].add(row["entity_id"])
        for row in self._rows(
            "SELECT DISTINCT level, entity_id FROM target_attainment WHERE level != 'company'"
        ):
            entities[row["level"]].add(row["entity_id"])
        deals: Counter[tuple[str, str, str]] = Counter()
        for row in self._rows(
            "SELECT rep_id, team_id, region_id, count() AS deals FROM deals_current GROUP BY rep_id, team_id, region_id"
        ):
            deals[(row["rep_id"], row["team_id"], row["region_id"])] += int(row["deals"])
            entities["rep"].add(row["rep_id"])
            entities["team"].add(row["team_id"])
            entities["region"].add(row["region_id"])
        for level in ("region", "team", "rep"):
            entities.setdefault(level, set())
        membership = Membership(dict(entities), deals)
        with self._lock:
            self._membership, self._membership_at = membership, time.monotonic()
        return membership

    def is_known(self, scope: Scope) -> bool:
        """Whether the scope's entity appears in the views (looked up again before saying no)."""
        if scope.level == "company":
            return True
        if scope.entity in self.membership().entities[scope.level]:
            return True
        return scope.entity in self.membership(fresh=True).entities[scope.level]

    # --- the page's blocks ------------------------------------------------------------------

    def overview(self) -> dict[str, Any]:
        rows = self._rows(
            "SELECT min(day) AS first_day, max(day) AS latest_day, count() AS days FROM kpi_daily WHERE level = 'company'"
        )
        currency = self._rows("SELECT any(currency) AS currency, count() AS deals FROM deals_current")
        row = rows[0]
        has_data = int(row["days"]) > 0
        return {
            "first_day": row["first_day"] if has_data else None,
            "latest_day": row["latest_day"] if has_data else None,
            "currency": currency[0]["currency"] if int(currency[0]["deals"]) else None,
        }

    def kpi_sums(self, scope: Scope, period: Period) -> dict[str, Any]:
        rows = self._rows(
            f"SELECT count() AS days, {_SUMS_SQL} FROM kpi_daily WHERE level = {{level:String}} "
            "AND entity_id = {entity:String} AND day >= {first:Date} AND day <= {last:Date}",
            {"level": scope.level, "entity": scope.entity, "first": period.first, "last": period.last},
        )
        if not rows or int(rows[0]["days"]) == 0:
            return empty_sums()
        return {column: rows[0][column] for column in SUM_COLUMNS}

    def trend(self, scope: Scope, period: Period) -> dict[str, Any]:
        bucket = bucket_for(period)
        columns = ", ".join(f"sum({column}) AS {column}" for column in TREND_COLUMNS)
        rows = self._rows(
            f"SELECT {BUCKETS[bucket]} AS start, {columns} FROM kpi_daily WHERE level = {{level:String}} "
            "AND entity_id = {entity:String} AND day >= {first:Date} AND day <= {last:Date} "
            "GROUP BY start ORDER BY start",
            {"level": scope.level, "entity": scope.entity, "first": period.first, "last": period.last},
        )
        by_start = {row["start"]: row for row in rows}
        zero = {column: (Decimal("0.0000") if column == "won_amount" else 0) for column in TREND_COLUMNS}
        points = []
        for start in _bucket_starts(period, bucket):
            found = by_start.get(start, zero)
            points.append({"start": start, **{column: found[column] for column in TREND_COLUMNS}})
        return {"bucket": bucket, "points": points}

    def children_sums(self, level: str, members: Sequence[str], period: Period) -> dict[str, dict[str, Any]]:
        if not members:
            return {}
        rows = self._rows(
            f"SELECT entity_id, {_SUMS_SQL} FROM kpi_daily WHERE level = {{level:String}} "
            "AND has({members:Array(String)}, entity_id) AND day >= {first:Date} AND day <= {last:Date} "
            "GROUP BY entity_id",
            {"level": level, "members": list(members), "first": period.first, "last": period.last},
        )
        return {row["entity_id"]: {column: row[column] for column in SUM_COLUMNS} for row in rows}

    def funnel(self, scope: Scope) -> list[dict[str, Any]]:
        return self._rows(
            "SELECT stage, stage_order, entered, advanced, conversion FROM stage_conversion "
            "WHERE level = {level:String} AND entity_id = {entity:String} ORDER BY stage_order",
            {"level": scope.level, "entity": scope.entity},
        )

    def pipeline(self, scope: Scope) -> list[dict[str, Any]]:
        rows = self._rows(
            "SELECT stage, open_deals, open_amount, weighted_amount FROM pipeline_current "
            "WHERE level = {level:String} AND entity_id = {entity:String}",
            {"level": scope.level, "entity": scope.entity},
        )
        by_stage = {row["stage"]: row for row in rows}
        return [
            by_stage.get(
                stage,
                {
                    "stage": stage,
                    "open_deals": 0,
                    "open_amount": Decimal("0.0000"),
                    "weighted_amount": Decimal("0.00000000"),
                },
            )
            for stage in OPEN_STAGES
        ]

    def targets(self, scope: Scope, period: Period) -> list[dict[str, Any]]:
        """The scope's targets whose period overlaps the selected one."""
        return self._rows(
            "SELECT period, period_start, period_end, metric, target, actual, attainment, expected_by_now, "
            "projected, forecast, status FROM target_attainment WHERE level = {level:String} "
            "AND entity_id = {entity:String} AND period_start <= {last:Date} AND period_end > {first:Date} "
            "ORDER BY indexOf(['month', 'quarter'], period), period_start, "
            "indexOf(['won_amount', 'deals_won', 'new_customers', 'visits', 'calls'], metric)",
            {"level": scope.level, "entity": scope.entity, "first": period.first, "last": period.last},
        )

    def leaderboard(self, level: str, metric: str, period: Period, top: int) -> dict[str, Any]:
        if period.kind in ("month", "quarter"):
            rows = self._rows(
                "SELECT rank, entity_id, value FROM leaderboard WHERE period = {period:String} "
                "AND period_start = {start:Date} AND level = {level:String} AND metric = {metric:String} "
                "AND rank <= {top:UInt32} ORDER BY rank, entity_id",
                {"period": period.kind, "start": period.first, "level": level, "metric": metric, "top": top},
            )
            return {"source": "leaderboard", "rows": rows}
        value, qualifies = RANKINGS[metric]
        rows = self._rows(
            "SELECT rank, entity_id, value FROM ("
            "SELECT toUInt32(rank() OVER (ORDER BY value DESC)) AS rank, entity_id, value FROM ("
            f"SELECT entity_id, {value} AS value, {qualifies} AS qualifies FROM kpi_daily "
            "WHERE level = {level:String} AND day >= {first:Date} AND day <= {last:Date} GROUP BY entity_id"
            ") WHERE qualifies) WHERE rank <= {top:UInt32} ORDER BY rank, entity_id",
            {"level": level, "first": period.first, "last": period.last, "top": top},
        )
        return {"source": "kpi_daily", "rows": rows}

    def _scoped(self, scope: Scope) -> tuple[str, dict[str, Any]]:
        if scope.level == "company":
            return "1", {}
        return f"{SCOPE_COLUMN[scope.level]} = {{entity:String}}", {"entity": scope.entity}

    def stalled(self, scope: Scope, limit: int) -> dict[str, Any]:
        where, parameters = self._scoped(scope)
        total = self._rows(f"SELECT count() AS n FROM stalled_deals WHERE {where}", parameters)[0]["n"]
        rows = self._rows(
            "SELECT deal_id, rep_id, team_id, region_id, customer_id, stage, amount, reasons, severity, "
            f"stalled_since, detected_at, idle_days FROM stalled_deals WHERE {where} "
            "ORDER BY severity = 'critical' DESC, stalled_since, deal_id LIMIT {limit:UInt32}",
            {**parameters, "limit": limit},
        )
        return {"total": int(total), "rows": rows}

    def followups(self, scope: Scope, limit: int) -> dict[str, Any]:
        where, parameters = self._scoped(scope)
        total = self._rows(f"SELECT count() AS n FROM followup_due WHERE {where}", parameters)[0]["n"]
        rows = self._rows(
            "SELECT customer_id, tier, rep_id, team_id, region_id, last_contact_at, due_at, overdue_days, status "
            f"FROM followup_due WHERE {where} ORDER BY overdue_days DESC, tier, customer_id LIMIT {{limit:UInt32}}",
            {**parameters, "limit": limit},
        )
        return {"total": int(total), "rows": rows}
