"""The managers' scenario (targets, leaderboards, follow-ups) and an independent model of its views.

Built on the pipeline scenario (tests/oracle/scenario.py): its org and every event up to NOW, the
middle of March 2026 (Asia/Shanghai), so February is a whole month of activity and wins and
March is half over. On top of it:

- rep-08, whose March is scripted to land each target status on its exact boundary;
- targets at every level for February and March (topic) and for Q1 (CSV import);
- customers with tiers and contacts at known times, a tier change and a per-customer override.

The model below is written from docs/semantics.md (sections target_attainment, leaderboard and
followup_due) and takes the KPIs from tests/oracle/reference_model.py: nothing comes from the code
under test. The worker runs with ``--clock event``: NOW is the latest occurred_at, which the
last event sets exactly.
"""

import random
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from typing import Any

from tests.oracle.reference_model import DEFAULT_STAGE_PROBABILITIES, KPI_INDEX, OrgHistory, parse_timestamp
from tests.oracle.scenario import ZONE, Scenario, _Builder, build_scenario, local, org_record

NOW = local(3, 16, 12)  # half of March (31 days) has passed: 15.5 days
TODAY = NOW.date()
REP_08 = "rep-08"
FOLLOWUP_REP = "rep-04"
TARGET_REPS = ("rep-01", "rep-02", "rep-03", "rep-04", "rep-07", REP_08)  # rep-05 and rep-06 have none
TEAMS = ("team-beijing", "team-tianjin", "team-guangzhou")
REGIONS = ("north", "south")
METRICS = ("won_amount", "deals_won", "visits", "calls", "new_customers")
MONTHS = (date(2026, 2, 1), date(2026, 3, 1))
QUARTER = date(2026, 1, 1)
TIER_DAYS = {"A": 14, "B": 30, "C": 60}

# rep-08's March targets, against the scripted March: 9 visits, 10 calls, 2 deals won for 2,000
# and 9 new customers, with half of March elapsed (expected_by_now = target / 2).
REP_08_MARCH = {
    "visits": (Decimal(20), "off_track"),  # expected 10, actual 9: exactly 10% behind
    "calls": (Decimal(20), "on_track"),  # expected 10, actual 10: exactly on pace
    "deals_won": (Decimal(2), "achieved"),  # exactly on target
    "won_amount": (Decimal(4400), "at_risk"),  # expected 2,200, actual 2,000: 9.09% behind
    "new_customers": (Decimal("19.9998"), "at_risk"),  # expected 9.9999, actual 9: just under 10% behind
}


@dataclass
class ManagementScenario:
    base: Scenario
    org: list[dict[str, Any]]
    events: list[dict[str, Any]]
    targets: list[dict[str, Any]]  # published on the targets topic, in this order
    quarter_csv: str  # imported with `salespulse targets import`
    quarter_targets: list[dict[str, Any]]  # the CSV's good rows
    bad_csv_lines: dict[int, str]  # line number → a word the reason must contain
    customers: list[dict[str, Any]]  # published on the customers topic, in this order
    followup_names: dict[str, str] = field(default_factory=dict)


def _target(
    level: str, entity_id: str, metric: str, period: str, start: date, value: Decimal
) -> dict[str, Any]:
    return {
        "level": level,
        "entity_id": entity_id,
        "metric": metric,
        "period": period,
        "period_start": start.isoformat(),
        "target": str(value),
    }


def _entities() -> list[tuple[str, str]]:
    return [
        *(("rep", rep) for rep in TARGET_REPS),
        *(("team", team) for team in TEAMS),
        *(("region", region) for region in REGIONS),
        ("company", "all"),
    ]


def _random_target(rng: random.Random, level: str, metric: str, months: int) -> Decimal:
    scale = {"rep": 1, "team": 2, "region": 4, "company": 7}[level] * months
    low, high = {
        "won_amount": (20_000, 400_000),
        "deals_won": (1, 6),
        "visits": (5, 40),
        "calls": (10, 90),
        "new_customers": (2, 15),
    }[metric]
    return Decimal(rng.randint(low * scale, high * scale))


