"""Realistic CRM traffic: an org, its customers and SMART targets, and the activity around its deals.

The simulated company sells to tiered customers (A/B/C) through reps grouped in teams and
regions (rep → team lead → regional manager). One rep changes team part-way, so the org history
has two records for them. Every customer is followed up on its tier's rhythm (定期回访), a few
are neglected; reps make calls and visits; deals move through the funnel prospecting →
qualified → proposal → negotiation → won/lost with stage-dependent odds. Some deals stall (no
activity for weeks, so they sit in their stage and their expected close date passes), some of
those come back to life, a won deal is occasionally reopened; customers answer CSAT and NPS
surveys and send complaints, praise and suggestions (some in Chinese).

One seeded discrete-event simulation produces it all (:class:`_Simulation`). Its clock is the
simulated time, and nothing in it looks at the wall clock or at the end of the period, so:

- :func:`generate_history` is deterministic for a seed, and a shorter history is a prefix of a
  longer one with the same seed and start (re-publishing a backfill is idempotent);
- :func:`run_live` replays the same stream at ``rate`` events/s, re-stamped with the wall
  clock: occurred_at is now, and an expected close date keeps its distance in days from the
  event. Simulated days go by in seconds, so deals visibly move through the funnel.

Amounts are decimal strings with two decimals, in the reporting currency (no ``currency``
field) unless ``SimulationOptions.currencies`` names others, which some deals then use.
"""

import hashlib
import heapq
import math
import random
import secrets
import signal
import threading
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, timezone, tzinfo
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path
from time import monotonic, sleep
from types import FrameType
from typing import Any

import orjson
from rich.console import Console

from salespulse.schemas.events import FUNNEL_STAGES, OPEN_STAGES
from salespulse.schemas.reference import TIER_FOLLOW_UP_DAYS
from salespulse.streams.publish import TopicPublisher
from salespulse.streams.settings import Settings

CHINA_STANDARD_TIME = timezone(timedelta(hours=8), "CST")

# --- the company ---------------------------------------------------------------------------------

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
    "伟", "芳", "娜", "敏", "静", "磊", "强", "洋", "艳", "勇", "军", "杰", "娟", "涛", "明", "超",
    "秀英", "丽", "平", "刚", "建华", "晓东", "文博", "欣怡", "子涵", "浩然", "雨桐", "志强", "海燕", "俊杰",
)  # fmt: skip

# --- customers -------------------------------------------------------------------------------------

_TIER_WEIGHTS = {"A": 0.2, "B": 0.3, "C": 0.5}
_FOLLOW_UP_OVERRIDES = {"A": (7, 10), "B": (21, 45), "C": (45, 90)}
_FOLLOW_UP_OVERRIDE_SHARE = 0.15
_NEGLECTED_SHARE = 0.12  # followed up far too late: they show in followup_due
_PROSPECT_SHARE = 0.35  # not customers yet at the start: each one is a new customer later
_PROSPECT_ARRIVAL_DAYS = 90.0  # mean wait until a prospect's first contact
_VISIT_SHARE_OF_FOLLOW_UPS = {"A": 0.7, "B": 0.55, "C": 0.4}
_DEAL_EVERY_DAYS = {"A": 30.0, "B": 50.0, "C": 80.0}  # mean time between a customer's deals
_DEAL_AMOUNT_MEDIAN = {"A": 120_000, "B": 45_000, "C": 12_000}
_UNSOLICITED_FEEDBACK_EVERY_DAYS = 150.0

# --- the funnel ------------------------------------------------------------------------------------

_NEXT_STAGE = {stage: FUNNEL_STAGES[index + 1] for index, stage in enumerate(OPEN_STAGES)}
_STAGE_DAYS = {"prospecting": 6.0, "qualified": 8.0, "proposal": 10.0, "negotiation": 7.0}
# Odds of how a stage ends: advance, lost, stall (go silent). They make about a quarter of
# deals win, close to what B2B teams see.
_STAGE_FATE = {
    "prospecting": (0.70, 0.20, 0.10),
    "qualified": (0.70, 0.20, 0.10),
    "proposal": (0.70, 0.22, 0.08),
    "negotiation": (0.72, 0.25, 0.03),
}
_REOPENED_FATE = (0.80, 0.20, 0.0)
_SLOW_DEAL_SHARE = 0.12  # still worked on, but stuck in each stage three times as long
_TOUCH_EVERY_DAYS = 3.5  # calls and visits about an active deal
_REOPEN_SHARE = 0.07
_REASSIGN_SHARE = 0.03  # a deal handed over to a teammate (the owner changes)
_NO_CLOSE_DATE_SHARE = 0.1
_LOST_REASONS = (
    "price too high",
    "chose a competitor",
    "no budget this year",
    "project postponed",
    "no decision",
)
_CURRENCY_SHARE = 0.25
# Rough units of each currency per unit of the reporting currency, only to keep amounts plausible.
_CURRENCY_SCALE = {
    "EUR": Decimal("0.92"),
    "CNY": Decimal("7.2"),
    "JPY": Decimal("150"),
    "GBP": Decimal("0.79"),
}

