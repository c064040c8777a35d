"""Realistic CRM traffic: an org, its customers and SMART targets, and the activity around its deals.

The simulated company sells to tiered customers (A/B/C) through reps grouped in teams and
regions (rep → team lead → regional manager). One rep changes team part-way, so the org history
has two records for them. Every customer is followed up on its tier's rhythm (定期回访), a few
are neglected; reps make calls and visits; deals move through the funnel prospecting →
qualified → proposal → negotiation → won/lost with stage-dependent odds. Some deals stall (no
activity for weeks, so they sit in their stage and their expected close date passes), some of
those come back to life, a won deal is occasionally reopened; customers answer CSAT and NPS
surveys and send complaints, praise and suggestions (some in Chinese).

One seeded discrete-event simulation (``simulation``) produces it all. Its clock is the
simulated time, and nothing in it looks at the wall clock or at the end of the period, so:

- :func:`generate_history` is deterministic for a seed, and a shorter history is a prefix of a
  longer one with the same seed and start (re-publishing a backfill is idempotent);
- :func:`run_live` replays the same stream at ``rate`` events/s, re-stamped with the wall
  clock: occurred_at is now, and an expected close date keeps its distance in days from the
  event. Simulated days go by in seconds, so deals visibly move through the funnel.

Amounts are decimal strings with two decimals, in the reporting currency (no ``currency``
field) unless ``SimulationOptions.currencies`` names others, which some deals then use.
"""

import random
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta, timezone, tzinfo
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson

from salespulse.schemas.events import OPEN_STAGES
from salespulse.schemas.reference import TIER_FOLLOW_UP_DAYS

CHINA_STANDARD_TIME = timezone(timedelta(hours=8), "CST")

_REGIONS: tuple[tuple[str, str], ...] = (
    ("east", "华东"),
    ("north", "华北"),
    ("south", "华南"),
    ("west", "西部"),
    ("central", "华中"),
    ("northeast", "东北"),
)
_CHINESE_NUMERALS = "一二三四五六七八九十"
# Each region runs its own CRM, so events carry different `source` names.
_SOURCES = ("fxiaoke", "salesforce", "hubspot", "dingtalk-crm")
_SURNAMES = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘蔡蒋余杜叶程魏苏吕丁任沈"
)
_GIVEN_NAMES = (
    "伟",
    "芳",
    "娜",
    "敏",
    "静",
    "磊",
    "强",
    "洋",
    "艳",
    "勇",
    "军",
    "杰",
    "娟",
    "涛",
    "明",
    "超",
    "秀英",
    "丽",
    "平",
    "刚",
    "建华",
    "晓东",
    "文博",
    "欣怡",
    "子涵",
    "浩然",
    "雨桐",
    "志强",
    "海燕",
    "俊杰",
)
_TIER_WEIGHTS = {"A": 0.2, "B": 0.3, "C": 0.5}
_FOLLOW_UP_OVERRIDES = {"A": (7, 10), "B": (21, 45), "C": (45, 90)}
_FOLLOW_UP_OVERRIDE_SHARE = 0.15
_NEGLECTED_SHARE = 0.12  # followed up far too late: they show in followup_due
_PROSPECT_SHARE = 0.35  # not customers yet at the start: each one is a new customer later
# What an average rep achieves in a month once the simulation has warmed up (measured on long
# runs of this simulator); SMART targets stretch these by 0–30%, the company's revenue by 20%.
_REP_MONTH_BASELINE = {
    "visits": 20,
    "calls": 55,
    "won_amount": 70_000,
    "deals_won": 1.3,
    "new_customers": 0.5,
}


@dataclass(frozen=True)
class SimulationOptions:
    """The size and flavour of the simulated company."""

    regions: int = 2
    teams: int = 4
    reps: int = 12
    customers: int = 120
    currencies: tuple[str, ...] = ()
    """Other currencies some deals use (e.g. ``("EUR", "CNY")``); none by default, so every deal is
    in the reporting currency. The pipeline needs a rate for each (SALESPULSE_CURRENCY_RATES)."""
    tz: tzinfo = CHINA_STANDARD_TIME
    """The CRMs' local time: working hours and occurred_at offsets are in it."""

    def __post_init__(self) -> None:
        if self.regions < 1:
            raise ValueError(f"regions must be at least 1, got {self.regions}")
        if self.teams < max(2, self.regions):
            raise ValueError(
                f"teams must be at least 2 and at least one per region ({self.regions}), got {self.teams}"
            )
        if self.reps <= self.teams:
            raise ValueError(
                f"reps must outnumber teams ({self.teams}): each team needs a lead, and one rep changes team"
            )
        if self.customers < self.reps:
            raise ValueError(f"customers must be at least one per rep ({self.reps}), got {self.customers}")
        for code in self.currencies:
            if len(code) != 3 or not code.isalpha() or not code.isupper():
                raise ValueError(f"'{code}' is not an ISO 4217 currency code (three capital letters)")