def _scripted_march(b: _Builder) -> None:
    """rep-08's March: 9 visits, 10 connected calls, 2 deals won (1,000 each), 9 new customers."""
    for n in range(1, 10):
        b.visit(local(3, 1 + n, 9), REP_08, f"cust-m-{n}", event_id=f"m-visit-{n}")
    for n in range(1, 11):
        b.call(local(3, 2 + n % 9, 15), REP_08, f"cust-m-{1 + n % 9}", event_id=f"m-call-{n}")
    for n in (1, 2):
        deal = f"deal-m-{n}"
        b.deal(local(3, 2 + n, 11), REP_08, f"cust-m-{n}", deal, "prospecting", 1000, event_id=f"{deal}-a")
        b.deal(local(3, 4 + n, 11), REP_08, f"cust-m-{n}", deal, "won", 1000, event_id=f"{deal}-b")


def _scripted_followups(b: _Builder, names: dict[str, str]) -> list[dict[str, Any]]:
    """Customers contacted at known times before NOW; returns their records in publish order.

    Their rep is rep-04, so that rep-08's scripted March stays exactly as REP_08_MARCH says.
    """
    ago = lambda days, hours=0: NOW - timedelta(days=days, hours=hours)  # noqa: E731
    b.visit(ago(14), FOLLOWUP_REP, "fu-a-due", event_id="fu-1")  # due exactly now
    b.call(ago(13), FOLLOWUP_REP, "fu-a-ok", event_id="fu-2")  # due tomorrow
    b.call(ago(1), FOLLOWUP_REP, "fu-a-ok", outcome="no_answer", event_id="fu-3")  # not a contact
    b.call(ago(33, 6), FOLLOWUP_REP, "fu-b-over", event_id="fu-4")  # 3 days 6 hours overdue
    b.call(ago(40), FOLLOWUP_REP, "fu-b-never", outcome="no_answer", event_id="fu-5")  # never contacted:
    b.visit(
        ago(35), FOLLOWUP_REP, "fu-b-never", outcome="cancelled", event_id="fu-6"
    )  # due 30 days after first seen
    b.visit(ago(20), FOLLOWUP_REP, "fu-tier", event_id="fu-7")  # C → A: 6 days overdue (under C: not due)
    b.visit(ago(7), FOLLOWUP_REP, "fu-override", event_id="fu-8")  # 5-day override: 2 days overdue,
    b.feedback(ago(1), "rep-01", "fu-override", "csat", 5, event_id="fu-9")  # rep = latest activity's
    b.visit(ago(59), FOLLOWUP_REP, "fu-c-ok", event_id="fu-10")  # tier C, due tomorrow
    names.update(
        {
            "due_now": "fu-a-due",
            "never_contacted": "fu-b-never",
            "tier_change": "fu-tier",
            "override": "fu-override",
        }
    )
    return [
        {"customer_id": "fu-a-due", "tier": "A"},
        {"customer_id": "fu-a-ok", "tier": "A"},
        {"customer_id": "fu-b-over", "tier": "B"},
        {"customer_id": "fu-b-never", "tier": "B"},
        {"customer_id": "fu-tier", "tier": "C"},
        {"customer_id": "fu-override", "tier": "C", "follow_up_days": 5},
        {"customer_id": "fu-c-ok", "tier": "C"},
        {"customer_id": "fu-no-events", "tier": "A"},  # never seen in any event: not listed
        {"customer_id": "fu-tier", "tier": "A"},  # the tier change: replaces the record above
    ]