# --- activities --------------------------------------------------------------------------------------

_ROUTINE_CALLS_PER_DAY = 1.6
_WEEKEND_WORK = 0.05
_WORK_MINUTES = (8 * 60 + 30, 18 * 60 + 30)
_VISIT_OUTCOMES = (("completed", 0.85), ("cancelled", 0.10), ("no_show", 0.05))
_OUTBOUND_OUTCOMES = (("connected", 0.60), ("no_answer", 0.20), ("busy", 0.07), ("voicemail", 0.13))
_INBOUND_OUTCOMES = (("connected", 0.88), ("no_answer", 0.12))
_CSAT_AFTER_VISIT = 0.25
_NPS_AFTER_WIN = 0.7
_CSAT_WEIGHTS = (4, 6, 12, 38, 40)  # scores 1..5
_UNHAPPY_CSAT_WEIGHTS = (25, 25, 20, 15, 15)
_NPS_WEIGHTS = (1, 1, 1, 2, 2, 3, 5, 10, 20, 25, 30)  # scores 0..10
_COMMENTS = {
    "praise": (
        "服务很专业，响应及时",
        "产品质量稳定，很满意",
        "销售经理跟进很到位",
        "交付比预期快，点赞",
        "Great support from the account team",
        "Delivery was on time and the rollout went smoothly",
    ),
    "complaint": (
        "报价太高，性价比一般",
        "售后响应太慢，等了三天",
        "发票开具一再延误",
        "上门拜访时间一再推迟",
        "Invoices keep arriving late",
        "Nobody called back after our support request",
    ),
    "suggestion": (
        "希望提供更多培训资料",
        "建议增加线上演示",
        "希望合同审批流程更简化",
        "Please add a self-service portal for orders",
        "A quarterly business review would help",
    ),
}

# --- targets -------------------------------------------------------------------------------------------

# What an average rep achieves in a month once the simulation has warmed up (measured on long
# runs of this simulator); SMART targets stretch these by 0–30%, the company's revenue by 20%.
_REP_MONTH_BASELINE = {
    "visits": 20,
    "calls": 55,
    "won_amount": 70_000,
    "deals_won": 1.3,
    "new_customers": 0.5,
}
STATUS_EVERY_SECONDS = 5.0


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
class _Team:
    team_id: str
    name: str
    region_id: str
    lead_id: str


@dataclass
class _Rep:
    rep_id: str
    name: str
    team: _Team
    source: str
    activity: float  # how busy this rep is, around 1
    skill: float  # added to the odds of advancing a deal


@dataclass
class _Customer:
    customer_id: str
    tier: str
    follow_up_days: int | None
    owner: _Rep
    prospect: bool
    neglected: bool
    acquired: bool = False
    deals: list["_Deal"] = field(default_factory=list)

    @property
    def cadence_days(self) -> int:
        return self.follow_up_days or TIER_FOLLOW_UP_DAYS[self.tier]

    def active_deals(self) -> list["_Deal"]:
        return [deal for deal in self.deals if deal.stage in OPEN_STAGES and not deal.stalled]


