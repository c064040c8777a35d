"""An independent model of the ClickHouse views, written from docs/semantics.md alone.

The acceptance tests compare the rows salespulse serves with the rows computed here. Nothing
in this module comes from the code under test (salespulse.sinks, salespulse.streams): it is
plain Python with Decimal arithmetic, one function per view, following the wording of
docs/semantics.md. Where that page leaves a choice open, the reading taken is named in a
comment starting with "Reading:".

Inputs are in delivery order (the order the pipeline accepts the messages). Events are the
dicts CRMs publish, each carrying its ``event_type``; org records are the dicts published on
the org topic, in publish order.
"""

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any
from zoneinfo import ZoneInfo

OPEN_STAGES: tuple[str, ...] = ("prospecting", "qualified", "proposal", "negotiation")
# The funnel order of semantics.md § stage_conversion; `lost` is an exit, not a stage reached.
FUNNEL_RANK: dict[str, int] = {stage: rank for rank, stage in enumerate((*OPEN_STAGES, "won"))}
# Reading: stage_order numbers the open stages from 1 (prospecting) to 4 (negotiation).
STAGE_ORDER: dict[str, int] = {stage: rank + 1 for rank, stage in enumerate(OPEN_STAGES)}

DEFAULT_STAGE_PROBABILITIES: dict[str, Decimal] = {
    "prospecting": Decimal("0.10"),
    "qualified": Decimal("0.25"),
    "proposal": Decimal("0.50"),
    "negotiation": Decimal("0.75"),
}

UNASSIGNED = "unassigned"
COMPANY_ENTITY = "all"
LEVELS: tuple[str, ...] = ("rep", "team", "region", "company")

AMOUNT_STEP = Decimal("0.0001")  # Decimal(38, 4)
WEIGHTED_STEP = Decimal("0.00000001")  # Decimal(38, 8)
ORIGINAL_STEP = Decimal("0.0000000001")  # original_amount, Decimal(38, 10)

KPI_COLUMNS: tuple[str, ...] = (
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
KPI_INDEX: dict[str, int] = {name: index for index, name in enumerate(KPI_COLUMNS)}

DEALS_CURRENT_COLUMNS: tuple[str, ...] = (
    "deal_id",
    "rep_id",
    "team_id",
    "region_id",
    "customer_id",
    "stage",
    "status",
    "amount",
    "currency",
    "created_at",
    "stage_entered_at",
    "last_activity_at",
    "expected_close_date",
    "closed_at",
    "updated_at",
    "original_amount",
    "original_currency",
    "lost_reason",
)
STAGE_CONVERSION_COLUMNS: tuple[str, ...] = (
    "level",
    "entity_id",
    "stage",
    "stage_order",
    "entered",
    "advanced",
    "conversion",
)
PIPELINE_CURRENT_COLUMNS: tuple[str, ...] = (
    "level",
    "entity_id",
    "stage",
    "open_deals",
    "open_amount",
    "weighted_amount",
)
KPI_DAILY_COLUMNS: tuple[str, ...] = ("day", "level", "entity_id", *KPI_COLUMNS)


# --------------------------------------------------------------------------- parsing


def parse_timestamp(text: str) -> datetime:
    """An RFC 3339 timestamp with an offset, as an aware datetime (microsecond precision)."""
    value = datetime.fromisoformat(text)
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"timestamp without an offset: {text!r}")
    return value


def to_naive_utc(value: datetime) -> datetime:
    """How clickhouse-connect returns a DateTime64(6, 'UTC'): naive, in UTC."""
    return value.astimezone(UTC).replace(tzinfo=None)


def parse_amount(value: Any) -> Decimal:
    """A JSON number or a decimal string, as a Decimal."""
    if isinstance(value, bool):
        raise TypeError("a boolean is not an amount")
    if isinstance(value, float):
        # Reading: a JSON float reaches the pipeline as the float's shortest repr (how pydantic
        # parses JSON numbers into Decimal); the scenarios send strings or integers.
        return Decimal(repr(value))
    if isinstance(value, int | str | Decimal):
        return Decimal(value)
    raise TypeError(f"not an amount: {value!r}")


def round_amount(value: Decimal) -> Decimal:
    """Half-to-even to 4 decimal places (semantics.md § Amounts)."""
    return value.quantize(AMOUNT_STEP, rounding=ROUND_HALF_EVEN)


def _as_date(value: Any) -> date:
    return value if isinstance(value, date) else date.fromisoformat(value)


# --------------------------------------------------------------------------- org history


