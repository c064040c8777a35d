"""A scripted, deterministic scenario for the acceptance tests, and a set of malformed messages.

``build_scenario(seed)`` returns a small org (2 regions, 3 teams, 6 reps with org records and one
without) and about 2,000 activity events over two months (Feb–Mar 2026) in the reporting time
zone Asia/Shanghai. Hand-written special cases (see ``Scenario.special``) sit on top of a seeded
random bulk.

Delivery order is list order: ``Scenario.events`` is the order in which the events are to be
published, and the expected rows (tests/oracle/reference_model.py) depend on it where semantics.md
says so (two events of one deal with the same occurred_at: the later-delivered one wins).
Publish deal events keyed by deal_id so that one deal's events stay in order on one partition.
Most events are listed in occurred_at order; a few are listed late on purpose (an older deal
event arriving after a newer one, a customer's first event arriving after a later one).

``Scenario.org`` is in publish order too: a later record with the same rep_id|effective_from
replaces the earlier one.
"""

import random
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import orjson

TIMEZONE = "Asia/Shanghai"
ZONE = ZoneInfo(TIMEZONE)
REPORTING_CURRENCY = "USD"
CURRENCY_RATES = {"EUR": "1.08"}
PERIOD_START = datetime(2026, 2, 1, tzinfo=ZONE)
PERIOD_END = datetime(2026, 4, 1, tzinfo=ZONE)  # exclusive
SOURCE = "scenario-crm"

REP_IDS = [f"rep-0{n}" for n in range(1, 8)]
REP_01, REP_02, REP_03, REP_04, REP_05, REP_06, REP_07 = REP_IDS
TEAM_CHANGE_DAY = date(2026, 3, 2)  # rep-03 moves from team-tianjin/north to team-guangzhou/south
REP_06_JOINS = date(2026, 2, 5)  # rep-06's only record starts after the period starts

# Offsets occurred_at is written with; the day is always taken in Asia/Shanghai.
OFFSETS = {
    "+08:00": timezone(timedelta(hours=8)),
    "Z": UTC,
    "-05:00": timezone(timedelta(hours=-5)),
    "+05:45": timezone(timedelta(hours=5, minutes=45)),
    "+09:00": timezone(timedelta(hours=9)),
}


@dataclass
class Scenario:
    org: list[dict[str, Any]]
    events: list[dict[str, Any]]
    currency_rates: dict[str, str] = field(default_factory=lambda: dict(CURRENCY_RATES))
    reporting_currency: str = REPORTING_CURRENCY
    timezone: str = TIMEZONE
    # Special case name → the deal_id, customer_id or rep_id that carries it, for spot checks.
    special: dict[str, str] = field(default_factory=dict)

    @property
    def deal_events(self) -> list[dict[str, Any]]:
        return [event for event in self.events if event["event_type"] == "deal"]

    def counts(self) -> dict[str, int]:
        result: dict[str, int] = {}
        for event in self.events:
            result[event["event_type"]] = result.get(event["event_type"], 0) + 1
        return result


@dataclass(frozen=True)
class Malformed:
    """A message that must be rejected: its topic's event type, raw value and the decoder's reason."""

    topic_type: str
    value: bytes | None
    expected_reason: str
    kind: str = ""  # what is wrong with it, e.g. "unknown_stage"
    label: str = ""  # unique per message (also its event_id when it has one); usable as the Kafka key


# --------------------------------------------------------------------------- helpers


def local(month: int, day: int, hour: int = 10, minute: int = 0, second: int = 0, micro: int = 0) -> datetime:
    """A moment given in Asia/Shanghai wall-clock time, 2026."""
    return datetime(2026, month, day, hour, minute, second, micro, tzinfo=ZONE)


def render(at: datetime, offset: str = "+08:00") -> str:
    """RFC 3339 text of ``at`` written with the given offset ("Z" for UTC)."""
    text = at.astimezone(OFFSETS[offset]).isoformat()
    return text[:-6] + "Z" if offset == "Z" else text


def org_record(rep_id: str, effective_from: str, team_id: str, region_id: str) -> dict[str, Any]:
    team_names = {"team-beijing": "北京一组", "team-tianjin": "天津组", "team-guangzhou": "广州组"}
    managers = {"team-beijing": "mgr-bj", "team-tianjin": "mgr-tj", "team-guangzhou": "mgr-gz"}
    return {
        "rep_id": rep_id,
        "rep_name": f"Rep {rep_id[-2:]}",
        "team_id": team_id,
        "team_name": team_names[team_id],
        "manager_id": managers[team_id],
        "region_id": region_id,
        "effective_from": effective_from,
    }


def build_org() -> list[dict[str, Any]]:
    """Org records in publish order."""
    return [
        org_record(REP_01, "2024-01-01", "team-tianjin", "north"),  # superseded by 2025-01-01
        org_record(REP_01, "2025-01-01", "team-beijing", "north"),
        org_record(REP_02, "2025-01-01", "team-beijing", "north"),
        org_record(REP_02, "2026-06-01", "team-guangzhou", "south"),  # after the period: no effect
        # rep-03 changes team AND region on 2026-03-02; the newer record is published first.
        org_record(REP_03, TEAM_CHANGE_DAY.isoformat(), "team-guangzhou", "south"),
        org_record(REP_03, "2025-06-01", "team-tianjin", "north"),
        org_record(REP_04, "2025-01-01", "team-tianjin", "north"),
        org_record(REP_05, "2025-09-01", "team-tianjin", "north"),  # replaced below (same key)
        org_record(REP_06, REP_06_JOINS.isoformat(), "team-guangzhou", "south"),
        org_record(REP_05, "2025-09-01", "team-guangzhou", "south"),  # replaces rep-05|2025-09-01
        # rep-07 has no org record at all: unassigned.
    ]