@dataclass
class SimulatedData:
    """A simulated history: reference records and activity events, as JSON-ready dicts."""

    org: list[dict[str, Any]]
    customers: list[dict[str, Any]]
    targets: list[dict[str, Any]]
    events: list[dict[str, Any]]
    """Visits, calls, deals and feedback in chronological order, each with ``event_type``."""

    def records(self) -> Iterator[tuple[str, dict[str, Any]]]:
        """``(type, dict)`` pairs in publishing order: org, customers, targets, then the events."""
        for record_type, records in (
            ("org", self.org),
            ("customers", self.customers),
            ("targets", self.targets),
        ):
            for record in records:
                yield record_type, record
        for event in self.events:
            yield event["event_type"], event

    def write_jsonl(self, directory: Path) -> dict[str, Path]:
        """Write ``events.jsonl``, ``org.jsonl``, ``customers.jsonl`` and ``targets.jsonl``.

        They are what ``salespulse publish`` reads (the reference files need ``--type``).
        """
        directory.mkdir(parents=True, exist_ok=True)
        written = {}
        for name, records in (
            ("events", self.events),
            ("org", self.org),
            ("customers", self.customers),
            ("targets", self.targets),
        ):
            path = directory / f"{name}.jsonl"
            path.write_bytes(b"".join(orjson.dumps(record) + b"\n" for record in records))
            written[name] = path
        return written


# --- the org, customers and targets ---------------------------------------------------------------


@dataclass(frozen=True)
class Team:
    team_id: str
    name: str
    region_id: str
    lead_id: str


@dataclass
class Rep:
    rep_id: str
    name: str
    team: Team
    source: str
    activity: float  # how busy this rep is, around 1
    skill: float  # added to the odds of advancing a deal


@dataclass
class Customer:
    customer_id: str
    tier: str
    follow_up_days: int | None
    owner: Rep
    prospect: bool
    neglected: bool
    acquired: bool = False
    deals: list["SimulatedDeal"] = field(default_factory=list)

    @property
    def cadence_days(self) -> int:
        return self.follow_up_days or TIER_FOLLOW_UP_DAYS[self.tier]

    def active_deals(self) -> list["SimulatedDeal"]:
        return [deal for deal in self.deals if deal.stage in OPEN_STAGES and not deal.stalled]