class OrgHistory:
    """The org records currently known, one per key rep_id|effective_from (later wins)."""

    def __init__(self, records: Iterable[Mapping[str, Any]]) -> None:
        by_key: dict[tuple[str, date], tuple[str, str]] = {}
        for record in records:
            key = (record["rep_id"], _as_date(record["effective_from"]))
            by_key[key] = (record["team_id"], record["region_id"])
        self._by_rep: dict[str, list[tuple[date, str, str]]] = defaultdict(list)
        for (rep_id, effective_from), (team_id, region_id) in by_key.items():
            self._by_rep[rep_id].append((effective_from, team_id, region_id))
        for history in self._by_rep.values():
            history.sort()

    def team_and_region(self, rep_id: str, day: date) -> tuple[str, str]:
        """The record with the greatest effective_from ≤ day; `unassigned` when there is none."""
        found = (UNASSIGNED, UNASSIGNED)
        for effective_from, team_id, region_id in self._by_rep.get(rep_id, ()):
            if effective_from <= day:
                found = (team_id, region_id)
        return found

    def entities(self, rep_id: str, day: date) -> list[tuple[str, str]]:
        """(level, entity_id) of the four levels an activity of rep_id on day counts toward."""
        team_id, region_id = self.team_and_region(rep_id, day)
        return [("rep", rep_id), ("team", team_id), ("region", region_id), ("company", COMPANY_ENTITY)]


# --------------------------------------------------------------------------- events


@dataclass(frozen=True)
class _Event:
    seq: int  # delivery position among accepted events
    event_type: str
    event_id: str
    at: datetime  # aware
    day: date  # in the reporting time zone
    rep_id: str
    customer_id: str
    deal_id: str | None
    body: Mapping[str, Any] = field(repr=False)

    @property
    def order_key(self) -> tuple[datetime, int]:
        """History order of a deal: occurred_at, ties by delivery order."""
        return (self.at, self.seq)


def accept(events: Iterable[Mapping[str, Any]], zone: ZoneInfo) -> list[_Event]:
    """The accepted events in delivery order: the first copy of each event_id; later ones are duplicates."""
    seen: set[str] = set()
    accepted: list[_Event] = []
    for body in events:
        event_id = body["event_id"]
        if event_id in seen:
            continue
        seen.add(event_id)
        event_type = body["event_type"]
        if event_type not in ("visit", "call", "deal", "feedback"):
            raise ValueError(f"unknown event_type {event_type!r}")
        at = parse_timestamp(body["occurred_at"])
        accepted.append(
            _Event(
                seq=len(accepted),
                event_type=event_type,
                event_id=event_id,
                at=at,
                day=at.astimezone(zone).date(),
                rep_id=body["rep_id"],
                customer_id=body["customer_id"],
                deal_id=body.get("deal_id"),
                body=body,
            )
        )
    return accepted


# --------------------------------------------------------------------------- deals


@dataclass
class DealState:
    """Everything the views need about one deal."""

    deal_id: str
    history: list[_Event]  # ordered by occurred_at, ties by delivery order
    amounts: list[Decimal]  # converted amount of each history event (reporting currency, 4 dp)
    last_activity_at: datetime

    @property
    def first(self) -> _Event:
        return self.history[0]

    @property
    def current(self) -> _Event:
        return self.history[-1]

    @property
    def stage(self) -> str:
        return str(self.current.body["stage"])

    @property
    def status(self) -> str:
        return self.stage if self.stage in ("won", "lost") else "open"

    @property
    def amount(self) -> Decimal:
        return self.amounts[-1]

    @property
    def final_run_start(self) -> _Event:
        """The first event of the final run of events whose stage equals the current stage."""
        index = len(self.history) - 1
        while index > 0 and self.history[index - 1].body["stage"] == self.stage:
            index -= 1
        return self.history[index]

    @property
    def closing(self) -> _Event | None:
        return self.final_run_start if self.status != "open" else None

    @property
    def highest_rank(self) -> int | None:
        """Rank of the furthest funnel stage among all events; None if the deal only ever was `lost`."""
        ranks = [
            FUNNEL_RANK[str(event.body["stage"])] for event in self.history if event.body["stage"] != "lost"
        ]
        # Reading: a deal whose every event is `lost` reached no stage and is in no stage_conversion row.
        return max(ranks) if ranks else None