class _Builder:
    """Collects events with the moment each is to be published (normally its occurred_at)."""

    def __init__(self) -> None:
        self._items: list[tuple[datetime, int, dict[str, Any]]] = []
        self._ids: dict[str, int] = {}
        self._seen_ids: set[str] = set()

    def _next_id(self, prefix: str) -> str:
        self._ids[prefix] = self._ids.get(prefix, 0) + 1
        return f"{prefix}-{self._ids[prefix]:05d}"

    def _add(
        self,
        event_type: str,
        event_id: str | None,
        at: datetime,
        offset: str,
        rep_id: str,
        customer_id: str,
        deal_id: str | None,
        fields: dict[str, Any],
        publish_at: datetime | None,
    ) -> dict[str, Any]:
        event_id = event_id or self._next_id(event_type[0])
        assert event_id not in self._seen_ids, event_id
        self._seen_ids.add(event_id)
        event: dict[str, Any] = {
            "event_id": event_id,
            "event_type": event_type,
            "occurred_at": render(at, offset),
            "rep_id": rep_id,
            "customer_id": customer_id,
        }
        if deal_id is not None:
            event["deal_id"] = deal_id
        event.update(fields)
        event["source"] = SOURCE
        self._items.append((publish_at or at, len(self._items), event))
        return event

    def visit(
        self,
        at: datetime,
        rep_id: str,
        customer_id: str,
        outcome: str = "completed",
        minutes: int = 30,
        *,
        deal_id: str | None = None,
        offset: str = "+08:00",
        event_id: str | None = None,
        publish_at: datetime | None = None,
    ) -> dict[str, Any]:
        fields = {"duration_minutes": minutes, "outcome": outcome}
        return self._add("visit", event_id, at, offset, rep_id, customer_id, deal_id, fields, publish_at)

    def call(
        self,
        at: datetime,
        rep_id: str,
        customer_id: str,
        outcome: str = "connected",
        seconds: int = 120,
        direction: str = "outbound",
        *,
        deal_id: str | None = None,
        offset: str = "+08:00",
        event_id: str | None = None,
        publish_at: datetime | None = None,
    ) -> dict[str, Any]:
        fields = {"direction": direction, "duration_seconds": seconds, "outcome": outcome}
        return self._add("call", event_id, at, offset, rep_id, customer_id, deal_id, fields, publish_at)

    def feedback(
        self,
        at: datetime,
        rep_id: str,
        customer_id: str,
        score_type: str,
        score: int,
        category: str | None = None,
        comment: str | None = None,
        *,
        deal_id: str | None = None,
        offset: str = "+08:00",
        event_id: str | None = None,
        publish_at: datetime | None = None,
    ) -> dict[str, Any]:
        fields: dict[str, Any] = {"score_type": score_type, "score": score}
        if category is not None:
            fields["category"] = category
        if comment is not None:
            fields["comment"] = comment
        return self._add("feedback", event_id, at, offset, rep_id, customer_id, deal_id, fields, publish_at)

    def deal(
        self,
        at: datetime,
        rep_id: str,
        customer_id: str,
        deal_id: str,
        stage: str,
        amount: str | int,
        currency: str | None = "USD",
        *,
        expected_close_date: str | None = None,
        lost_reason: str | None = None,
        offset: str = "+08:00",
        event_id: str | None = None,
        publish_at: datetime | None = None,
    ) -> dict[str, Any]:
        fields: dict[str, Any] = {"stage": stage, "amount": amount}
        if currency is not None:
            fields["currency"] = currency
        if expected_close_date is not None:
            fields["expected_close_date"] = expected_close_date
        if lost_reason is not None:
            fields["lost_reason"] = lost_reason
        return self._add("deal", event_id, at, offset, rep_id, customer_id, deal_id, fields, publish_at)

    def events(self) -> list[dict[str, Any]]:
        """In publish order: by publish moment, then in the order they were added."""
        return [event for _, _, event in sorted(self._items, key=lambda item: (item[0], item[1]))]


# --------------------------------------------------------------------------- scripted cases