def build_management_scenario(seed: int = 11) -> ManagementScenario:
    rng = random.Random(seed)
    base = build_scenario()
    builder = _Builder()
    _scripted_march(builder)
    names: dict[str, str] = {}
    customers = _scripted_followups(builder, names)
    # The clock: the last event sets NOW (a feedback, so that it contacts nobody).
    builder.feedback(NOW, REP_08, "cust-m-1", "nps", 9, event_id="clock")
    scripted = builder.events()
    events = [e for e in base.events if parse_timestamp(e["occurred_at"]) <= NOW]
    events = [*events, *(e for e in scripted if e["event_id"] != "clock"), scripted[-1]]
    assert scripted[-1]["event_id"] == "clock"

    # Customers of the pipeline scenario get tiers too (the model treats them like any other).
    bulk_customers = sorted(
        {
            e["customer_id"]
            for e in events
            if e["customer_id"].startswith("cust-") and not e["customer_id"].startswith("cust-m-")
        }
    )[:12]
    customers = [{"customer_id": c, "tier": "ABC"[n % 3]} for n, c in enumerate(bulk_customers)] + customers

    targets = []
    for start in MONTHS:
        for level, entity in _entities():
            for metric in METRICS:
                value = _random_target(rng, level, metric, 1)
                if entity == REP_08 and start == MONTHS[1]:
                    value = REP_08_MARCH[metric][0]
                targets.append(_target(level, entity, metric, "month", start, value))
    # A later record with the same key replaces an earlier one: publish a wrong value first.
    targets.insert(0, _target("rep", "rep-01", "visits", "month", MONTHS[1], Decimal(999)))

    quarter_targets = [
        _target(level, entity, metric, "quarter", QUARTER, _random_target(rng, level, metric, 3))
        for level, entity in _entities()
        for metric in ("won_amount", "visits")
    ]
    header = "level,entity_id,metric,period,period_start,target"
    lines = [header] + [",".join(str(t[k]) for k in header.split(",")) for t in quarter_targets]
    lines.insert(3, "rep,rep-01,revenue,quarter,2026-01-01,1000")  # line 4: unknown metric
    lines.insert(6, "team,team-beijing,visits,quarter,2026-02-01,100")  # line 7: not a quarter start
    quarter_csv = "\n".join(lines) + "\n"
    return ManagementScenario(
        base,
        [*base.org, org_record(REP_08, "2025-01-01", "team-beijing", "north")],
        events,
        targets,
        quarter_csv,
        quarter_targets,
        {4: "metric", 7: "period_start"},
        customers,
        names,
    )


# --------------------------------------------------------------------------- the model


def _period_end(period: str, start: date) -> date:
    months = 1 if period == "month" else 3
    month = start.month - 1 + months
    return date(start.year + month // 12, month % 12 + 1, 1)


def _midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=ZONE)


def _latest_targets(records: list[dict[str, Any]]) -> dict[tuple[str, ...], Decimal]:
    latest: dict[tuple[str, ...], Decimal] = {}
    for record in records:
        key = (
            record["period"],
            record["period_start"],
            record["level"],
            record["entity_id"],
            record["metric"],
        )
        latest[key] = Decimal(record["target"])
    return latest


def expected_attainment(
    scenario: ManagementScenario,
    kpi_daily: list[tuple[Any, ...]],
    deals_current: list[tuple[Any, ...]],
    deals_columns: tuple[str, ...],
) -> list[tuple[Any, ...]]:
    """Rows (period, period_start, level, entity_id, metric, target, actual, attainment,
    expected_by_now, projected, status, forecast)."""
    deals = [dict(zip(deals_columns, row, strict=True)) for row in deals_current]
    rows = []
    for (period, start_text, level, entity, metric), target in sorted(
        _latest_targets(scenario.targets + scenario.quarter_targets).items()
    ):
        start = date.fromisoformat(start_text)
        end = _period_end(period, start)
        actual = sum(
            (
                Decimal(row[3 + KPI_INDEX[metric]])
                for row in kpi_daily
                if row[1] == level and row[2] == entity and start <= row[0] < end and row[0] <= TODAY
            ),
            Decimal(0),
        )
        period_seconds = int((_midnight(end) - _midnight(start)).total_seconds())
        elapsed = min(period_seconds, max(0, int((NOW - _midnight(start)).total_seconds())))
        if actual >= target:
            status = "achieved"
        elif Fraction(actual) * period_seconds >= Fraction(target) * elapsed:
            status = "on_track"
        elif Fraction(actual) * period_seconds * 10 > Fraction(target) * elapsed * 9:
            status = "at_risk"
        else:
            status = "off_track"
        forecast = None
        if metric in ("won_amount", "deals_won"):
            weighted = sum(
                (
                    (deal["amount"] if metric == "won_amount" else Decimal(1))
                    * DEFAULT_STAGE_PROBABILITIES[deal["stage"]]
                    for deal in deals
                    if deal["status"] == "open"
                    and deal["expected_close_date"] is not None
                    and start <= deal["expected_close_date"] < end
                    and entity
                    == {
                        "rep": deal["rep_id"],
                        "team": deal["team_id"],
                        "region": deal["region_id"],
                        "company": "all",
                    }[level]
                ),
                Decimal(0),
            )
            forecast = float(actual + weighted)
        rows.append(
            (
                period,
                start,
                level,
                entity,
                metric,
                target,
                actual,
                None if target == 0 else float(actual) / float(target),
                float(target) * elapsed / period_seconds,
                None if elapsed == 0 else float(actual) * period_seconds / elapsed,
                status,
                forecast,
            )
        )
    return rows