class _Converter:
    def __init__(self, reporting_currency: str, currency_rates: Mapping[str, Any]) -> None:
        self.reporting_currency = reporting_currency
        self.rates = {code: Decimal(str(rate)) for code, rate in currency_rates.items()}

    def currency_of(self, body: Mapping[str, Any]) -> str:
        currency = body.get("currency")
        return self.reporting_currency if currency is None else str(currency)

    def convert(self, body: Mapping[str, Any]) -> Decimal:
        currency = self.currency_of(body)
        if currency == self.reporting_currency:
            rate = Decimal(1)
        elif currency in self.rates:
            rate = self.rates[currency]
        else:
            raise ValueError(f"event {body['event_id']}: no rate for {currency} (the pipeline rejects it)")
        return round_amount(parse_amount(body["amount"]) * rate)


def build_deals(accepted: list[_Event], converter: _Converter) -> dict[str, DealState]:
    deal_events: dict[str, list[_Event]] = defaultdict(list)
    for event in accepted:
        if event.event_type == "deal":
            deal_events[str(event.deal_id)].append(event)
    deals: dict[str, DealState] = {}
    for deal_id, events in deal_events.items():
        history = sorted(events, key=lambda event: event.order_key)
        deals[deal_id] = DealState(
            deal_id=deal_id,
            history=history,
            amounts=[converter.convert(event.body) for event in history],
            last_activity_at=max(event.at for event in history),
        )
    # Linked activities: visits, calls and feedback carrying a deal's deal_id. A deal_id seen
    # only on those is not a deal.
    for event in accepted:
        if event.event_type != "deal" and event.deal_id in deals:
            state = deals[event.deal_id]
            state.last_activity_at = max(state.last_activity_at, event.at)
    return deals


# --------------------------------------------------------------------------- views