def _scripted(b: _Builder, special: dict[str, str]) -> None:
    """Hand-written special cases. Times are Shanghai wall-clock unless an offset says otherwise."""

    def deal_case(name: str, deal_id: str) -> str:
        special[name] = deal_id
        return deal_id

    # -- Deals -------------------------------------------------------------------------------
    d = deal_case("won_simple", "deal-won-simple")
    c = "cust-s-won-simple"
    b.deal(local(2, 3, 10), REP_01, c, d, "prospecting", "50000.00", expected_close_date="2026-03-15")
    b.deal(local(2, 6, 11), REP_01, c, d, "qualified", "50000.00", expected_close_date="2026-03-15")
    b.deal(local(2, 10, 9), REP_01, c, d, "proposal", "50000.00", expected_close_date="2026-03-15")
    b.deal(local(2, 14, 15), REP_01, c, d, "negotiation", "48000.00", expected_close_date="2026-03-01")
    b.deal(local(2, 18, 11), REP_01, c, d, "won", "48000.00", expected_close_date="2026-03-01")
    # A linked visit after the win moves last_activity_at past the last deal event.
    b.visit(local(3, 1, 14), REP_01, c, "completed", 40, deal_id=d)

    d = deal_case("lost", "deal-lost")
    c = "cust-s-lost"
    b.deal(local(2, 4, 10), REP_02, c, d, "prospecting", "12000")
    b.deal(local(2, 9, 10), REP_02, c, d, "qualified", "12000")
    b.deal(local(2, 20, 16), REP_02, c, d, "lost", "12000", lost_reason="competitor")

    # Open in each open stage.
    for stage, rep, month, day, amount in (
        ("prospecting", REP_04, 3, 20, "3000.00"),
        ("qualified", REP_05, 3, 18, "4500.50"),
        ("proposal", REP_06, 3, 16, "9999.99"),
        ("negotiation", REP_01, 3, 12, "25000"),
    ):
        d = deal_case(f"open_{stage}", f"deal-open-{stage}")
        c = f"cust-s-open-{stage}"
        b.deal(local(month, day - 6, 9), rep, c, d, "prospecting", amount)
        if stage != "prospecting":
            b.deal(local(month, day, 9), rep, c, d, stage, amount, expected_close_date="2026-04-30")

    d = deal_case("skips_stages", "deal-skip")
    c = "cust-s-skip"
    b.deal(local(2, 5, 10), REP_02, c, d, "prospecting", "8000")
    b.deal(local(2, 12, 10), REP_02, c, d, "proposal", "8000")  # skips qualified
    b.deal(local(2, 25, 10), REP_02, c, d, "won", "8200")  # skips negotiation

    d = deal_case("starts_in_negotiation", "deal-start-negotiation")
    b.deal(local(3, 9, 10), REP_04, "cust-s-start-neg", d, "negotiation", "61000")

    d = deal_case("regresses", "deal-regress")
    c = "cust-s-regress"
    b.deal(local(2, 6, 10), REP_04, c, d, "prospecting", "15000")
    b.deal(local(2, 10, 10), REP_04, c, d, "qualified", "15000")
    b.deal(local(2, 16, 10), REP_04, c, d, "proposal", "15000")
    b.deal(local(2, 22, 10), REP_04, c, d, "qualified", "14000")  # back: stage entered here
    b.deal(local(2, 27, 10), REP_04, c, d, "qualified", "13500")  # same stage, new amount

    d = deal_case("won_then_reopened", "deal-won-reopened")
    c = "cust-s-reopened"
    b.deal(local(2, 7, 10), REP_01, c, d, "qualified", "30000")
    b.deal(local(2, 12, 10), REP_01, c, d, "negotiation", "30000")
    b.deal(local(2, 19, 10), REP_01, c, d, "won", "30000")
    b.deal(local(2, 24, 10), REP_01, c, d, "negotiation", "30000")  # reopened: open again

    d = deal_case("won_reopened_won", "deal-won-reopened-won")
    c = "cust-s-rewon"
    b.deal(local(2, 8, 10), REP_05, c, d, "proposal", "22000")
    b.deal(local(2, 15, 10), REP_05, c, d, "won", "22000")
    b.deal(local(2, 21, 10), REP_05, c, d, "proposal", "23000")
    b.deal(local(3, 5, 10), REP_05, c, d, "won", "23500")  # the later win counts

    d = deal_case("amount_corrected", "deal-amount-corrected")
    c = "cust-s-corrected"
    b.deal(local(2, 10, 10), REP_02, c, d, "proposal", "20000")
    b.deal(local(2, 17, 10), REP_02, c, d, "won", "20000")
    b.deal(local(2, 23, 10), REP_02, c, d, "won", "21500.50")  # corrects the amount; closed 02-17

    d = deal_case("owner_changes", "deal-owner-change")
    c = "cust-s-owner"
    b.deal(local(2, 9, 10), REP_01, c, d, "prospecting", "17000")  # created under rep-01
    b.deal(local(2, 11, 10), REP_01, c, d, "qualified", "17000")
    b.deal(local(2, 15, 10), REP_02, c, d, "proposal", "17000")
    b.deal(local(2, 26, 10), REP_02, c, d, "won", "17500")  # won under rep-02

    # Won under rep-04 just before a Shanghai midnight; later handed to rep-05 (still won): the
    # win stays with rep-04 on 02-20, deals_current shows rep-05 and rep-05's team.
    d = deal_case("won_then_transferred", "deal-won-transferred")
    c = "cust-s-transferred"
    b.deal(local(2, 12, 10), REP_04, c, d, "proposal", "40000")
    b.deal(local(2, 20, 23, 50), REP_04, c, d, "won", "40000", offset="Z")
    b.deal(local(3, 3, 10), REP_05, c, d, "won", "40000")

    # Currencies and rounding (rate EUR 1.08, half-to-even to 4 dp).
    d = deal_case("eur_half_even_open", "deal-eur-half-even")
    b.deal(local(2, 13, 10), REP_06, "cust-s-eur-1", d, "proposal", "1000.00375", "EUR")  # 1080.0040
    d = deal_case("eur_half_even_won", "deal-eur-half-even-won")
    c = "cust-s-eur-2"
    b.deal(local(2, 14, 10), REP_06, c, d, "negotiation", "900", "EUR")
    b.deal(local(2, 28, 10), REP_06, c, d, "won", "1000.00875", "EUR")  # 1080.00945 → 1080.0094
    d = deal_case("eur_many_decimals", "deal-eur-long")
    b.deal(local(2, 17, 10), REP_03, "cust-s-eur-3", d, "negotiation", "2500.123456789", "EUR")
    d = deal_case("usd_half_even_down", "deal-usd-half-down")
    b.deal(local(2, 18, 10), REP_01, "cust-s-usd-1", d, "prospecting", "10.00005")  # → 10.0000
    d = deal_case("usd_half_even_up", "deal-usd-half-up")
    c = "cust-s-usd-2"
    b.deal(local(2, 19, 10), REP_02, c, d, "proposal", "99.99995")
    b.deal(local(2, 26, 10), REP_02, c, d, "won", "99.99995")  # → 100.0000
    d = deal_case("currency_omitted", "deal-default-currency")
    b.deal(local(2, 20, 10), REP_04, "cust-s-default-cur", d, "qualified", "7777.7777", None)
    d = deal_case("integer_amount", "deal-int-amount")
    b.deal(local(2, 21, 10), REP_05, "cust-s-int", d, "prospecting", 15000)
    d = deal_case("currency_changes", "deal-currency-change")
    c = "cust-s-cur-change"
    b.deal(local(2, 22, 10), REP_06, c, d, "prospecting", "1000")
    b.deal(local(3, 2, 10), REP_06, c, d, "proposal", "1234.56789", "EUR")  # 1333.3333212 → 1333.3333

    # Ties on occurred_at: the later-delivered event is the later one.
    d = deal_case("tie_same_instant", "deal-tie")
    c = "cust-s-tie"
    b.deal(local(2, 11, 10), REP_03, c, d, "qualified", "30000")
    tie_at = local(2, 16, 15)
    b.deal(tie_at, REP_03, c, d, "proposal", "30000")
    b.deal(tie_at, REP_03, c, d, "negotiation", "32000", offset="Z")  # same instant, written in UTC
    d = deal_case("tie_on_close", "deal-tie-close")
    c = "cust-s-tie-close"
    b.deal(local(2, 13, 10), REP_04, c, d, "negotiation", "5000")
    close_at = local(2, 24, 17, 30, 0, 250000)
    b.deal(close_at, REP_04, c, d, "won", "5000")
    b.deal(close_at, REP_04, c, d, "lost", "5000", offset="-05:00", lost_reason="budget cut")  # wins

    # Late arrivals: older events published after newer ones never overwrite the newer state.
    d = deal_case("late_first_event", "deal-late")
    c = "cust-s-late"
    b.deal(local(2, 14, 10), REP_02, c, d, "proposal", "11000")
    b.deal(local(2, 18, 10), REP_02, c, d, "negotiation", "11500")
    b.deal(local(2, 8, 10), REP_01, c, d, "prospecting", "10000", publish_at=local(2, 20, 12))  # created
    b.deal(local(2, 11, 10), REP_02, c, d, "qualified", "10500", publish_at=local(3, 1, 12))
    d = deal_case("late_older_event_after_win", "deal-late-won")
    c = "cust-s-late-won"
    b.deal(local(2, 10, 10), REP_05, c, d, "proposal", "6000")
    b.deal(local(2, 20, 10), REP_05, c, d, "won", "6000")
    b.deal(local(2, 18, 10), REP_05, c, d, "negotiation", "5900", publish_at=local(2, 25, 10))

    # Created on tianjin/north, won on rep-03's first day in guangzhou/south, 10 minutes after a
    # Shanghai midnight (the previous day in UTC): cycle 02-12 → 03-02 = 18 days.
    d = deal_case("team_change_win", "deal-team-change")
    c = "cust-s-team-change"
    b.deal(local(2, 12, 10), REP_03, c, d, "prospecting", "19000")
    b.deal(local(3, 2, 0, 10), REP_03, c, d, "won", "19000", offset="Z")

    # rep-06 has no org record before 02-05: created unassigned, won in team-guangzhou.
    d = deal_case("created_before_org_record", "deal-before-org")
    c = "cust-s-before-org"
    b.deal(local(2, 3, 9), REP_06, c, d, "prospecting", "4000")
    b.deal(local(2, 10, 9), REP_06, c, d, "won", "4000")

    d = deal_case("unassigned_rep_deal", "deal-unassigned")
    c = "cust-s-unassigned"
    b.deal(local(2, 6, 9), REP_07, c, d, "qualified", "2500")
    b.deal(local(2, 27, 9), REP_07, c, d, "won", "2600")
    d = deal_case("unassigned_rep_open_deal", "deal-unassigned-open")
    b.deal(local(3, 6, 9), REP_07, "cust-s-unassigned", d, "proposal", "3100")

    # Activities linked to a deal; the last one comes after the deal's last deal event.
    d = deal_case("linked_activities", "deal-linked")
    c = "cust-s-linked"
    b.deal(local(2, 5, 10), REP_05, c, d, "prospecting", "9000")
    b.deal(local(2, 9, 10), REP_05, c, d, "qualified", "9000")
    b.call(local(2, 12, 10), REP_05, c, "connected", 600, deal_id=d)
    b.feedback(local(2, 20, 10), REP_05, c, "csat", 5, "praise", deal_id=d)
    b.visit(local(3, 10, 16, 45, 12, 345678), REP_05, c, "completed", 90, deal_id=d)  # last activity
    special["not_a_deal"] = "deal-ghost"
    b.visit(local(2, 26, 10), REP_05, c, "completed", 30, deal_id="deal-ghost")  # no deal events

    # -- The team change day, around Shanghai midnight --------------------------------------
    special["team_change_rep"] = REP_03
    c = "cust-s-rep03"
    b.call(local(3, 1, 23, 55), REP_03, c, "connected", 300)  # 03-01: team-tianjin
    b.visit(local(3, 2, 0, 5), REP_03, c, "completed", 20, offset="Z")  # 03-02 (UTC 03-01): guangzhou
    b.visit(local(3, 2, 0, 30), REP_03, c, "cancelled", 0, offset="-05:00")
    b.feedback(local(3, 2, 7, 59, 59, 999999), REP_03, c, "nps", 9, offset="Z")
    b.call(local(3, 2, 8, 0), REP_03, c, "busy", 0, "inbound", offset="Z")

    # -- rep-06 before and after its record starts (02-05) -----------------------------------
    c = "cust-s-rep06"
    b.visit(local(2, 4, 23, 59, 59), REP_06, c, "completed", 45)  # unassigned
    b.visit(local(2, 5, 0, 0, 0), REP_06, c, "no_show", 0, offset="Z")  # team-guangzhou

    # -- New customers ----------------------------------------------------------------------
    special["first_event_visit"] = "cust-first-visit"
    b.visit(local(2, 2, 9), REP_01, "cust-first-visit", "completed", 60)
    b.call(local(2, 3, 9), REP_02, "cust-first-visit", "connected", 100)
    special["first_event_call"] = "cust-first-call"
    b.call(local(2, 2, 10), REP_02, "cust-first-call", "voicemail", 30, "inbound")
    b.visit(local(2, 9, 10), REP_02, "cust-first-call", "completed", 30)
    special["first_event_deal"] = "cust-first-deal"
    b.deal(local(2, 2, 11), REP_04, "cust-first-deal", "deal-first-deal", "prospecting", "1200")
    b.call(local(2, 2, 15), REP_04, "cust-first-deal", "connected", 200)
    special["first_event_feedback"] = "cust-first-feedback"
    b.feedback(local(2, 2, 12), REP_05, "cust-first-feedback", "nps", 10, "praise", "非常满意")
    b.visit(local(2, 4, 12), REP_05, "cust-first-feedback", "completed", 25)
    # Two first events at the same instant (written with different offsets): the smaller
    # event_id wins, although it is delivered second: new under rep-02, via the call.
    special["first_event_tie"] = "cust-tie"
    tie = local(2, 19, 8, 0)
    b.visit(tie, REP_01, "cust-tie", "completed", 30, event_id="x-tie-b")
    b.call(tie, REP_02, "cust-tie", "connected", 45, offset="Z", event_id="x-tie-a")
    # The first event arrives after a later one.
    special["first_event_late"] = "cust-late-first"
    b.call(local(2, 20, 10), REP_04, "cust-late-first", "connected", 300)
    b.visit(local(2, 10, 10), REP_03, "cust-late-first", "completed", 30, publish_at=local(2, 25, 9))
    # First events on either side of a Shanghai midnight.
    special["first_event_before_midnight"] = "cust-midnight-1"
    b.visit(local(2, 14, 23, 59, 59, 999999), REP_01, "cust-midnight-1", "completed", 15)
    special["first_event_at_midnight"] = "cust-midnight-2"
    b.visit(local(2, 15, 0, 0), REP_01, "cust-midnight-2", "completed", 15, offset="Z")
    # Written in UTC-5: the date as written (02-20) is neither the UTC nor the Shanghai date.
    special["first_event_offset_date"] = "cust-offset-date"
    b.call(local(2, 21, 9, 30), REP_02, "cust-offset-date", "connected", 75, offset="-05:00")

    # -- Every outcome, direction and score -------------------------------------------------
    c = "cust-s-coverage"
    for n, outcome in enumerate(("completed", "cancelled", "no_show")):
        b.visit(local(2, 23, 9 + n), REP_02, c, outcome, 30 if outcome == "completed" else 0)
    for n, (direction, outcome) in enumerate(
        (d_, o_) for d_ in ("outbound", "inbound") for o_ in ("connected", "no_answer", "busy", "voicemail")
    ):
        seconds = {"connected": 420, "no_answer": 0, "busy": 0, "voicemail": 25}[outcome]
        b.call(local(2, 24, 9, 5 * n), REP_04, c, outcome, seconds, direction)
    b.call(local(2, 24, 12), REP_04, c, "connected", 0)  # connected, zero seconds
    for score in range(1, 6):
        b.feedback(local(2, 25, 9, score), REP_05, c, "csat", score)
    for score in range(11):
        b.feedback(local(2, 25, 10, score), REP_06, c, "nps", score)
    b.feedback(local(2, 25, 11), REP_01, c, "csat", 2, "complaint", "送货太慢")
    b.feedback(local(2, 25, 12), REP_01, c, "nps", 3, "complaint", "Support never called back")
    b.feedback(local(2, 25, 13), REP_07, c, "csat", 4, "suggestion", "Weekly report please")
    b.feedback(local(2, 25, 14), REP_07, c, "nps", 8, "praise")
    # Month boundary, Shanghai time.
    b.visit(local(2, 28, 23, 59), REP_02, c, "completed", 10)
    b.visit(local(3, 1, 0, 1), REP_02, c, "completed", 10, offset="Z")


