"""The discrete-event simulation of the company's sales activity: calls, visits, deals through the
funnel, surveys and complaints, each planned on a heap and run at its simulated moment."""

import heapq
import math
import random
from collections.abc import Callable, Iterator, Sequence
from datetime import date, datetime, time, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from salespulse.schemas.events import FUNNEL_STAGES, OPEN_STAGES
from salespulse.simulator.company import Company, Customer, Rep, SimulatedDeal

_PROSPECT_ARRIVAL_DAYS = 90.0  # mean wait until a prospect's first contact
_VISIT_SHARE_OF_FOLLOW_UPS = {"A": 0.7, "B": 0.55, "C": 0.4}
_DEAL_EVERY_DAYS = {"A": 30.0, "B": 50.0, "C": 80.0}  # mean time between a customer's deals
_DEAL_AMOUNT_MEDIAN = {"A": 120_000, "B": 45_000, "C": 12_000}
_UNSOLICITED_FEEDBACK_EVERY_DAYS = 150.0
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


# --- the simulation ---------------------------------------------------------------------------------


_Action = Callable[[], None]


class Simulation:
    """The discrete-event simulation: a heap of planned actions, each run at its moment."""

    def __init__(self, company: Company, rng: random.Random, start: datetime, tag: str) -> None:
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
        self, event_type: str, rep: Rep, customer: Customer, deal: SimulatedDeal | None, **fields: Any
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

    def _visit(self, rep: Rep, customer: Customer, deal: SimulatedDeal | None) -> None:
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

    def _call(
        self, rep: Rep, customer: Customer, deal: SimulatedDeal | None, direction: str | None = None
    ) -> None:
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

    def _linked_deal(self, customer: Customer, share: float) -> SimulatedDeal | None:
        active = customer.active_deals()
        return self.rng.choice(active) if active and self.rng.random() < share else None

    def _feedback(self, rep: Rep, customer: Customer, deal: SimulatedDeal | None, context: str) -> None:
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

    def _routine_call(self, rep: Rep) -> None:
        known = [
            customer for customer in self.company.customers if customer.owner is rep and customer.acquired
        ]
        if known:
            customer = self.rng.choice(known)
            self._call(rep, customer, self._linked_deal(customer, 0.4))

    def _acquire(self, customer: Customer) -> None:
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

    def _plan_follow_up(self, customer: Customer) -> None:
        # Most customers are contacted a little before they are due; neglected ones far too late.
        factor = self.rng.uniform(1.3, 2.6) if customer.neglected else self.rng.uniform(0.5, 1.05)
        self._plan(self._at_work_after(customer.cadence_days * factor), self._follow_up, customer)

    def _follow_up(self, customer: Customer) -> None:
        deal = self._linked_deal(customer, 0.7)
        if self.rng.random() < _VISIT_SHARE_OF_FOLLOW_UPS[customer.tier]:
            self._visit(customer.owner, customer, deal)
        else:
            self._call(customer.owner, customer, deal, "outbound")
        self._plan_follow_up(customer)

    def _unsolicited(self, customer: Customer) -> None:
        self._feedback(customer.owner, customer, self._linked_deal(customer, 0.3), "unsolicited")
        self._plan(
            self._at_work_after(self.rng.expovariate(1 / _UNSOLICITED_FEEDBACK_EVERY_DAYS)),
            self._unsolicited,
            customer,
        )

    # --- deals -----------------------------------------------------------------------------------------------

    def _deal_event(self, deal: SimulatedDeal) -> None:
        fields: dict[str, Any] = {"stage": deal.stage, "amount": str(deal.amount)}
        if deal.currency is not None:
            fields["currency"] = deal.currency
        if deal.expected_close is not None:
            fields["expected_close_date"] = deal.expected_close.isoformat()
        if deal.lost_reason is not None:
            fields["lost_reason"] = deal.lost_reason
        self._emit("deal", deal.rep, deal.customer, deal, **fields)

    def _create_deal(self, customer: Customer) -> None:
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
        deal = SimulatedDeal(
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

    def _enter_stage(self, deal: SimulatedDeal) -> None:
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

    def _current(self, deal: SimulatedDeal, episode: int) -> bool:
        return deal.episode == episode and deal.stage in OPEN_STAGES and not deal.stalled

    def _touch(self, deal: SimulatedDeal, episode: int) -> None:
        if self._current(deal, episode):
            if self.rng.random() < 0.55:
                self._call(deal.rep, deal.customer, deal)
            else:
                self._visit(deal.rep, deal.customer, deal)

    def _update(self, deal: SimulatedDeal, episode: int) -> None:
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

    def _push_close_date(self, deal: SimulatedDeal, always: bool = False) -> None:
        today = self.now.date()
        if deal.expected_close is None:
            return
        overdue = deal.expected_close < today
        # Reps update an overdue close date most of the time, but not always: some open deals
        # are overdue while still being worked on.
        if always or (overdue and self.rng.random() < 0.6) or self.rng.random() < 0.2:
            deal.expected_close = max(deal.expected_close, today) + timedelta(days=self.rng.randint(7, 30))

    def _close_stage(self, deal: SimulatedDeal, episode: int, fate: str) -> None:
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

    def _lose(self, deal: SimulatedDeal, reason: str) -> None:
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

    def _won(self, deal: SimulatedDeal) -> None:
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

    def _reopen(self, deal: SimulatedDeal, episode: int) -> None:
        if deal.episode != episode or deal.stage != "won":
            return
        deal.stage, deal.reopened = "negotiation", True
        deal.expected_close = self.now.date() + timedelta(days=self.rng.randint(14, 40))
        self._deal_event(deal)
        self._enter_stage(deal)

    def _wake(self, deal: SimulatedDeal, episode: int) -> None:
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