LEADERBOARD_MINIMUM = {"win_rate": 5, "csat": 5}


def expected_leaderboard(kpi_daily: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """Rows (period, period_start, level, metric, rank, entity_id, value)."""
    sums: dict[tuple[str, date, str, str], list[Decimal]] = defaultdict(lambda: [Decimal(0)] * len(KPI_INDEX))
    for row in kpi_daily:
        day, level, entity = row[0], row[1], row[2]
        if level == "company":
            continue
        quarter_month = 3 * ((day.month - 1) // 3) + 1
        for period, start in (("month", day.replace(day=1)), ("quarter", date(day.year, quarter_month, 1))):
            totals = sums[(period, start, level, entity)]
            for index in KPI_INDEX.values():
                totals[index] += Decimal(row[3 + index])
    values: dict[tuple[str, date, str, str], list[tuple[str, float]]] = defaultdict(list)
    for (period, start, level, entity), t in sums.items():
        k = {name: t[index] for name, index in KPI_INDEX.items()}
        closed = k["deals_won"] + k["deals_lost"]
        candidates = {
            "won_amount": (float(k["won_amount"]), True),
            "deals_won": (float(k["deals_won"]), True),
            "win_rate": (
                int(k["deals_won"]) / max(1, int(closed)),
                closed >= LEADERBOARD_MINIMUM["win_rate"],
            ),
            "activities": (float(k["visits"] + k["calls"]), True),
            "csat": (
                int(k["csat_satisfied"]) / max(1, int(k["csat_count"])),
                k["csat_count"] >= LEADERBOARD_MINIMUM["csat"],
            ),
        }
        for metric, (value, qualifies) in candidates.items():
            if qualifies:
                values[(period, start, level, metric)].append((entity, value))
    rows = []
    for (period, start, level, metric), entries in values.items():
        for entity, value in entries:
            rank = 1 + sum(1 for _, other in entries if other > value)  # ties share a rank
            rows.append((period, start, level, metric, rank, entity, value))
    return sorted(rows)


def expected_followups(scenario: ManagementScenario) -> list[tuple[Any, ...]]:
    """Rows (customer_id, tier, rep_id, team_id, region_id, last_contact_at, due_at, overdue_days, status)."""
    records = {record["customer_id"]: record for record in scenario.customers}  # later records win
    org = OrgHistory(scenario.org)
    seen: dict[str, list[tuple[datetime, str, dict[str, Any]]]] = defaultdict(list)
    for event in scenario.events:
        seen[event["customer_id"]].append((parse_timestamp(event["occurred_at"]), event["event_id"], event))
    rows = []
    for customer, record in sorted(records.items()):
        if customer not in seen:
            continue
        history = sorted(seen[customer], key=lambda item: (item[0], item[1]))
        contacts = [
            at
            for at, _, e in history
            if (e["event_type"] == "visit" and e["outcome"] == "completed")
            or (e["event_type"] == "call" and e["outcome"] == "connected")
        ]
        days = record.get("follow_up_days") or TIER_DAYS[record["tier"]]
        last_contact = max(contacts) if contacts else None
        due_at = (last_contact or history[0][0]) + timedelta(days=days)
        if due_at > NOW:
            continue
        rep = history[-1][2]["rep_id"]
        team, region = org.team_and_region(rep, TODAY)
        overdue_days = int((NOW - due_at).total_seconds()) // 86_400
        rows.append(
            (
                customer,
                record["tier"],
                rep,
                team,
                region,
                last_contact,
                due_at,
                overdue_days,
                "due" if overdue_days == 0 else "overdue",
            )
        )
    return rows