# --------------------------------------------------------------------------- random bulk


def _random_moment(
    rng: random.Random, start: datetime = PERIOD_START, end: datetime = PERIOD_END
) -> datetime:
    """A moment in [start, end): uniform, or (one time in six) within 40 minutes of a Shanghai midnight."""
    span = int((end - start).total_seconds())
    if rng.random() < 1 / 6:
        midnight_index = rng.randint(1, max(1, (end - start).days - 1))
        midnight = datetime.combine(start.date() + timedelta(days=midnight_index), datetime.min.time(), ZONE)
        moment = midnight + timedelta(seconds=rng.randint(-2400, 2400))
    else:
        moment = start + timedelta(seconds=rng.randrange(span))
    if rng.random() < 0.3:
        moment = moment.replace(microsecond=rng.randrange(1_000_000))
    return min(max(moment, start), end - timedelta(seconds=1))


def _random_offset(rng: random.Random) -> str:
    return rng.choices(list(OFFSETS), weights=[60, 20, 8, 6, 6])[0]


def _random_amount(rng: random.Random, currency: str | None) -> str:
    if currency == "EUR" and rng.random() < 0.5:
        places = rng.randint(3, 6)
        return str(Decimal(rng.randint(100_000, 5_000_000)) + Decimal(rng.randrange(10**places)) / 10**places)
    return str(Decimal(rng.randint(100_000, 20_000_000)) / 100)


