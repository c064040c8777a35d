"""An independent model of ``stalled_deals`` at one moment, written from SPEC §6 alone.

It looks only at each deal's state *now* and when that state began, never at the alert
history the pipeline records: "stalled_deals is the truth now: these rules applied to every
event accepted so far". Nothing here comes from salespulse.streams.stalls. The deal histories
come from tests/reference_model.py (itself independent of the code under test).

Readings, where SPEC §6 leaves the boundary open (the same as tests/integration/test_stalls.py
works out by hand): "more than N days" is strict, so a deal idle for exactly N days is not idle;
"critical at twice the threshold" means strictly past twice it (exactly twice is a warning);
overdue holds from midnight after expected_close_date in the reporting time zone, critical
when that was more than ``overdue_critical_days`` ago.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from tests.oracle.reference_model import OPEN_STAGES, DealState, OrgHistory, _Converter, accept, build_deals

IDLE_DAYS = {"prospecting": 14, "qualified": 10, "proposal": 7, "negotiation": 5}
STAGE_DAYS = {"prospecting": 30, "qualified": 21, "proposal": 14, "negotiation": 14}
OVERDUE_CRITICAL_DAYS = 7


@dataclass(frozen=True)
class StalledDeal:
    deal_id: str
    rep_id: str
    team_id: str
    region_id: str
    customer_id: str
    stage: str
    amount: Any
    reasons: tuple[str, ...]
    severity: str
    stalled_since: datetime  # aware
    idle_days: int


def _overdue_from(expected: date, zone: ZoneInfo) -> datetime:
    return datetime.combine(expected + timedelta(days=1), time(), zone)


def _overdue_episode(deal: DealState, now: datetime, zone: ZoneInfo) -> tuple[datetime, bool] | None:
    """(since when overdue has held without a break, whether it turned critical), or None.

    Walks back from the current state: each state (a deal event, until the next one) is overdue
    from the later of its own time and midnight after its expected_close_date; the episode
    reaches back through earlier states as long as each was already overdue when the next began.
    """
    history = deal.history
    since: datetime | None = None
    critical = False
    end = now
    for index in range(len(history) - 1, -1, -1):
        event = history[index]
        stage = str(event.body["stage"])
        expected = event.body.get("expected_close_date")
        if stage not in OPEN_STAGES or expected is None:
            break
        past = _overdue_from(date.fromisoformat(str(expected)), zone)
        holds_from = max(event.at, past)
        if holds_from >= end and holds_from > event.at:
            break  # not overdue in this state (a state beginning at "now" with its date passed is)
        if max(holds_from, past + timedelta(days=OVERDUE_CRITICAL_DAYS)) < end:
            critical = True
        since = holds_from
        if holds_from > event.at:
            break  # this state began before its date passed: the episode starts within it
        end = event.at
    return None if since is None or since >= now else (since, critical)


def stalled_deals(
    org: list[dict[str, Any]],
    events: list[dict[str, Any]],
    now: datetime,
    *,
    timezone: str,
    reporting_currency: str,
    currency_rates: Mapping[str, str],
) -> list[StalledDeal]:
    """The open deals stalled at ``now``, sorted by deal_id."""
    zone = ZoneInfo(timezone)
    deals = build_deals(accept(events, zone), _Converter(reporting_currency, currency_rates))
    history = OrgHistory(org)
    found = []
    for deal in deals.values():
        if deal.status != "open":
            continue
        stage = deal.stage
        reasons: dict[str, tuple[datetime, bool]] = {}
        idle_for = now - deal.last_activity_at
        if idle_for > timedelta(days=IDLE_DAYS[stage]):
            reasons["idle"] = (
                deal.last_activity_at + timedelta(days=IDLE_DAYS[stage]),
                idle_for > timedelta(days=2 * IDLE_DAYS[stage]),
            )
        entered = deal.final_run_start.at
        in_stage = now - entered
        if in_stage > timedelta(days=STAGE_DAYS[stage]):
            reasons["stuck"] = (
                entered + timedelta(days=STAGE_DAYS[stage]),
                in_stage > timedelta(days=2 * STAGE_DAYS[stage]),
            )
        overdue = _overdue_episode(deal, now, zone)
        if overdue is not None:
            reasons["overdue"] = overdue
        if not reasons:
            continue
        current = deal.current
        team, region = history.team_and_region(current.rep_id, current.day)
        found.append(
            StalledDeal(
                deal_id=deal.deal_id,
                rep_id=current.rep_id,
                team_id=team,
                region_id=region,
                customer_id=current.customer_id,
                stage=stage,
                amount=deal.amount,
                reasons=tuple(sorted(reasons)),
                severity="critical" if any(critical for _, critical in reasons.values()) else "warning",
                stalled_since=min(since for since, _ in reasons.values()),
                idle_days=int(idle_for.total_seconds()) // 86_400,
            )
        )
    return sorted(found, key=lambda row: row.deal_id)