@dataclass
class _Company:
    """The org chart, customers and target rules of one seed (no activity yet)."""

    seed: int
    options: SimulationOptions
    regions: list[tuple[str, str, str]]  # region_id, name, manager_id
    teams: list[_Team]
    reps: list[_Rep]
    mover: _Rep
    mover_to: _Team
    customers: list[_Customer]

    @classmethod
    def create(cls, seed: int, options: SimulationOptions) -> "_Company":
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
                _Team(f"{region_id}-{number}", f"{region_name}{numeral}组", region_id, rep_ids[index])
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
                _Rep(
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
                _Customer(
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

    def manager_of(self, rep_id: str, team: _Team) -> str:
        if rep_id == team.lead_id:
            return next(manager for region_id, _, manager in self.regions if region_id == team.region_id)
        return team.lead_id

    def org_records(self, since: date, move_on: date) -> list[dict[str, Any]]:
        """Every rep from ``since``; the mover's second record from ``move_on``."""
        records = [self._org_record(rep, rep.team, since) for rep in self.reps]
        records.append(self._org_record(self.mover, self.mover_to, move_on))
        return records

    def _org_record(self, rep: _Rep, team: _Team, effective_from: date) -> dict[str, Any]:
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
        goals: list[tuple[str, str, str, list[_Rep], tuple[float, float]]] = []
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


# --- the simulation ---------------------------------------------------------------------------------


@dataclass
class _Deal:
    deal_id: str
    customer: _Customer
    rep: _Rep
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


_Action = Callable[[], None]


class _Simulation:
    """The discrete-event simulation: a heap of planned actions, each run at its moment."""

    def __init__(self, company: _Company, rng: random.Random, start: datetime, tag: str) -> None:
        self.company = company
        self.options = company.options
        self.rng = rng
        self.tz = self.options.tz
        self.tag = tag
        self.now = start
        self._heap: list[tuple[datetime, int, _Action]] = []
        self._sequence = 0
        self._event_count = 0
        self._deal_count = 0
        self._wins = 0
        self._reopens = 0
        self._emitted: list[dict[str, Any]] = []
        self._plan(start, self._new_day)
        for customer in company.customers:
            if customer.prospect:
                self._plan(
                    self._at_work_after(rng.expovariate(1 / _PROSPECT_ARRIVAL_DAYS)), self._acquire, customer
                )
            else:
                # Existing customers: first contact within their rhythm (or the first two weeks).
                days = rng.uniform(0, min(customer.cadence_days, 14))
                self._plan(self._at_work_after(days), self._acquire, customer)

    def events(self) -> Iterator[tuple[datetime, dict[str, Any]]]:
        """Every event, in order of occurred_at, forever (the simulated company never closes)."""
        while self._heap:
            when, _, action = heapq.heappop(self._heap)
            self.now = when
            action()
            for event in self._emitted:
                yield when, event
            self._emitted.clear()

    # --- planning ---------------------------------------------------------------------------------

    def _plan(self, when: datetime, action: Callable[..., None], *args: Any) -> None:
        # Never in the past: the output must stay in chronological order.
        when = max(when, self.now)
        self._sequence += 1
        heapq.heappush(self._heap, (when, self._sequence, lambda: action(*args)))

    def _at_work(self, day: date) -> datetime:
        """A moment in working hours on ``day`` (a weekend day usually becomes Monday)."""
        if day.weekday() >= 5 and self.rng.random() > _WEEKEND_WORK:
            day += timedelta(days=7 - day.weekday())
        minutes = self.rng.randint(*_WORK_MINUTES)
        when = datetime.combine(day, time(), self.tz) + timedelta(
            minutes=minutes, seconds=self.rng.randint(0, 59)
        )
        if when <= self.now:  # today's working hours are over: a little later (overtime)
            when = self.now + timedelta(minutes=self.rng.randint(5, 90), seconds=self.rng.randint(0, 59))
        return when

    def _at_work_after(self, days: float) -> datetime:
        return self._at_work((self.now + timedelta(days=days)).date())

    def _poisson(self, mean: float) -> int:
        # Knuth's method: exact, deterministic, and fine for the small means used here.
        limit, count, product = math.exp(-mean), 0, self.rng.random()
        while product > limit:
            count += 1
            product *= self.rng.random()
        return count

    def _pick(self, weighted: Sequence[tuple[str, float]]) -> str:
        values, weights = zip(*weighted, strict=True)
        return self.rng.choices(values, weights=weights)[0]

    # --- events -------------------------------------------------------------------------------------

    def _emit(
        self, event_type: str, rep: _Rep, customer: _Customer, deal: _Deal | None, **fields: Any
    ) -> None:
        self._event_count += 1
        event: dict[str, Any] = {
            "event_type": event_type,
            "event_id": f"ev-{self.tag}-{self._event_count:06d}",
            "occurred_at": self.now.isoformat(timespec="seconds"),
            "rep_id": rep.rep_id,
            "customer_id": customer.customer_id,
        }
        if deal is not None:
            event["deal_id"] = deal.deal_id
        event["source"] = rep.source
        event.update(fields)
        self._emitted.append(event)

    def _visit(self, rep: _Rep, customer: _Customer, deal: _Deal | None) -> None:
        outcome = self._pick(_VISIT_OUTCOMES)
        if outcome == "completed":
            minutes = 5 * round(self.rng.uniform(20, 150) / 5)
        elif outcome == "no_show":
            minutes = self.rng.randint(0, 20)  # the rep waited, then left
        else:
            minutes = 0
        self._emit("visit", rep, customer, deal, duration_minutes=minutes, outcome=outcome)
        if outcome == "completed" and self.rng.random() < _CSAT_AFTER_VISIT:
            later = self.now + timedelta(hours=self.rng.uniform(1, 30))
            self._plan(later, self._feedback, rep, customer, deal, "visit")

    def _call(self, rep: _Rep, customer: _Customer, deal: _Deal | None, direction: str | None = None) -> None:
        direction = direction or ("inbound" if self.rng.random() < 0.2 else "outbound")
        outcome = self._pick(_INBOUND_OUTCOMES if direction == "inbound" else _OUTBOUND_OUTCOMES)
        if outcome == "connected":
            seconds = int(min(3600, self.rng.lognormvariate(math.log(240), 0.8)))
        elif outcome == "voicemail":
            seconds = self.rng.randint(15, 60)
        else:
            seconds = 0
        self._emit(
            "call", rep, customer, deal, direction=direction, duration_seconds=seconds, outcome=outcome
        )

    def _linked_deal(self, customer: _Customer, share: float) -> _Deal | None:
        active = customer.active_deals()
        return self.rng.choice(active) if active and self.rng.random() < share else None

    def _feedback(self, rep: _Rep, customer: _Customer, deal: _Deal | None, context: str) -> None:
        if context == "won" or (context == "visit" and self.rng.random() < 0.15):
            score_type, score = "nps", self.rng.choices(range(11), weights=_NPS_WEIGHTS)[0]
            mood = "good" if score >= 9 else "mixed" if score >= 7 else "bad"
        else:
            weights = _UNHAPPY_CSAT_WEIGHTS if context == "unsolicited" else _CSAT_WEIGHTS
            score_type, score = "csat", self.rng.choices(range(1, 6), weights=weights)[0]
            mood = "good" if score >= 4 else "mixed" if score == 3 else "bad"
        category = {
            "good": "praise" if self.rng.random() < 0.6 else None,
            "mixed": "suggestion" if self.rng.random() < 0.6 else None,
            "bad": "complaint" if self.rng.random() < 0.85 else None,
        }[mood]
        fields: dict[str, Any] = {"score_type": score_type, "score": score}
        if category is not None:
            fields["category"] = category
            if self.rng.random() < 0.55:
                fields["comment"] = self.rng.choice(_COMMENTS[category])
        self._emit("feedback", rep, customer, deal, **fields)

    # --- the daily routine and customer care -------------------------------------------------------------

    def _new_day(self) -> None:
        today = self.now.date()
        workday = today.weekday() < 5
        for rep in self.company.reps:
            mean = _ROUTINE_CALLS_PER_DAY * rep.activity if workday else 0.1
            for _ in range(self._poisson(mean)):
                minutes = self.rng.randint(*_WORK_MINUTES)
                self._plan(
                    self.now + timedelta(minutes=minutes, seconds=self.rng.randint(0, 59)),
                    self._routine_call,
                    rep,
                )
        self._plan(datetime.combine(today + timedelta(days=1), time(), self.tz), self._new_day)

    def _routine_call(self, rep: _Rep) -> None:
        known = [
            customer for customer in self.company.customers if customer.owner is rep and customer.acquired
        ]
        if known:
            customer = self.rng.choice(known)
            self._call(rep, customer, self._linked_deal(customer, 0.4))

    def _acquire(self, customer: _Customer) -> None:
        customer.acquired = True
        if self.rng.random() < 0.7:
            self._call(customer.owner, customer, None, "outbound")
        else:
            self._visit(customer.owner, customer, None)
        self._plan_follow_up(customer)
        mean = _DEAL_EVERY_DAYS[customer.tier]
        # A prospect usually becomes one because there is something to sell.
        days = (
            self.rng.uniform(0, 10)
            if customer.prospect and self.rng.random() < 0.6
            else self.rng.expovariate(1 / mean)
        )
        self._plan(self._at_work_after(days), self._create_deal, customer)
        self._plan(
            self._at_work_after(self.rng.expovariate(1 / _UNSOLICITED_FEEDBACK_EVERY_DAYS)),
            self._unsolicited,
            customer,
        )

    def _plan_follow_up(self, customer: _Customer) -> None:
        # Most customers are contacted a little before they are due; neglected ones far too late.
        factor = self.rng.uniform(1.3, 2.6) if customer.neglected else self.rng.uniform(0.5, 1.05)
        self._plan(self._at_work_after(customer.cadence_days * factor), self._follow_up, customer)

    def _follow_up(self, customer: _Customer) -> None:
        deal = self._linked_deal(customer, 0.7)
        if self.rng.random() < _VISIT_SHARE_OF_FOLLOW_UPS[customer.tier]:
            self._visit(customer.owner, customer, deal)
        else:
            self._call(customer.owner, customer, deal, "outbound")
        self._plan_follow_up(customer)

    def _unsolicited(self, customer: _Customer) -> None:
        self._feedback(customer.owner, customer, self._linked_deal(customer, 0.3), "unsolicited")
        self._plan(
            self._at_work_after(self.rng.expovariate(1 / _UNSOLICITED_FEEDBACK_EVERY_DAYS)),
            self._unsolicited,
            customer,
        )

    # --- deals -----------------------------------------------------------------------------------------------

    def _deal_event(self, deal: _Deal) -> None:
        fields: dict[str, Any] = {"stage": deal.stage, "amount": str(deal.amount)}
        if deal.currency is not None:
            fields["currency"] = deal.currency
        if deal.expected_close is not None:
            fields["expected_close_date"] = deal.expected_close.isoformat()
        if deal.lost_reason is not None:
            fields["lost_reason"] = deal.lost_reason
        self._emit("deal", deal.rep, deal.customer, deal, **fields)

    def _create_deal(self, customer: _Customer) -> None:
        mean = _DEAL_EVERY_DAYS[customer.tier]
        if customer.active_deals():  # one live opportunity per customer at a time
            self._plan(self._at_work_after(self.rng.uniform(10, 30)), self._create_deal, customer)
            return
        self._deal_count += 1
        amount = Decimal(_DEAL_AMOUNT_MEDIAN[customer.tier] * self.rng.lognormvariate(0, 0.45))
        currency = None
        if self.options.currencies and self.rng.random() < _CURRENCY_SHARE:
            currency = self.rng.choice(self.options.currencies)
            amount *= _CURRENCY_SCALE.get(currency, Decimal(1))
        closes = None
        if self.rng.random() >= _NO_CLOSE_DATE_SHARE:
            closes = self.now.date() + timedelta(days=self.rng.randint(21, 60))  # reps are optimists
        deal = _Deal(
            deal_id=f"deal-{self.tag}-{self._deal_count:04d}",
            customer=customer,
            rep=customer.owner,
            amount=amount.quantize(Decimal(100), rounding=ROUND_HALF_EVEN).quantize(Decimal("0.01")),
            currency=currency,
            expected_close=closes,
            slow=self.rng.random() < _SLOW_DEAL_SHARE,
        )
        customer.deals.append(deal)
        self._deal_event(deal)
        self._enter_stage(deal)
        self._plan(self._at_work_after(self.rng.expovariate(1 / mean)), self._create_deal, customer)

    def _enter_stage(self, deal: _Deal) -> None:
        deal.episode += 1
        episode = deal.episode
        advance, _, stall = _REOPENED_FATE if deal.reopened else _STAGE_FATE[deal.stage]
        advance = min(0.95, max(0.05, advance + deal.rep.skill))
        fate = self.rng.choices(("advance", "lost", "stall"), weights=(advance, 1 - advance - stall, stall))[
            0
        ]
        if fate == "stall":
            # Silence: no calls, visits or updates, while the expected close date goes by.
            deal.stalled = True
            self._plan(self._at_work_after(self.rng.uniform(20, 60)), self._wake, deal, episode)
            return
        days = _STAGE_DAYS[deal.stage] * self.rng.uniform(0.5, 1.6) * (3 if deal.slow else 1)
        for _ in range(self._poisson(days / _TOUCH_EVERY_DAYS * deal.rep.activity)):
            self._plan(self._at_work_after(self.rng.uniform(0, days)), self._touch, deal, episode)
        if days >= 4 and self.rng.random() < 0.3:
            self._plan(self._at_work_after(self.rng.uniform(1, days - 1)), self._update, deal, episode)
        self._plan(self._at_work_after(days), self._close_stage, deal, episode, fate)

    def _current(self, deal: _Deal, episode: int) -> bool:
        return deal.episode == episode and deal.stage in OPEN_STAGES and not deal.stalled

    def _touch(self, deal: _Deal, episode: int) -> None:
        if self._current(deal, episode):
            if self.rng.random() < 0.55:
                self._call(deal.rep, deal.customer, deal)
            else:
                self._visit(deal.rep, deal.customer, deal)

    def _update(self, deal: _Deal, episode: int) -> None:
        """A change within the stage: a revised amount or a slipping close date."""
        if not self._current(deal, episode):
            return
        if self.rng.random() < 0.5:
            deal.amount = (deal.amount * Decimal(str(round(self.rng.uniform(0.9, 1.2), 2)))).quantize(
                Decimal("0.01")
            )
        else:
            self._push_close_date(deal, always=True)
        self._deal_event(deal)

    def _push_close_date(self, deal: _Deal, always: bool = False) -> None:
        today = self.now.date()
        if deal.expected_close is None:
            return
        overdue = deal.expected_close < today
        # Reps update an overdue close date most of the time, but not always: some open deals
        # are overdue while still being worked on.
        if always or (overdue and self.rng.random() < 0.6) or self.rng.random() < 0.2:
            deal.expected_close = max(deal.expected_close, today) + timedelta(days=self.rng.randint(7, 30))

    def _close_stage(self, deal: _Deal, episode: int, fate: str) -> None:
        if not self._current(deal, episode):
            return
        if fate == "lost":
            self._lose(deal, self.rng.choice(_LOST_REASONS))
            return
        deal.stage = _NEXT_STAGE[deal.stage]
        if deal.stage in ("proposal", "negotiation", "won") and self.rng.random() < 0.45:
            # Proposals revise the scope, negotiations end with a discount.
            low, high = (0.9, 1.25) if deal.stage == "proposal" else (0.85, 0.98)
            deal.amount = (deal.amount * Decimal(str(round(self.rng.uniform(low, high), 3)))).quantize(
                Decimal("0.01")
            )
        if deal.stage != "won":
            self._push_close_date(deal)
            if self.rng.random() < _REASSIGN_SHARE:
                teammates = [
                    rep for rep in self.company.reps if rep.team is deal.rep.team and rep is not deal.rep
                ]
                deal.rep = self.rng.choice(teammates) if teammates else deal.rep
        self._deal_event(deal)
        if deal.stage == "won":
            self._won(deal)
        else:
            self._enter_stage(deal)

    def _lose(self, deal: _Deal, reason: str) -> None:
        deal.episode += 1
        deal.stage, deal.lost_reason, deal.stalled = "lost", reason, False
        self._deal_event(deal)
        if self.rng.random() < 0.15:
            self._plan(
                self.now + timedelta(hours=self.rng.uniform(2, 48)),
                self._feedback,
                deal.rep,
                deal.customer,
                deal,
                "unsolicited",
            )

    def _won(self, deal: _Deal) -> None:
        deal.episode += 1
        self._wins += 1
        if self.rng.random() < _NPS_AFTER_WIN:
            self._plan(
                self._at_work_after(self.rng.uniform(2, 10)),
                self._feedback,
                deal.rep,
                deal.customer,
                deal,
                "won",
            )
        self._plan(
            self._at_work_after(self.rng.uniform(1, 7)), self._visit, deal.rep, deal.customer, deal
        )  # kick-off
        # Occasionally the contract is reopened; make sure every history of some length has one.
        if self.rng.random() < _REOPEN_SHARE or (self._reopens == 0 and self._wins >= 3):
            self._reopens += 1
            self._plan(self._at_work_after(self.rng.uniform(3, 20)), self._reopen, deal, deal.episode)

    def _reopen(self, deal: _Deal, episode: int) -> None:
        if deal.episode != episode or deal.stage != "won":
            return
        deal.stage, deal.reopened = "negotiation", True
        deal.expected_close = self.now.date() + timedelta(days=self.rng.randint(14, 40))
        self._deal_event(deal)
        self._enter_stage(deal)

    def _wake(self, deal: _Deal, episode: int) -> None:
        """The end of a stall: the deal comes back, is written off, or stays silent for good."""
        if deal.episode != episode or not deal.stalled:
            return
        roll = self.rng.random()
        if roll < 0.4:
            deal.stalled = False
            self._push_close_date(deal)
            self._deal_event(deal)
            self._enter_stage(deal)
        elif roll < 0.75:
            self._lose(deal, "no decision")


# --- history ---------------------------------------------------------------------------------------------


def _midnight(day: date, tz: tzinfo) -> datetime:
    return datetime.combine(day, time(), tz)


def generate_history(
    start: date, days: int, seed: int, options: SimulationOptions | None = None
) -> SimulatedData:
    """``days`` days of simulated CRM history from ``start`` (local midnight in ``options.tz``).

    Deterministic for (start, seed, options); a shorter history is a prefix of a longer one.
    Org records take effect on ``start`` (the mover's second one half-way through), targets
    cover every month and quarter the period touches. Event and deal ids carry a tag derived
    from (seed, start, options), so publishing the same history twice changes nothing and
    histories with other seeds or starts do not collide.
    """
    if days < 1:
        raise ValueError(f"days must be at least 1, got {days}")
    options = options or SimulationOptions()
    company = _Company.create(seed, options)
    tag = hashlib.blake2s(f"{seed}|{start.isoformat()}|{options!r}".encode(), digest_size=3).hexdigest()
    simulation = _Simulation(company, random.Random(f"{seed}:activity"), _midnight(start, options.tz), tag)
    end = _midnight(start + timedelta(days=days), options.tz)
    events = []
    for when, event in simulation.events():
        if when >= end:
            break
        events.append(event)
    last = start + timedelta(days=days - 1)
    return SimulatedData(
        org=company.org_records(start, start + timedelta(days=max(1, days // 2))),
        customers=company.customer_records(),
        targets=company.target_records(start, last),
        events=events,
    )


# --- live ------------------------------------------------------------------------------------------------


@dataclass
class LiveSummary:
    """What :func:`run_live` published."""

    reference: dict[str, int]
    """Reference records by type (org, customers, targets)."""
    backfilled: dict[str, int]
    """Events with historical occurred_at (``backfill_days``), by type."""
    events: dict[str, int]
    """Live events (occurred_at ≈ now), by type."""
    seconds: float
    stopped_by: str
    """``duration`` or ``signal``."""

    def line(self) -> str:
        total = sum(self.events.values())
        by_type = ", ".join(f"{event_type} {self.events.get(event_type, 0)}" for event_type in _EVENT_TYPES)
        return f"sent {total} events ({by_type}) in {self.seconds:.0f}s"


_EVENT_TYPES = ("visit", "call", "deal", "feedback")


def _wall_clock() -> datetime:
    return datetime.now(UTC)


def _relive(event: dict[str, Any], simulated: datetime, now: datetime, tz: tzinfo) -> dict[str, Any]:
    """The event as if it happened ``now``: same content, occurred_at now, close date as far off."""
    local = now.astimezone(tz)
    event = {**event, "occurred_at": local.isoformat(timespec="milliseconds")}
    if "expected_close_date" in event:
        ahead = date.fromisoformat(event["expected_close_date"]) - simulated.date()
        event["expected_close_date"] = (local.date() + ahead).isoformat()
    return event


class _StopRequested:
    """SIGINT/SIGTERM set a flag the send loop checks, so it can flush before leaving.

    A second signal raises KeyboardInterrupt, for a user who does not want to wait.
    """

    def __init__(self) -> None:
        self.requested = False
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> "_StopRequested":
        if threading.current_thread() is threading.main_thread():
            for number in (signal.SIGINT, signal.SIGTERM):
                self._previous[number] = signal.signal(number, self._handle)
        return self

    def _handle(self, number: int, frame: FrameType | None) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def __exit__(self, *exc: object) -> None:
        for number, handler in self._previous.items():
            signal.signal(number, handler)


def run_live(
    settings: Settings,
    rate: float = 20.0,
    seed: int = 42,
    duration: float | None = None,
    *,
    quiet: bool = False,
    clock: Callable[[], datetime] = _wall_clock,
    options: SimulationOptions | None = None,
    backfill_days: int = 0,
    console: Console | None = None,
) -> LiveSummary:
    """Publish live CRM traffic until ``duration`` seconds pass or SIGINT/SIGTERM arrives.

    First the reference data (org, customers, targets of the current month and quarter and of
    the backfilled period), keyed as SPEC §3 says, acknowledged before anything else; then,
    with ``backfill_days``, that many days of history at full speed; then activity events at
    ``rate`` per second with occurred_at from ``clock`` (the wall clock). The same seed gives
    the same org, customers and sequence of events; event and deal ids get a fresh tag per run,
    so a restarted simulator adds new deals instead of colliding with the previous run's.
    Prints a status line every few seconds unless ``quiet``. On a signal it stops sending,
    waits for the broker to acknowledge what was sent, and returns.
    """
    if rate <= 0:
        raise ValueError(f"rate must be above 0 events per second, got {rate}")
    if backfill_days < 0:
        raise ValueError(f"backfill_days must be 0 or more, got {backfill_days}")
    options = options or SimulationOptions()
    console = console or Console(highlight=False, soft_wrap=True)
    started = monotonic()
    today = clock().astimezone(options.tz).date()
    first_day = today - timedelta(days=backfill_days)
    company = _Company.create(seed, options)
    # The org exists well before the first event; the mover changed team half-way through.
    since = min(first_day, today - timedelta(days=60))
    reference = {
        "org": company.org_records(since, since + timedelta(days=(today - since).days // 2)),
        "customers": company.customer_records(),
        "targets": company.target_records(first_day, today),
    }
    simulation = _Simulation(
        company, random.Random(f"{seed}:activity"), _midnight(first_day, options.tz), secrets.token_hex(3)
    )
    stream = simulation.events()
    backfilled: Counter[str] = Counter()
    sent: Counter[str] = Counter()
    with TopicPublisher(settings) as publisher, _StopRequested() as stop:
        for record_type, records in reference.items():
            for record in records:
                publisher.send_record(record_type, record)
        publisher.flush()
        if not quiet:
            console.print(
                f"published {len(reference['org'])} org, {len(reference['customers'])} customer and "
                f"{len(reference['targets'])} target records to {settings.broker}"
            )
        live_from = _midnight(today, options.tz)
        pending = None
        for when, event in stream:
            if when >= live_from or stop.requested:
                pending = (when, event)
                break
            publisher.send_record(event["event_type"], event)
            backfilled[event["event_type"]] += 1
        if backfilled:
            publisher.flush()
            if not quiet:
                console.print(f"backfilled {backfill_days} days: {sum(backfilled.values())} events")
        stopped_by = _send_live(
            publisher, stream, pending, rate, duration, started, stop, clock, options.tz, sent, console, quiet
        )
        publisher.flush()
    summary = LiveSummary(
        reference={name: len(records) for name, records in reference.items()},
        backfilled=dict(backfilled),
        events=dict(sent),
        seconds=monotonic() - started,
        stopped_by=stopped_by,
    )
    if not quiet:
        console.print(f"stopped ({stopped_by}): {summary.line()}")
    return summary


def _send_live(
    publisher: TopicPublisher,
    stream: Iterator[tuple[datetime, dict[str, Any]]],
    pending: tuple[datetime, dict[str, Any]] | None,
    rate: float,
    duration: float | None,
    started: float,
    stop: _StopRequested,
    clock: Callable[[], datetime],
    tz: tzinfo,
    sent: Counter[str],
    console: Console,
    quiet: bool,
) -> str:
    """The paced send loop of :func:`run_live`; returns why it stopped."""
    deadline = None if duration is None else started + duration
    interval = 1.0 / rate
    due = monotonic()
    next_status = due + STATUS_EVERY_SECONDS
    status_sent = 0
    status_at = due
    while True:
        # Sleep in short steps so that a signal or the deadline is noticed promptly.
        while (now := monotonic()) < due:
            if stop.requested or (deadline is not None and now >= deadline):
                break
            sleep(min(0.1, due - now))
        now = monotonic()
        if stop.requested:
            return "signal"
        if deadline is not None and now >= deadline:
            return "duration"
        when, event = pending if pending is not None else next(stream)
        pending = None
        publisher.send_record(event["event_type"], _relive(event, when, clock(), tz))
        sent[event["event_type"]] += 1
        # Keep the average rate, but after a stall (a slow broker) do not burst to catch up.
        due = max(due + interval, now - 1.0)
        if now >= next_status:
            publisher.raise_failures()  # a broker that went away stops the simulator with a clear error
            if not quiet:
                total = sum(sent.values())
                pace = (total - status_sent) / max(now - status_at, 1e-9)
                by_type = ", ".join(f"{name} {sent.get(name, 0)}" for name in _EVENT_TYPES)
                console.print(
                    f"{clock().astimezone(tz):%H:%M:%S} sent {total} events ({by_type}), {pace:.1f}/s"
                )
                status_sent, status_at = total, now
            next_status = now + STATUS_EVERY_SECONDS