@dataclass
class _BulkDeal:
    deal_id: str
    customer_id: str
    owner: str
    first_at: datetime
    last_at: datetime


def _bulk(b: _Builder, rng: random.Random) -> None:
    customers = [f"cust-{n:04d}" for n in range(1, 161)]
    reps_with_weights = [(REP_01, 16), (REP_02, 16), (REP_03, 16), (REP_04, 16), (REP_05, 14), (REP_06, 14)]
    reps_with_weights.append((REP_07, 8))
    reps = [rep for rep, _ in reps_with_weights]
    weights = [weight for _, weight in reps_with_weights]
    home = {customer: rng.choices(reps, weights)[0] for customer in customers}

    def rep_for(customer: str) -> str:
        return home[customer] if rng.random() < 0.85 else rng.choice(reps)

    deals: list[_BulkDeal] = []
    for n in range(1, 76):
        deal_id = f"deal-{n:04d}"
        customer = rng.choice(customers)
        owner = home[customer]
        at = _random_moment(rng, PERIOD_START, PERIOD_START + timedelta(days=45))
        currency = rng.choices(["USD", None, "EUR"], weights=[70, 15, 15])[0]
        amount = _random_amount(rng, currency)
        expected_close = (
            (at + timedelta(days=rng.randint(20, 70))).date().isoformat() if rng.random() < 0.5 else None
        )
        outcome = rng.choices(["won", "lost", "open"], weights=[35, 25, 40])[0]
        rank = 0 if rng.random() < 0.8 else 1
        target = rng.randint(rank, 3)
        ranks = [rank]
        while ranks[-1] < target:
            step = rng.choices([1, 2, 0], weights=[80, 10, 10])[0]
            ranks.append(min(ranks[-1] + step, target))
        stages = [("prospecting", "qualified", "proposal", "negotiation")[r] for r in ranks]
        if outcome != "open":
            stages.append(outcome)
        first_at = last_at = at
        for index, stage in enumerate(stages):
            if index:
                at = at + timedelta(days=rng.randint(1, 6), seconds=rng.randint(0, 86_399))
                if at >= PERIOD_END:
                    break
                last_at = at
                if rng.random() < 0.05:
                    owner = rng.choice([rep for rep in reps if rep != owner])
                if rng.random() < 0.2:
                    amount = _random_amount(rng, currency)
            lost_reason = (
                rng.choice(["price", "competitor", "no budget", "timing"]) if stage == "lost" else None
            )
            b.deal(
                at,
                owner,
                customer,
                deal_id,
                stage,
                amount,
                currency,
                expected_close_date=expected_close,
                lost_reason=lost_reason,
                offset=_random_offset(rng),
            )
        deals.append(_BulkDeal(deal_id, customer, owner, first_at, last_at))

    def linked() -> tuple[str, str, str, datetime] | None:
        """(rep, customer, deal_id, moment) of an activity linked to a random deal, 1 time in 5."""
        if rng.random() >= 0.2:
            return None
        deal = rng.choice(deals)
        start = max(PERIOD_START, deal.first_at - timedelta(days=1))
        end = min(PERIOD_END, deal.last_at + timedelta(days=10))
        return deal.owner, deal.customer_id, deal.deal_id, _random_moment(rng, start, end)

    for _ in range(700):
        customer = rng.choice(customers)
        rep, deal_id, at = rep_for(customer), None, _random_moment(rng)
        link = linked()
        if link:
            rep, customer, deal_id, at = link
        outcome = rng.choices(["completed", "cancelled", "no_show"], weights=[70, 15, 15])[0]
        minutes = rng.randint(10, 180) if outcome == "completed" else rng.choice([0, 0, 5])
        b.visit(at, rep, customer, outcome, minutes, deal_id=deal_id, offset=_random_offset(rng))

    for _ in range(720):
        customer = rng.choice(customers)
        rep, deal_id, at = rep_for(customer), None, _random_moment(rng)
        link = linked()
        if link:
            rep, customer, deal_id, at = link
        outcome = rng.choices(["connected", "no_answer", "busy", "voicemail"], weights=[50, 20, 10, 20])[0]
        seconds = {
            "connected": rng.randint(0, 2400),
            "voicemail": rng.randint(5, 90),
            "no_answer": 0,
            "busy": rng.choice([0, 0, 3]),
        }[outcome]
        direction = rng.choices(["outbound", "inbound"], weights=[70, 30])[0]
        b.call(at, rep, customer, outcome, seconds, direction, deal_id=deal_id, offset=_random_offset(rng))

    comments = [None, None, None, "ok", "很好", "价格偏高", "Delivery was late", "请尽快回访"]
    for _ in range(260):
        customer = rng.choice(customers)
        rep, deal_id, at = rep_for(customer), None, _random_moment(rng)
        link = linked()
        if link:
            rep, customer, deal_id, at = link
        if rng.random() < 0.6:
            score_type, score = "csat", rng.choices([1, 2, 3, 4, 5], weights=[5, 8, 20, 37, 30])[0]
        else:
            score_type, score = "nps", rng.randint(0, 10)
        category = rng.choices([None, "praise", "complaint", "suggestion"], weights=[53, 20, 12, 15])[0]
        comment = rng.choice(comments)
        b.feedback(
            at,
            rep,
            customer,
            score_type,
            score,
            category,
            comment,
            deal_id=deal_id,
            offset=_random_offset(rng),
        )