@dataclass
class _Model:
    org: OrgHistory
    accepted: list[_Event]
    deals: dict[str, DealState]
    converter: _Converter
    probabilities: Mapping[str, Decimal]

    def deal_entities(self, deal: DealState) -> list[tuple[str, str]]:
        """The current owner, with the team and region on the day of the current state's event."""
        return self.org.entities(deal.current.rep_id, deal.current.day)

    # kpi_daily ---------------------------------------------------------------

    def kpi_daily(self) -> list[tuple[Any, ...]]:
        cells: dict[tuple[date, str, str], list[Any]] = {}

        def add(day: date, rep_id: str, column: str, value: int | Decimal = 1) -> None:
            for level, entity_id in self.org.entities(rep_id, day):
                row = cells.setdefault((day, level, entity_id), [0] * len(KPI_COLUMNS))
                row[KPI_INDEX[column]] += value

        for event in self.accepted:
            body = event.body
            if event.event_type == "visit":
                add(event.day, event.rep_id, "visits")
                if body["outcome"] == "completed":
                    add(event.day, event.rep_id, "visits_completed")
            elif event.event_type == "call":
                add(event.day, event.rep_id, "calls")
                if body["outcome"] == "connected":
                    add(event.day, event.rep_id, "calls_connected")
                add(event.day, event.rep_id, "call_seconds", int(body["duration_seconds"]))
            elif event.event_type == "feedback":
                score = int(body["score"])
                if body["score_type"] == "csat":
                    add(event.day, event.rep_id, "csat_count")
                    add(event.day, event.rep_id, "csat_sum", score)
                    if score >= 4:
                        add(event.day, event.rep_id, "csat_satisfied")
                else:
                    add(event.day, event.rep_id, "nps_count")
                    if score >= 9:
                        add(event.day, event.rep_id, "nps_promoters")
                    if score <= 6:
                        add(event.day, event.rep_id, "nps_detractors")
                if body.get("category") == "complaint":
                    add(event.day, event.rep_id, "complaints")

        # new_customers: the customer's first event, earliest occurred_at, ties by smaller event_id.
        firsts: dict[str, _Event] = {}
        for event in self.accepted:
            known = firsts.get(event.customer_id)
            if known is None or (event.at, event.event_id) < (known.at, known.event_id):
                firsts[event.customer_id] = event
        for event in firsts.values():
            add(event.day, event.rep_id, "new_customers")

        for deal in self.deals.values():
            created = deal.first
            add(created.day, created.rep_id, "deals_created")
            closing = deal.closing
            if closing is None:
                continue
            if deal.status == "won":
                add(closing.day, closing.rep_id, "deals_won")
                add(closing.day, closing.rep_id, "won_amount", deal.amount)
                add(closing.day, closing.rep_id, "cycle_days_sum", (closing.day - created.day).days)
            else:
                add(closing.day, closing.rep_id, "deals_lost")

        rows = []
        for (day, level, entity_id), values in cells.items():
            if not any(values):
                continue
            won = KPI_INDEX["won_amount"]
            values[won] = round_amount(Decimal(values[won]))
            rows.append((day, level, entity_id, *values))
        return sorted(rows)

    # deals_current -----------------------------------------------------------

    def deals_current(self) -> list[tuple[Any, ...]]:
        rows = []
        for deal in self.deals.values():
            current = deal.current
            body = current.body
            team_id, region_id = self.org.team_and_region(current.rep_id, current.day)
            closing = deal.closing
            expected_close = body.get("expected_close_date")
            rows.append(
                (
                    deal.deal_id,
                    current.rep_id,
                    team_id,
                    region_id,
                    current.customer_id,
                    deal.stage,
                    deal.status,
                    deal.amount,
                    # Reading: `currency` is the currency of `amount`, i.e. the reporting currency.
                    self.converter.reporting_currency,
                    to_naive_utc(deal.first.at),
                    to_naive_utc(deal.final_run_start.at),
                    to_naive_utc(deal.last_activity_at),
                    None if expected_close is None else _as_date(expected_close),
                    None if closing is None else to_naive_utc(closing.at),
                    to_naive_utc(current.at),
                    parse_amount(body["amount"]).quantize(ORIGINAL_STEP, rounding=ROUND_HALF_EVEN),
                    # Reading: a deal event without `currency` was in the reporting currency.
                    self.converter.currency_of(body),
                    # Reading: the current event's lost_reason, None when it has none.
                    body.get("lost_reason"),
                )
            )
        return sorted(rows)

    # stage_conversion --------------------------------------------------------

    def stage_conversion(self) -> list[tuple[Any, ...]]:
        counts: dict[tuple[str, str, str], list[int]] = {}
        for deal in self.deals.values():
            highest = deal.highest_rank
            if highest is None:
                continue
            for level, entity_id in self.deal_entities(deal):
                for stage in OPEN_STAGES:
                    rank = FUNNEL_RANK[stage]
                    if highest < rank:
                        continue
                    cell = counts.setdefault((level, entity_id, stage), [0, 0])
                    cell[0] += 1
                    if highest > rank:
                        cell[1] += 1
        rows = [
            (level, entity_id, stage, STAGE_ORDER[stage], entered, advanced, advanced / entered)
            for (level, entity_id, stage), (entered, advanced) in counts.items()
        ]
        return sorted(rows)

    # pipeline_current --------------------------------------------------------

    def pipeline_current(self) -> list[tuple[Any, ...]]:
        cells: dict[tuple[str, str, str], list[Any]] = {}
        for deal in self.deals.values():
            if deal.status != "open":
                continue
            weighted = deal.amount * self.probabilities[deal.stage]
            for level, entity_id in self.deal_entities(deal):
                cell = cells.setdefault((level, entity_id, deal.stage), [0, Decimal(0), Decimal(0)])
                cell[0] += 1
                cell[1] += deal.amount
                cell[2] += weighted
        rows = [
            (
                level,
                entity_id,
                stage,
                count,
                round_amount(amount),
                weighted.quantize(WEIGHTED_STEP, rounding=ROUND_HALF_EVEN),
            )
            for (level, entity_id, stage), (count, amount, weighted) in cells.items()
        ]
        return sorted(rows)


def expected_views(
    org: list[dict[str, Any]],
    events: list[dict[str, Any]],
    *,
    timezone: str,
    reporting_currency: str,
    currency_rates: dict[str, str],
    stage_probabilities: dict[str, Decimal] | None = None,
) -> dict[str, list[tuple[Any, ...]]]:
    """The expected rows of kpi_daily, deals_current, stage_conversion and pipeline_current, sorted.

    ``events`` are in delivery order; a later event with an already-seen event_id is a duplicate
    and changes nothing. ``org`` is in publish order; a later record with the same
    rep_id|effective_from replaces the earlier one.
    """
    zone = ZoneInfo(timezone)
    converter = _Converter(reporting_currency, currency_rates)
    accepted = accept(events, zone)
    probabilities = {**DEFAULT_STAGE_PROBABILITIES, **(stage_probabilities or {})}
    model = _Model(
        org=OrgHistory(org),
        accepted=accepted,
        deals=build_deals(accepted, converter),
        converter=converter,
        probabilities={stage: Decimal(str(p)) for stage, p in probabilities.items()},
    )
    return {
        "kpi_daily": model.kpi_daily(),
        "deals_current": model.deals_current(),
        "stage_conversion": model.stage_conversion(),
        "pipeline_current": model.pipeline_current(),
    }
