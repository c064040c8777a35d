"""The KPIs of SPEC §4 over a period: the additive sums, and the ratios derived from them.

Ratios are taken from the sums over the whole period (never averages of daily ratios), in
Decimal arithmetic with the default 28-digit context, and sent as decimal strings so that a
client formats exactly what was computed. A ratio whose denominator is 0 is ``None`` (the page
shows "—").
"""

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

# The additive columns of kpi_daily, in contract order.
SUM_COLUMNS: tuple[str, ...] = (
    "visits",
    "visits_completed",
    "calls",
    "calls_connected",
    "call_seconds",
    "new_customers",
    "deals_created",
    "deals_won",
    "deals_lost",
    "won_amount",
    "cycle_days_sum",
    "csat_count",
    "csat_sum",
    "csat_satisfied",
    "nps_count",
    "nps_promoters",
    "nps_detractors",
    "complaints",
)
DERIVED: tuple[str, ...] = ("win_rate", "avg_deal_size", "avg_cycle_days", "csat", "nps", "connect_rate")


def _ratio(numerator: Decimal, denominator: Decimal) -> Decimal | None:
    return None if denominator == 0 else numerator / denominator


def derived(sums: Mapping[str, Any]) -> dict[str, Decimal | None]:
    """win rate, average deal size, average cycle, CSAT, NPS and connect rate from period sums."""
    s = {name: Decimal(sums.get(name) or 0) for name in SUM_COLUMNS}
    return {
        "win_rate": _ratio(s["deals_won"], s["deals_won"] + s["deals_lost"]),
        "avg_deal_size": _ratio(s["won_amount"], s["deals_won"]),
        "avg_cycle_days": _ratio(s["cycle_days_sum"], s["deals_won"]),
        "csat": _ratio(s["csat_satisfied"], s["csat_count"]),
        "nps": _ratio(100 * (s["nps_promoters"] - s["nps_detractors"]), s["nps_count"]),
        "connect_rate": _ratio(s["calls_connected"], s["calls"]),
    }


def empty_sums() -> dict[str, Any]:
    """The sums of a period without any kpi_daily row."""
    return {name: (Decimal("0.0000") if name == "won_amount" else 0) for name in SUM_COLUMNS}


def with_derived(sums: Mapping[str, Any]) -> dict[str, Any]:
    """The sums and the ratios, as the API returns them."""
    return {"sums": dict(sums), "derived": derived(sums)}