def build_scenario(seed: int = 7) -> Scenario:
    """The scenario: same seed, same org and events, in the same order."""
    rng = random.Random(seed)
    builder = _Builder()
    special: dict[str, str] = {"unassigned_rep": REP_07, "replaced_org_record_rep": REP_05}
    _scripted(builder, special)
    _bulk(builder, rng)
    return Scenario(org=build_org(), events=builder.events(), special=special)


# --------------------------------------------------------------------------- malformed messages

_TEMPLATES: dict[str, dict[str, Any]] = {
    "visit": {
        "event_type": "visit",
        "occurred_at": "2026-03-02T09:30:00+08:00",
        "rep_id": "rep-01",
        "customer_id": "bad-cust",
        "duration_minutes": 30,
        "outcome": "completed",
    },
    "call": {
        "event_type": "call",
        "occurred_at": "2026-03-02T09:30:00+08:00",
        "rep_id": "rep-02",
        "customer_id": "bad-cust",
        "direction": "outbound",
        "duration_seconds": 60,
        "outcome": "connected",
    },
    "deal": {
        "event_type": "deal",
        "occurred_at": "2026-03-02T09:30:00+08:00",
        "rep_id": "rep-03",
        "customer_id": "bad-cust",
        "stage": "proposal",
        "amount": "1200.50",
        "currency": "USD",
    },
    "feedback": {
        "event_type": "feedback",
        "occurred_at": "2026-03-02T09:30:00+08:00",
        "rep_id": "rep-04",
        "customer_id": "bad-cust",
        "score_type": "csat",
        "score": 4,
    },
}
_TYPES = ("visit", "call", "deal", "feedback")
MAX_EVENT_BYTES = 65_536