@dataclass
class Company:
    """The org chart, customers and target rules of one seed (no activity yet)."""

    seed: int
    options: SimulationOptions
    regions: list[tuple[str, str, str]]  # region_id, name, manager_id
    teams: list[Team]
    reps: list[Rep]
    mover: Rep
    mover_to: Team
    customers: list[Customer]

    @classmethod
    def create(cls, seed: int, options: SimulationOptions) -> "Company":
        rng = random.Random(f"{seed}:company")
        regions = []
        for index in range(options.regions):
            region_id, name = (
                _REGIONS[index] if index < len(_REGIONS) else (f"region-{index + 1}", f"第{index + 1}大区")
            )
            regions.append((region_id, name, f"mgr-{region_id}"))
        width = max(2, len(str(options.reps)))
        rep_ids = [f"rep-{index + 1:0{width}d}" for index in range(options.reps)]
        teams = []
        per_region: Counter[str] = Counter()
        for index in range(options.teams):
            region_id, region_name, _ = regions[index % options.regions]
            per_region[region_id] += 1
            number = per_region[region_id]
            numeral = _CHINESE_NUMERALS[number - 1] if number <= len(_CHINESE_NUMERALS) else str(number)
            # Rep i is in team i % teams, so the first rep of each team (its lead) is rep_ids[index].
            teams.append(
                Team(f"{region_id}-{number}", f"{region_name}{numeral}组", region_id, rep_ids[index])
            )
        pool = [surname + given for surname in _SURNAMES for given in _GIVEN_NAMES]
        names = rng.sample(pool, min(options.reps, len(pool)))
        names += [
            f"{rng.choice(pool)}{index}" for index in range(len(names), options.reps)
        ]  # a huge sales force
        region_index = {region_id: index for index, (region_id, _, _) in enumerate(regions)}
        reps = []
        for index, rep_id in enumerate(rep_ids):
            team = teams[index % options.teams]
            reps.append(
                Rep(
                    rep_id,
                    names[index],
                    team,
                    _SOURCES[region_index[team.region_id] % len(_SOURCES)],
                    activity=round(rng.uniform(0.6, 1.4), 2),
                    skill=round(rng.uniform(-0.08, 0.08), 3),
                )
            )
        # The first non-lead of the first team moves to the last team (another region when
        # there are several): their activity counts under the old team before the move only.
        mover, mover_to = reps[options.teams], teams[-1]
        width = max(3, len(str(options.customers)))
        customers = []
        for index in range(options.customers):
            tier = rng.choices(list(_TIER_WEIGHTS), weights=list(_TIER_WEIGHTS.values()))[0]
            override = (
                rng.choice(_FOLLOW_UP_OVERRIDES[tier]) if rng.random() < _FOLLOW_UP_OVERRIDE_SHARE else None
            )
            customers.append(
                Customer(
                    f"cust-{index + 1:0{width}d}",
                    tier,
                    override,
                    # Every rep owns at least one customer; the rest go to anyone.
                    owner=reps[index] if index < len(reps) else rng.choice(reps),
                    prospect=rng.random() < _PROSPECT_SHARE,
                    neglected=rng.random() < _NEGLECTED_SHARE,
                )
            )
        return cls(seed, options, regions, teams, reps, mover, mover_to, customers)

    def manager_of(self, rep_id: str, team: Team) -> str:
        if rep_id == team.lead_id:
            return next(manager for region_id, _, manager in self.regions if region_id == team.region_id)
        return team.lead_id

    def org_records(self, since: date, move_on: date) -> list[dict[str, Any]]:
        """Every rep from ``since``; the mover's second record from ``move_on``."""
        records = [self._org_record(rep, rep.team, since) for rep in self.reps]
        records.append(self._org_record(self.mover, self.mover_to, move_on))
        return records

    def _org_record(self, rep: Rep, team: Team, effective_from: date) -> dict[str, Any]:
        return {
            "rep_id": rep.rep_id,
            "rep_name": rep.name,
            "team_id": team.team_id,
            "team_name": team.name,
            "manager_id": self.manager_of(rep.rep_id, team),
            "region_id": team.region_id,
            "effective_from": effective_from.isoformat(),
        }

    def customer_records(self) -> list[dict[str, Any]]:
        records = []
        for customer in self.customers:
            record: dict[str, Any] = {"customer_id": customer.customer_id, "tier": customer.tier}
            if customer.follow_up_days is not None:
                record["follow_up_days"] = customer.follow_up_days
            records.append(record)
        return records

    def target_records(self, first_day: date, last_day: date) -> list[dict[str, Any]]:
        """SMART targets of every month and quarter that overlaps ``first_day``..``last_day``."""
        records = []
        for period, start in _periods(first_day, last_day):
            records.extend(self._period_targets(period, start))
        return records

    def _period_targets(self, period: str, start: date) -> list[dict[str, Any]]:
        # Rep, team and company targets per month; region and company targets per quarter.
        goals: list[tuple[str, str, str, list[Rep], tuple[float, float]]] = []
        if period == "month":
            for rep in self.reps:
                for metric in ("visits", "calls", "won_amount"):
                    goals.append(("rep", rep.rep_id, metric, [rep], (1.0, 1.3)))
            for team in self.teams:
                members = [rep for rep in self.reps if rep.team is team]
                for metric in ("won_amount", "deals_won"):
                    goals.append(("team", team.team_id, metric, members, (1.0, 1.3)))
            goals.append(("company", "all", "won_amount", self.reps, (1.2, 1.2)))
        else:
            for region_id, _, _ in self.regions:
                members = [rep for rep in self.reps if rep.team.region_id == region_id]
                for metric in ("won_amount", "new_customers"):
                    goals.append(("region", region_id, metric, members, (1.0, 1.3)))
            # "Grow revenue 20% this quarter."
            for metric in ("won_amount", "deals_won", "new_customers"):
                goals.append(("company", "all", metric, self.reps, (1.2, 1.2)))
        # One generator per period: a period's targets do not depend on the window asked for.
        rng = random.Random(f"{self.seed}:targets:{period}:{start.isoformat()}")
        months = 1 if period == "month" else 3
        records = []
        for level, entity_id, metric, reps, stretch in goals:
            base = _REP_MONTH_BASELINE[metric] * months * sum(rep.activity for rep in reps)
            step = 1000 if metric == "won_amount" else 1
            target = max(step, round(base * rng.uniform(*stretch) / step) * step)
            records.append(
                {
                    "level": level,
                    "entity_id": entity_id,
                    "metric": metric,
                    "period": period,
                    "period_start": start.isoformat(),
                    "target": target,
                }
            )
        return records


def _periods(first_day: date, last_day: date) -> list[tuple[str, date]]:
    periods = []
    for period, months in (("month", 1), ("quarter", 3)):
        start = date(first_day.year, first_day.month - (first_day.month - 1) % months, 1)
        while start <= last_day:
            periods.append((period, start))
            month = start.month - 1 + months
            start = date(start.year + month // 12, month % 12 + 1, 1)
    return periods


@dataclass
class SimulatedDeal:
    deal_id: str
    customer: Customer
    rep: Rep
    amount: Decimal
    currency: str | None
    expected_close: date | None
    slow: bool
    stage: str = "prospecting"
    lost_reason: str | None = None
    stalled: bool = False
    reopened: bool = False
    # Bumped when a stage episode begins or ends, so that calls, visits and transitions planned
    # for an earlier episode are recognised as stale and dropped.
    episode: int = 0