def build_malformed(seed: int = 7) -> list[Malformed]:
    """At least 100 messages that must each be rejected, with the decoder's reason code.

    Every message has a unique ``label`` (``bad-NNNN``); JSON objects carry it as their event_id
    (unless the event_id itself is what is wrong) and use customer and deal ids that no valid
    event uses, so that nothing here can touch the scenario's rows.
    """
    rng = random.Random(seed)
    out: list[Malformed] = []

    def label() -> str:
        return f"bad-{len(out) + 1:04d}"

    def valid(topic_type: str, name: str) -> dict[str, Any]:
        body = {"event_id": name, **_TEMPLATES[topic_type]}
        body["customer_id"] = f"bad-cust-{name}"
        if topic_type == "deal":
            body["deal_id"] = f"bad-deal-{name}"
        return body

    def add(topic_type: str, value: bytes | None, reason: str, kind: str, name: str) -> None:
        out.append(Malformed(topic_type, value, reason, kind, name))

    def changed(kind: str, reason: str, topic_type: str, drop: tuple[str, ...] = (), **changes: Any) -> None:
        name = label()
        body = valid(topic_type, name)
        for key in drop:
            body.pop(key)
        body.update(changes)
        add(topic_type, orjson.dumps(body), reason, kind, name)

    def raw(kind: str, reason: str, topic_type: str, make: Any) -> None:
        name = label()
        add(topic_type, make(name), reason, kind, name)

    for topic_type in _TYPES:
        # Not JSON at all, or broken JSON.
        raw("not_json", "invalid_json", topic_type, lambda n: b"{not json " + n.encode())
        raw("not_json", "invalid_json", topic_type, lambda n: b'{"event_id": "' + n.encode() + b'", ')
        raw("not_json", "invalid_json", topic_type, lambda n: b"{'event_id': '" + n.encode() + b"'}")
        raw("not_json", "invalid_json", topic_type, lambda n: b'{"event_id": "' + n.encode() + b'",}')
        raw("not_json", "invalid_json", topic_type, lambda n: b"event_id=" + n.encode())
        # Not UTF-8.
        raw("not_utf8", "not_utf8", topic_type, lambda n: b"\xff\xfe" + n.encode())
        raw("not_utf8", "not_utf8", topic_type, lambda n: b'{"event_id": "' + n.encode() + b'\xc0\xaf"}')
        # Valid JSON, but not an object.
        raw("json_array", "not_an_object", topic_type, lambda n: b'["' + n.encode() + b'", 1, 2]')
        raw("json_string", "not_an_object", topic_type, lambda n: b'"' + n.encode() + b'"')
        raw("json_number", "not_an_object", topic_type, lambda n: str(100_000 + int(n[4:])).encode())
        raw("json_true", "not_an_object", topic_type, lambda n: b"true")
        raw("json_null", "not_an_object", topic_type, lambda n: b"null")
        # Empty.
        raw("empty_value", "empty_message", topic_type, lambda n: b"")
        raw("null_value", "empty_message", topic_type, lambda n: None)
        # Too large: rejected unread, whatever the content.
        raw(
            "oversized",
            "payload_too_large",
            topic_type,
            lambda n, t=topic_type: orjson.dumps(
                {**valid(t, n), "comment": "x" * (MAX_EVENT_BYTES + rng.randint(1, 5000))}
            ),
        )
        raw(
            "oversized_garbage",
            "payload_too_large",
            topic_type,
            lambda n: n.encode() + b"\xff" * MAX_EVENT_BYTES,
        )
        # event_type of another topic.
        other = rng.choice([t for t in _TYPES if t != topic_type])
        changed("wrong_event_type", "wrong_event_type", topic_type, event_type=other)
        # Missing required fields.
        changed("missing_occurred_at", "missing_field", topic_type, drop=("occurred_at",))
        changed("missing_rep_id", "missing_field", topic_type, drop=("rep_id",))
        changed("missing_customer_id", "missing_field", topic_type, drop=("customer_id",))
        # Timestamps.
        changed("timestamp_without_offset", "invalid_value", topic_type, occurred_at="2026-03-02T09:30:00")
        changed(
            "bad_timestamp",
            "invalid_value",
            topic_type,
            occurred_at=rng.choice(["yesterday", "2026-02-30T10:00:00Z"]),
        )
        changed("date_out_of_range", "invalid_value", topic_type, occurred_at="1900-01-01T00:00:00Z")
        changed("date_out_of_range", "invalid_value", topic_type, occurred_at="2100-01-01T00:00:00+00:00")
        # Wrong types: numbers for strings, an integer where a string is required.
        changed("number_for_string", "invalid_value", topic_type, rep_id=17)
        changed("number_for_string", "invalid_value", topic_type, customer_id=12.5)
        changed("number_for_string", "invalid_value", topic_type, source=5)
        # Identifiers with blanks.
        changed("identifier_blanks", "invalid_value", topic_type, rep_id=" rep-01")
        changed("identifier_blanks", "invalid_value", topic_type, customer_id="")
        changed("string_for_int", "invalid_value", topic_type, schema_version="1")

    # Integer where a string is required, and event_id rules (the label stays in customer_id).
    for topic_type in _TYPES:
        name = label()
        body = valid(topic_type, name)
        body["event_id"] = int(name.removeprefix("bad-"))
        add(topic_type, orjson.dumps(body), "invalid_value", "int_event_id", name)
        name = label()
        body = valid(topic_type, name)
        body["event_id"] = ""
        add(topic_type, orjson.dumps(body), "invalid_value", "empty_event_id", name)
        name = label()
        body = valid(topic_type, name)
        body["event_id"] = name + "x" * 129
        add(topic_type, orjson.dumps(body), "invalid_value", "long_event_id", name)
        name = label()
        body = valid(topic_type, name)
        del body["event_id"]
        add(topic_type, orjson.dumps(body), "missing_field", "missing_event_id", name)

    # Visits.
    changed("string_for_int", "invalid_value", "visit", duration_minutes="30")
    changed("bool_for_int", "invalid_value", "visit", duration_minutes=True)
    changed("unknown_outcome", "invalid_value", "visit", outcome="rescheduled")
    changed("unknown_outcome", "invalid_value", "visit", outcome="Completed")
    changed("negative_duration", "invalid_value", "visit", duration_minutes=-1)
    changed("float_for_int", "invalid_value", "visit", duration_minutes=30.5)
    changed("missing_outcome", "missing_field", "visit", drop=("outcome",))
    # Calls.
    changed("string_for_int", "invalid_value", "call", duration_seconds="120")
    changed("bool_for_int", "invalid_value", "call", duration_seconds=False)
    changed("unknown_outcome", "invalid_value", "call", outcome="hung_up")
    changed("unknown_direction", "invalid_value", "call", direction="sideways")
    changed("negative_duration", "invalid_value", "call", duration_seconds=-30)
    changed("missing_direction", "missing_field", "call", drop=("direction",))
    # Deals.
    changed("deal_without_deal_id", "missing_field", "deal", drop=("deal_id",))
    changed("deal_without_deal_id", "missing_field", "deal", drop=("deal_id",), stage="won")
    changed("unknown_stage", "invalid_value", "deal", stage="closed")
    changed("unknown_stage", "invalid_value", "deal", stage="Won")
    changed("unknown_stage", "invalid_value", "deal", stage="")
    changed("missing_stage", "missing_field", "deal", drop=("stage",))
    changed("missing_amount", "missing_field", "deal", drop=("amount",))
    changed("negative_amount", "invalid_value", "deal", amount=-5)
    changed("negative_amount", "invalid_value", "deal", amount="-0.01")
    changed("amount_too_large", "invalid_value", "deal", amount="1000000000000000000")
    changed("amount_not_a_number", "invalid_value", "deal", amount="1,000.00")
    changed("amount_not_a_number", "invalid_value", "deal", amount="NaN")
    changed("amount_not_a_number", "invalid_value", "deal", amount="Infinity")
    changed("bool_for_amount", "invalid_value", "deal", amount=True)
    changed("unknown_currency", "unknown_currency", "deal", currency="XYZ")
    changed("unknown_currency", "unknown_currency", "deal", currency="GBP")
    changed("unknown_currency", "unknown_currency", "deal", currency="JPY", amount="100")
    changed("bad_currency_code", "invalid_value", "deal", currency="eur")
    changed("bad_currency_code", "invalid_value", "deal", currency="EURO")
    changed("bad_expected_close_date", "invalid_value", "deal", expected_close_date="2026-13-01")
    changed("bad_expected_close_date", "invalid_value", "deal", expected_close_date="1900-01-01")
    changed("bad_expected_close_date", "invalid_value", "deal", expected_close_date="2026-03-02T00:00:00Z")
    for literal in (b"NaN", b"Infinity", b"-Infinity", b"1e400"):
        # Not JSON for strict parsers; pydantic's parser reads it, then rejects a non-finite amount.
        name = label()
        text = orjson.dumps({**valid("deal", name), "amount": "__AMOUNT__"}).replace(b'"__AMOUNT__"', literal)
        add("deal", text, "invalid_value", "non_finite_amount_literal", name)
    # Feedback.
    changed("csat_out_of_scale", "invalid_value", "feedback", score_type="csat", score=7)
    changed("csat_out_of_scale", "invalid_value", "feedback", score_type="csat", score=0)
    changed("nps_out_of_scale", "invalid_value", "feedback", score_type="nps", score=11)
    changed("nps_out_of_scale", "invalid_value", "feedback", score_type="nps", score=-1)
    changed("string_for_int", "invalid_value", "feedback", score="5")
    changed("bool_for_int", "invalid_value", "feedback", score=True)
    changed("unknown_score_type", "invalid_value", "feedback", score_type="ces")
    changed("unknown_category", "invalid_value", "feedback", category="rant")
    changed("missing_score", "missing_field", "feedback", drop=("score",))
    changed("number_for_string", "invalid_value", "feedback", comment=42)
    return out
